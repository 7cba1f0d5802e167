using System.Runtime.Intrinsics;
using SpikeSharp.Autograd;
using SpikeSharp.Nn;
using SpikeSharp.Tensors;

namespace SpikeSharp.Snn;

/// <summary>
/// Burst (group) neuron (Lv et al., ICASSP 2024; docs/conversion-methods.md "burst"): a unit spike of θ' = θ/m,
/// v0 = θ'/2; each step v += x, s = clip(⌊v/θ'⌋, 0, m) unit spikes, v −= s·θ', output s·θ'. Up to m spikes per step
/// carry the residual that a single-spike neuron would hold back. A burst of s counts as s spikes, and the output tensor
/// carries its unit (<see cref="Tensor.SpikeUnit"/>) so synaptic operations count s per fan-out too.
/// </summary>
public sealed class BurstNeuron : SpikingNeuron
{
    private float[]? _v;

    /// <summary>The most unit spikes per step, m.</summary>
    public int MaxBurst { get; }

    /// <summary>One unit spike, θ/m.</summary>
    public float Unit => Threshold / MaxBurst;

    public BurstNeuron(string layerName, float threshold, int maxBurst, Activation? source = null) : base(layerName, threshold, source) =>
        MaxBurst = maxBurst >= 1 ? maxBurst : throw new SpikeSharpException($"--burst must be ≥ 1, got {maxBurst}");

    public override void ResetState() => _v = null;

    public override Variable Forward(Variable x)
    {
        bool constant = IsConstantInput(x.Value);
        int n = Batch * x.Value.SizeFrom(1), steps = Steps, m = MaxBurst;
        float unit = Unit;
        if (_v == null) { _v = new float[n]; Array.Fill(_v, unit / 2); }
        float[] v = _v, xin = x.Value.Data;
        var y = OutputFor(x.Value);
        float[] yout = y.Data;
        var step = new BurstStep(unit, m);
        var counts = ForEachTile(n, (start, end, c) => NeuronKernel.Run(step, xin, constant, v, yout, steps, n, start, end - start, c));
        y.SpikeUnit = unit;
        Emit(counts, y);
        return new Variable(y);
    }
}

/// <summary>The burst neuron's step: v += I, s = clip(⌊v/θ'⌋, 0, m), v −= s·θ', output s·θ', s spikes.</summary>
public readonly record struct BurstStep(float Unit, int MaxBurst) : INeuronStep
{
    public bool Vectorized => true;

    public float Step(int i, int t, ref float v, float current, out int spikes)
    {
        v += current;
        float s = Math.Clamp(MathF.Floor(v / Unit), 0f, MaxBurst);
        v -= s * Unit;
        spikes = (int)s;
        return s * Unit;
    }

    public Vector512<float> Step(int i, int t, ref Vector512<float> v, Vector512<float> current, out int spikes)
    {
        var unit = Vector512.Create(Unit);
        v += current;
        var s = Vector512.Min(Vector512.Max(Vector512.Floor(v / unit), Vector512<float>.Zero), Vector512.Create((float)MaxBurst));
        v -= s * unit;
        spikes = (int)Vector512.Sum(s); // ≤ 16·m small integers: exact in float32
        return s * unit;
    }
}
