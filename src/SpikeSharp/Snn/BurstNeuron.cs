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
        var counts = ForEachTile(n, (start, end, c) =>
        {
            for (int i = start; i < end; i++)
            {
                float vi = v[i];
                for (int t = 0; t < steps; t++)
                {
                    vi += constant ? xin[i] : xin[t * n + i];
                    float s = Math.Clamp(MathF.Floor(vi / unit), 0f, m);
                    vi -= s * unit;
                    yout[t * n + i] = s * unit;
                    c[t] += (long)s;
                }
                v[i] = vi;
            }
        });
        y.SpikeUnit = unit;
        Emit(counts, y);
        return new Variable(y);
    }
}
