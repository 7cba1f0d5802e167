using System.Runtime.Intrinsics;
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
        var step = new SignedStep(theta, net);
        var counts = ForEachTile(n, (start, end, c) => NeuronKernel.Run(step, xin, constant, v, yout, steps, n, start, end - start, c));
        Emit(counts, y);
        return new Variable(y);
    }
}

/// <summary>The signed neuron's step: v += I; +θ when v ≥ θ (net count +1), else −θ when v ≤ −ε and the net count is
/// positive (−1); one spike either way.</summary>
/// <param name="Net">net spike count per neuron (positive minus negative so far)</param>
public readonly record struct SignedStep(float Theta, int[] Net) : INeuronStep
{
    public bool Vectorized => false;

    public float Step(int i, int t, ref float v, float current, out int spikes)
    {
        v += current;
        spikes = 1;
        if (IfStep.Fires(v, Theta, strict: false)) { v -= Theta; Net[i]++; return Theta; }
        if (v <= -SignedNeuron.NegativeEpsilon && Net[i] > 0) { v += Theta; Net[i]--; return -Theta; }
        spikes = 0;
        return 0f;
    }

    public Vector512<float> Step(int i, int t, ref Vector512<float> v, Vector512<float> current, out int spikes) => throw new NotSupportedException();
}
