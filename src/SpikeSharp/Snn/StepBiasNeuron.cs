using System.Runtime.Intrinsics;
using SpikeSharp.Autograd;
using SpikeSharp.Nn;
using SpikeSharp.Tensors;

namespace SpikeSharp.Snn;

/// <summary>
/// Integrate-and-fire neuron with a per-step, per-channel bias (FTBC, Wu et al., ECCV 2024; docs/conversion-methods.md
/// "ftbc"): v0 = θ/2; step t: v −= b_t[c], v += x_t, s = [v ≥ θ], v −= θ·s, output θ·s. The biases [T_b, C] come from
/// calibration; steps beyond T_b run without bias.
/// </summary>
public sealed class StepBiasNeuron(string layerName, float threshold, Activation? source = null) : SpikingNeuron(layerName, threshold, source)
{
    private float[]? _v;
    private int _step;

    /// <summary>b [T_b·C], row t the biases of step t + 1 (null: none).</summary>
    public float[]? Bias { get; set; }

    /// <summary>Channels per row of <see cref="Bias"/>.</summary>
    public int BiasChannels { get; set; }

    /// <summary>Membrane potential [B·S] of the current run (null before the first step).</summary>
    public float[]? Potential => _v;

    /// <summary>Called with the input before a call runs (FTBC's calibration reads a layer's input here).</summary>
    internal Action<Tensor>? OnInput { get; set; }

    public override void ResetState() => (_v, _step) = (null, 0);

    public override Variable Forward(Variable x)
    {
        OnInput?.Invoke(x.Value);
        bool constant = IsConstantInput(x.Value);
        int perSample = x.Value.SizeFrom(1), n = Batch * perSample, steps = Steps;
        int channels = x.Value.Shape[1], plane = perSample / channels;
        if (Bias != null && BiasChannels != channels)
            throw new ArgumentException($"neuron '{LayerName}': biases for {BiasChannels} channels, the input has {channels}");
        float theta = Threshold;
        if (_v == null) { _v = new float[n]; Array.Fill(_v, theta / 2); }
        float[] v = _v, xin = x.Value.Data, bias = Bias ?? [];
        int first = _step;
        var y = OutputFor(x.Value);
        float[] yout = y.Data;
        var step = new StepBiasStep(new IfStep(theta, Strict: false), bias, channels, perSample, plane, first);
        var counts = ForEachTile(n, (start, end, c) => NeuronKernel.Run(step, xin, constant, v, yout, steps, n, start, end - start, c));
        _step += steps;
        Emit(counts, y);
        y.SpikeAmplitude = theta; // every output is 0 or θ
        return new Variable(y);
    }
}

/// <summary>FTBC's step: v −= b_t (the bias of step first + t, per channel, while there is one), then the IF step.</summary>
public readonly record struct StepBiasStep(IfStep If, float[] Bias, int Channels, int PerSample, int Plane, int First) : INeuronStep
{
    public bool Vectorized => false;

    public float Step(int i, int t, ref float v, float current, out int spikes)
    {
        int step = First + t;
        if (step * Channels < Bias.Length) v -= Bias[step * Channels + i % PerSample / Plane];
        return If.Step(i, t, ref v, current, out spikes);
    }

    public Vector512<float> Step(int i, int t, ref Vector512<float> v, Vector512<float> current, out int spikes) => throw new NotSupportedException();
}
