using SpikeSharp.Autograd;
using SpikeSharp.Nn;
using SpikeSharp.Tensors;

namespace SpikeSharp.Snn;

/// <summary>
/// Signed integrate-and-fire neuron (Fast-SNN, Hu et al. 2023; docs/conversion-methods.md "signed"): v0 = θ/2 and a
/// running net spike count n = 0; each step v += x; if v ≥ θ emit +θ, v −= θ, n += 1; else if v ≤ −ε and n &gt; 0 emit
/// −θ, v += θ, n −= 1 (ε = <see cref="NegativeEpsilon"/>, absolute). A negative spike takes back a spike fired too
/// early, so the count never goes below zero and the rate tracks the clipped ANN activation. Every spike, positive or
/// negative, is one spike in the counts.
/// </summary>
public sealed class SignedNeuron(string layerName, float threshold, Activation? source = null) : SpikingNeuron(layerName, threshold, source)
{
    /// <summary>How far below zero v must fall before a negative spike (the authors' 10⁻³).</summary>
    public const float NegativeEpsilon = 1e-3f;

    private float[]? _v;
    private int[]? _net;

    public override void ResetState() => (_v, _net) = (null, null);

    public override Variable Forward(Variable x)
    {
        bool constant = IsConstantInput(x.Value);
        int n = Batch * x.Value.SizeFrom(1), steps = Steps;
        float theta = Threshold;
        if (_v == null) { _v = new float[n]; Array.Fill(_v, theta / 2); _net = new int[n]; }
        float[] v = _v, xin = x.Value.Data;
        int[] net = _net!;
        var y = OutputFor(x.Value);
        float[] yout = y.Data;
        var counts = ForEachTile(n, (start, end, c) =>
        {
            for (int i = start; i < end; i++)
            {
                float vi = v[i];
                int ni = net[i];
                for (int t = 0; t < steps; t++)
                {
                    vi += constant ? xin[i] : xin[t * n + i];
                    float o = 0f;
                    if (vi >= theta) { o = theta; vi -= theta; ni++; c[t]++; }
                    else if (vi <= -NegativeEpsilon && ni > 0) { o = -theta; vi += theta; ni--; c[t]++; }
                    yout[t * n + i] = o;
                }
                (v[i], net[i]) = (vi, ni);
            }
        });
        Emit(counts, y);
        return new Variable(y);
    }
}
