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
        int biasSteps = bias.Length / Math.Max(1, channels), first = _step;
        var y = OutputFor(x.Value);
        float[] yout = y.Data;
        var counts = ForEachTile(n, (start, end, c) =>
        {
            for (int i = start; i < end; i++)
            {
                float vi = v[i];
                int ch = i % perSample / plane;
                for (int t = 0; t < steps; t++)
                {
                    int step = first + t;
                    if (step < biasSteps) vi -= bias[step * channels + ch];
                    vi += constant ? xin[i] : xin[t * n + i];
                    bool fire = vi >= theta;
                    if (fire) { vi -= theta; c[t]++; }
                    yout[t * n + i] = fire ? theta : 0f;
                }
                v[i] = vi;
            }
        });
        _step += steps;
        Emit(counts, y);
        return new Variable(y);
    }
}
