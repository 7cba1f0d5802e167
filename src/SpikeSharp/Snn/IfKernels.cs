using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace SpikeSharp.Snn;

/// <summary>
/// Fused integrate-and-fire update over a tile of neurons for T steps: charge (v += I(t)), fire (s = v ≥ θ, or v &gt; θ),
/// soft reset (v −= θ·s), emit θ·s (times an optional 0/1 output mask, SRP), count the emitted spikes per step. The tile stays
/// in cache across t. Shapes: input [T, n] (or [n] when constant over time), output [T, n], v [n], mask [n].
/// Every path computes the same thing as <see cref="IfNeuron"/>'s Charge/Fire/Reset reference.
/// </summary>
public static class IfKernels
{
    /// <summary>Runs T steps for neurons [start, start+len) of a layer with n neurons; adds spike counts per step
    /// into counts[t].</summary>
    public static void Run(ReadOnlySpan<float> input, bool constantInput, Span<float> v, Span<float> output, ReadOnlySpan<float> mask,
        float theta, bool strict, int steps, int n, int start, int len, Span<long> counts)
    {
        if (Vector512.IsHardwareAccelerated) Run512(input, constantInput, v, output, mask, theta, strict, steps, n, start, len, counts);
        else RunScalar(input, constantInput, v, output, mask, theta, strict, steps, n, start, len, counts);
    }

    internal static void Run512(ReadOnlySpan<float> input, bool constantInput, Span<float> v, Span<float> output, ReadOnlySpan<float> mask,
        float theta, bool strict, int steps, int n, int start, int len, Span<long> counts)
    {
        int vecEnd = len - len % 16;
        var th = Vector512.Create(theta);
        ref float vr = ref MemoryMarshal.GetReference(v);
        ref float inr = ref MemoryMarshal.GetReference(input);
        ref float outr = ref MemoryMarshal.GetReference(output);
        ref float mr = ref MemoryMarshal.GetReference(mask);
        bool masked = !mask.IsEmpty;
        for (int t = 0; t < steps; t++)
        {
            nuint inBase = (nuint)(constantInput ? start : t * n + start), outBase = (nuint)(t * n + start);
            long count = 0;
            for (int i = 0; i < vecEnd; i += 16)
            {
                nuint k = (nuint)(start + i);
                var vv = Vector512.LoadUnsafe(ref vr, k) + Vector512.LoadUnsafe(ref inr, inBase + (nuint)i);
                var fire = strict ? Vector512.GreaterThan(vv, th) : Vector512.GreaterThanOrEqual(vv, th);
                var spike = fire & th;
                (vv - spike).StoreUnsafe(ref vr, k);
                if (masked)
                {
                    spike *= Vector512.LoadUnsafe(ref mr, k);
                    fire = ~Vector512.Equals(spike, Vector512<float>.Zero); // a suppressed spike is not emitted, so not counted
                }
                spike.StoreUnsafe(ref outr, outBase + (nuint)i);
                count += BitOperations.PopCount(fire.ExtractMostSignificantBits());
            }
            counts[t] += count;
        }
        if (vecEnd < len) RunScalar(input, constantInput, v, output, mask, theta, strict, steps, n, start + vecEnd, len - vecEnd, counts);
    }

    internal static void RunScalar(ReadOnlySpan<float> input, bool constantInput, Span<float> v, Span<float> output, ReadOnlySpan<float> mask,
        float theta, bool strict, int steps, int n, int start, int len, Span<long> counts)
    {
        bool masked = !mask.IsEmpty;
        for (int t = 0; t < steps; t++)
        {
            int inBase = constantInput ? start : t * n + start, outBase = t * n + start;
            long count = 0;
            for (int i = 0; i < len; i++)
            {
                int k = start + i;
                float vv = v[k] + input[inBase + i];
                bool fire = strict ? vv > theta : vv >= theta;
                float spike = fire ? theta : 0f;
                v[k] = vv - spike;
                output[outBase + i] = masked ? spike * mask[k] : spike;
                if (fire && (!masked || mask[k] != 0)) count++;
            }
            counts[t] += count;
        }
    }
}
