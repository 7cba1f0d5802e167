using SpikeSharp.Autograd;
using SpikeSharp.Data;
using SpikeSharp.Nn;
using SpikeSharp.Snn;
using SpikeSharp.Tensors;

namespace SpikeSharp.Conversion.Methods;

/// <summary>
/// FTBC, forward temporal bias correction (Wu et al., ECCV 2024; docs/conversion-methods.md "ftbc"): IF neurons with a
/// per-step, per-channel bias b_t[c] subtracted from v before charging (<see cref="StepBiasNeuron"/>). Calibrated on
/// <see cref="Batches"/> training batches, layer by layer in order, each layer fed the input its already-corrected
/// predecessors produce: replay v0 = θ/2, m = v + x_t, s = θ·[m ≥ θ], e = s − a (a the layer's ANN activation, the same
/// every step), b_t[c] += <see cref="Rate"/>·mean over images and positions of e[c], carry v = m − e. Calibrated for the
/// run's horizon T; the calibration runs are extra work on training images, not latency.
/// </summary>
public sealed class FtbcCalibration(int batches = 3, float rate = 0.4f) : ConversionMethod
{
    public int Batches { get; } = batches >= 1 ? batches : throw new SpikeSharpException($"ftbc needs at least one calibration batch, got {batches}");
    public float Rate { get; } = rate;

    private string? _summary;

    public override string Name => "ftbc";
    public override string Description => $"FTBC (Wu et al. ECCV 2024): per-step, per-channel biases calibrated layer by layer on {Batches} training batches";
    public override string? CalibrationSummary => _summary;
    public override Func<string, Activation, float, SpikingNeuron> NeuronFactory => (layer, act, theta) => new StepBiasNeuron(layer, theta, act);

    public override int Calibrate(SpikingNetwork snn, Module ann, CalibrationData data, int steps)
    {
        if (data.Train == null || data.Train.Count == 0)
            throw new SpikeSharpException("ftbc calibrates on training images, but no training split was found in --data");
        var set = data.Train.Take(Math.Min(Batches * data.BatchSize, data.Train.Count));
        using var loader = new DataLoader(set, data.BatchSize, data.Transform, shuffle: false, train: false, seed: 0);
        var images = loader.Epoch(0).Select(b => b.Images.Clone()).ToList();
        var neurons = snn.Neurons.OfType<StepBiasNeuron>().ToList();
        foreach (var n in neurons) n.Bias = null;
        var activations = ann.NamedModules().Where(m => m.Value is Activation).ToDictionary(m => m.Key, m => m.Value);
        ann.Eval();
        foreach (var neuron in neurons)
        {
            float[]? bias = null;
            int channels = 0;
            foreach (var x in images)
            {
                var annOut = AnnActivation(ann, activations[neuron.LayerName], x);
                var input = LayerInput(snn, neuron, x, steps);
                channels = input.Shape[1];
                bias ??= new float[steps * channels];
                Accumulate(bias, input, annOut, neuron.Threshold, steps, x.Shape[0]);
            }
            (neuron.Bias, neuron.BiasChannels) = (bias, channels);
        }
        _summary = $"T = {steps}: biases of {neurons.Count} layers from {set.Count} training images";
        data.Log?.Invoke($"ftbc: {_summary}");
        return set.Count;
    }

    /// <summary>The replay of one batch: adds Rate·mean(e) to b_t[c] for every step.</summary>
    internal void Accumulate(float[] bias, Tensor input, Tensor ann, float theta, int steps, int batch)
    {
        int per = ann.SizeFrom(1), n = batch * per, channels = input.Shape[1], plane = per / channels;
        bool constant = input.Shape[0] == batch;
        var v = new float[n];
        Array.Fill(v, theta / 2);
        var sums = new double[channels];
        for (int t = 0; t < steps; t++)
        {
            Array.Clear(sums);
            for (int i = 0; i < n; i++)
            {
                float m = v[i] + (constant ? input.Data[i] : input.Data[t * n + i]);
                float s = m >= theta ? theta : 0f;
                float e = s - ann.Data[i];
                sums[i % per / plane] += e;
                v[i] = m - e;
            }
            for (int c = 0; c < channels; c++) bias[t * channels + c] += Rate * (float)(sums[c] / ((double)batch * plane));
        }
    }

    private static Tensor AnnActivation(Module ann, Module activation, Tensor x)
    {
        using var rec = ActivationRecorder.Start();
        ann.Forward(new Variable(x));
        return rec.Outputs(activation)[0];
    }

    /// <summary>The input sequence of <paramref name="neuron"/> when the network (earlier layers already corrected)
    /// runs <paramref name="steps"/> steps on <paramref name="x"/>; the run stops there.</summary>
    private static Tensor LayerInput(SpikingNetwork snn, StepBiasNeuron neuron, Tensor x, int steps)
    {
        Tensor? captured = null;
        neuron.OnInput = input => { captured = input.Clone(); throw new SpikingNetwork.StopRun(); };
        try { snn.RunUntilStopped(x, steps); }
        finally { neuron.OnInput = null; }
        return captured ?? throw new InvalidOperationException($"layer '{neuron.LayerName}' was not reached");
    }
}
