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
/// every step), u = m − e, v = u − θ·[u ≥ θ]; b_t[c] = <see cref="Rate"/>·mean of e[c] over all calibration images and
/// positions. Calibrated for the run's horizon T; the calibration runs are extra work on training images, not latency.
/// </summary>
[ConversionMethod("ftbc", 8)]
public sealed class FtbcCalibration(int batches = 3, float rate = 0.4f) : ConversionMethod
{
    public FtbcCalibration(MethodOptions o) : this() { }

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
            ErrorSums? errors = null;
            foreach (var x in images)
            {
                var annOut = AnnActivation(ann, activations[neuron.LayerName], x);
                var input = LayerInput(snn, neuron, x, steps);
                errors ??= new ErrorSums(steps, input.Shape[1]);
                errors.Replay(input, annOut, neuron.Threshold, x.Shape[0]);
            }
            (neuron.Bias, neuron.BiasChannels) = (errors!.Biases(Rate), errors.Channels);
        }
        _summary = $"T = {steps}: biases of {neurons.Count} layers from {set.Count} training images";
        data.Log?.Invoke($"ftbc: {_summary}");
        return set.Count;
    }

    /// <summary>The per-step, per-channel sums of the replay's error e = s − a over the calibration images.</summary>
    internal sealed class ErrorSums(int steps, int channels)
    {
        private readonly double[] _sums = new double[steps * channels];
        private long _count; // images × positions per channel

        public int Channels => channels;

        /// <summary>Replays one batch: <paramref name="input"/> is [T·B, …] (or [B, …] when constant over time),
        /// <paramref name="ann"/> the layer's ANN activation [B, …].</summary>
        public void Replay(Tensor input, Tensor ann, float theta, int batch)
        {
            int per = ann.SizeFrom(1), n = batch * per, plane = per / channels;
            bool constant = input.Shape[0] == batch;
            var v = new float[n];
            Array.Fill(v, theta / 2);
            for (int t = 0; t < steps; t++)
                for (int i = 0; i < n; i++)
                {
                    float m = v[i] + (constant ? input.Data[i] : input.Data[t * n + i]);
                    float e = (m >= theta ? theta : 0f) - ann.Data[i];
                    _sums[t * channels + i % per / plane] += e;
                    float u = m - e; // the membrane had the neuron sent a; it fires again on that (the authors' spike_updated)
                    v[i] = u >= theta ? u - theta : u;
                }
            _count += (long)batch * plane;
        }

        /// <summary>b_t[c] = rate · mean e_t[c].</summary>
        public float[] Biases(float rate) => _sums.Select(s => rate * (float)(s / _count)).ToArray();
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
