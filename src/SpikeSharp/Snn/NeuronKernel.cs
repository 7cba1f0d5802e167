using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace SpikeSharp.Snn;

/// <summary>
/// One neuron model's update for one step, written once: a scalar body and, where the model vectorizes, a 512-bit body
/// of the same arithmetic (TensorPrimitives' operator style). <see cref="NeuronKernel.Run{TStep}"/> is the one driver
/// (steps, constant or per-step input, outputs, spike counts) that the simulator, the fused convolution epilogue and
/// every neuron kind run; the calibrations that replay a neuron use the same step.
/// </summary>
public interface INeuronStep
{
    /// <summary>Whether the 512-bit body exists (else the driver runs the scalar body everywhere).</summary>
    bool Vectorized { get; }

    /// <summary>Neuron <paramref name="i"/> (its index in the layer's state) at step <paramref name="t"/> of this call:
    /// charges <paramref name="v"/> with <paramref name="current"/>, fires, resets; returns the output and how many
    /// spikes were emitted.</summary>
    float Step(int i, int t, ref float v, float current, out int spikes);

    /// <summary>Neurons i … i + 15 at once, the same arithmetic lane by lane.</summary>
    Vector512<float> Step(int i, int t, ref Vector512<float> v, Vector512<float> current, out int spikes);
}

/// <summary>The driver of every <see cref="INeuronStep"/>.</summary>
public static class NeuronKernel
{
    /// <summary>Runs <paramref name="steps"/> steps for neurons [start, start + len) of a layer of n neurons, tile in
    /// cache across t. Input [T, n] (or [n] when constant over time, read every step), output [T, n] (it may be the
    /// input: each value is read before it is overwritten), v [n]; adds the spikes of step t into counts[t].</summary>
    public static void Run<TStep>(TStep step, ReadOnlySpan<float> input, bool constantInput, Span<float> v, Span<float> output,
        int steps, int n, int start, int len, Span<long> counts, bool vectorize = true) where TStep : struct, INeuronStep
    {
        int vecEnd = vectorize && step.Vectorized && Vector512.IsHardwareAccelerated ? len - len % 16 : 0;
        ref float vr = ref MemoryMarshal.GetReference(v);
        ref float inr = ref MemoryMarshal.GetReference(input);
        ref float outr = ref MemoryMarshal.GetReference(output);
        for (int t = 0; t < steps; t++)
        {
            int inBase = constantInput ? start : t * n + start, outBase = t * n + start;
            long count = 0;
            for (int i = 0; i < vecEnd; i += 16)
            {
                int k = start + i;
                var vk = Vector512.LoadUnsafe(ref vr, (nuint)k);
                var y = step.Step(k, t, ref vk, Vector512.LoadUnsafe(ref inr, (nuint)(inBase + i)), out int fired);
                vk.StoreUnsafe(ref vr, (nuint)k);
                y.StoreUnsafe(ref outr, (nuint)(outBase + i));
                count += fired;
            }
            for (int i = vecEnd; i < len; i++)
            {
                int k = start + i;
                ref float vk = ref Unsafe.Add(ref vr, k);
                Unsafe.Add(ref outr, outBase + i) = step.Step(k, t, ref vk, Unsafe.Add(ref inr, inBase + i), out int fired);
                count += fired;
            }
            counts[t] += count;
        }
    }
}

/// <summary>
/// Integrate-and-fire with soft reset (spec §1): m = v + I, s = [m ≥ θ] (or m &gt; θ), v = m − θ·s, output θ·s.
/// </summary>
public readonly record struct IfStep(float Theta, bool Strict) : INeuronStep
{
    public bool Vectorized => true;

    /// <summary>The firing rule: m ≥ θ, or m &gt; θ when strict.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool Fires(float m, float theta, bool strict) => strict ? m > theta : m >= theta;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Step(int i, int t, ref float v, float current, out int spikes)
    {
        float m = v + current;
        bool fire = Fires(m, Theta, Strict);
        float spike = fire ? Theta : 0f;
        v = m - spike;
        spikes = fire ? 1 : 0;
        return spike;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Vector512<float> Step(int i, int t, ref Vector512<float> v, Vector512<float> current, out int spikes)
    {
        var (spike, fire) = Fire(ref v, current);
        spikes = BitOperations.PopCount(fire.ExtractMostSignificantBits());
        return spike;
    }

    /// <summary>The vector step's spikes θ·s and fire mask.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal (Vector512<float> Spike, Vector512<float> Fire) Fire(ref Vector512<float> v, Vector512<float> current)
    {
        var th = Vector512.Create(Theta);
        var m = v + current;
        var fire = Strict ? Vector512.GreaterThan(m, th) : Vector512.GreaterThanOrEqual(m, th);
        var spike = fire & th;
        v = m - spike;
        return (spike, fire);
    }
}

/// <summary>The IF step with a 0/1 output mask (SRP): a masked spike still resets v but is neither emitted nor counted.</summary>
/// <param name="MaskOffset">where neuron 0 of the state the driver sees sits in the mask (the fused epilogue runs one
/// image's slice)</param>
public readonly record struct MaskedIfStep(IfStep If, float[] Mask, int MaskOffset) : INeuronStep
{
    public bool Vectorized => true;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public float Step(int i, int t, ref float v, float current, out int spikes)
    {
        float spike = If.Step(i, t, ref v, current, out spikes) * Mask[MaskOffset + i];
        spikes = spike != 0 ? spikes : 0;
        return spike;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public Vector512<float> Step(int i, int t, ref Vector512<float> v, Vector512<float> current, out int spikes)
    {
        var spike = If.Fire(ref v, current).Spike * Vector512.LoadUnsafe(ref MemoryMarshal.GetArrayDataReference(Mask), (nuint)(MaskOffset + i));
        spikes = BitOperations.PopCount((~Vector512.Equals(spike, Vector512<float>.Zero)).ExtractMostSignificantBits());
        return spike;
    }
}
