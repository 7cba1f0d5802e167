using SpikeSharp.Autograd;
using SpikeSharp.Data;
using SpikeSharp.Nn;
using SpikeSharp.Snn;
using SpikeSharp.Tensors;

namespace SpikeSharp.Conversion.Methods;

/// <summary>
/// Parallel conversion (Hao et al., ICML 2025; docs/conversion-methods.md "parallel"): each activation becomes a
/// <see cref="ParallelNeuron"/> that sees its whole T-step window and fires its first k = clip(⌊T·x̄/θ + ½⌋, 0, T)
/// steps, the QCFS ANN exactly when T = L. Each t is simulated as its own window (the first t steps of a longer window
/// are not a t-step run), and the true latency is D·T for D spiking layers. With calibration, one pass over the
/// training images feeds each convolution's activation the SNN-path input z_s and the ANN-path input z_a side by side
/// and updates per-channel shifts: δ_in ← 0.99·δ_in + 0.01·mean(z_a − z_s), then δ_th ← 0.99·δ_th + 0.01·mean(y_a − y_s),
/// y_s the T-level quantizer of z_s + δ_in with spike size θ + δ_th, y_a the ANN's own QCFS output with the
/// checkpoint's L (the authors hard-code 8 there). Linear layers are not calibrated, as in the authors' code.
/// </summary>
[ConversionMethod("parallel", 5)]
public sealed class ParallelConversion(bool calibrate = false, int? calibrationImages = null) : ConversionMethod
{
    public ParallelConversion(MethodOptions o) : this(o.Calibrate) { }

    /// <summary>EMA rate of the shifts (the authors' 0.01).</summary>
    public const float ShiftRate = 0.01f;

    public bool CalibrateShifts { get; } = calibrate;

    /// <summary>Training images for the calibration pass; null: the whole training split.</summary>
    public int? CalibrationImages { get; } = calibrationImages is null or > 0 ? calibrationImages
        : throw new SpikeSharpException($"calibration images must be > 0, got {calibrationImages}");

    private string? _summary;

    public override string Name => "parallel";
    public override string Description => "parallel neurons (Hao et al. ICML 2025): each layer fires its first ⌊T·x̄/θ + ½⌋ steps after seeing its whole window; latency D·T" +
        (CalibrateShifts ? "; per-channel input and spike-size shifts calibrated on training images" : "");
    public override bool WindowPerT => true;
    public override int Latency(int t, int depth) => depth * t;
    public override string? CalibrationSummary => _summary;
    public override Func<string, Activation, float, SpikingNeuron> NeuronFactory => (layer, act, theta) => new ParallelNeuron(layer, theta, act);

    public override int Calibrate(SpikingNetwork snn, Module ann, CalibrationData data, int steps)
    {
        if (!CalibrateShifts) return 0;
        if (data.Train == null || data.Train.Count == 0)
            throw new SpikeSharpException("parallel --calibrate calibrates on training images, but no training split was found in --data");
        var neurons = snn.Neurons.OfType<ParallelNeuron>().ToDictionary(n => n.LayerName);
        var swaps = new List<Conversion.ModuleSwap>();
        var layers = new List<(string Name, ShiftCalibration Layer)>();
        void Visit(Module parent, string prefix)
        {
            foreach (var (childName, child) in parent.Children.ToList())
            {
                if (child is not Activation act) { Visit(child, prefix + childName + "."); continue; }
                if (act.Lambda == null || act.Levels == null)
                    throw new SpikeSharpException($"parallel --calibrate needs QCFS activations (λ and L); layer '{prefix + childName}' is {act.GetType().Name}");
                var layer = new ShiftCalibration(act, steps);
                layers.Add((prefix + childName, layer));
                swaps.Add(Conversion.ModuleSwap.Apply(parent, childName, layer));
            }
        }
        var set = CalibrationImages is { } cap ? data.Train.Take(Math.Min(cap, data.Train.Count)) : data.Train;
        try
        {
            Visit(ann, "");
            ann.Eval();
            using var loader = new DataLoader(set, data.BatchSize, data.Transform, shuffle: false, train: false, seed: 0);
            var arena = new TensorArena();
            foreach (var batch in loader.Epoch(0))
            {
                using var scope = arena.Activate();
                var both = Tensor.Scratch([2 * batch.Count, .. batch.Images.Shape[1..]]);
                batch.Images.Data.CopyTo(both.Data, 0);
                batch.Images.Data.CopyTo(both.Data, batch.Images.Length);
                ann.Forward(new Variable(both));
            }
        }
        finally
        {
            for (int i = swaps.Count - 1; i >= 0; i--) swaps[i].Undo();
        }
        int calibrated = 0;
        foreach (var (name, layer) in layers)
        {
            if (layer.InputShift == null || !neurons.TryGetValue(name, out var neuron)) continue;
            (neuron.InputShift, neuron.SpikeShift) = (layer.InputShift, layer.SpikeShift);
            calibrated++;
        }
        _summary = $"T = {steps}: per-channel shifts of {calibrated} convolutional layers from one pass over {set.Count} training images";
        data.Log?.Invoke($"parallel: {_summary}");
        return set.Count;
    }

    /// <summary>Stands in for one activation during the calibration pass: input [2B, …], the SNN path in the first B
    /// rows and the ANN path in the last B; returns [y_s; y_a] and updates the shifts (convolutions only).</summary>
    internal sealed class ShiftCalibration(Activation act, int steps) : Module
    {
        public float[]? InputShift { get; private set; }
        public float[]? SpikeShift { get; private set; }

        public override Variable Forward(Variable x)
        {
            var t = x.Value;
            int rows = t.Shape[0] / 2, per = t.SizeFrom(1), half = rows * per;
            bool conv = t.Rank == 4;
            int channels = t.Shape[1], plane = per / channels;
            float lambda = MathF.Abs(act.Lambda!.Value.Data[0]);
            var y = Tensor.Scratch(t.Shape);
            ReadOnlySpan<float> zs = t.Data.AsSpan(0, half), za = t.Data.AsSpan(half, half);
            Span<float> ys = y.Data.AsSpan(0, half), ya = y.Data.AsSpan(half, half);
            act.Forward(za, ya); // the ANN path: the activation's own quantizer, with the checkpoint's L
            if (conv)
            {
                InputShift ??= new float[channels];
                SpikeShift ??= new float[channels];
                Update(InputShift, za, zs, rows, per, plane);
            }
            for (int i = 0; i < half; i++)
            {
                int c = i % per / plane;
                float shiftIn = conv ? InputShift![c] : 0f, size = lambda + (conv ? SpikeShift![c] : 0f);
                ys[i] = Math.Clamp(MathF.Floor((zs[i] + shiftIn) * steps / lambda + 0.5f) / steps, 0f, 1f) * size;
            }
            if (conv) Update(SpikeShift!, ya, ys, rows, per, plane);
            return new Variable(y);
        }

        /// <summary>shift[c] ← 0.99·shift[c] + 0.01·mean over images and positions of (a − s) in channel c.</summary>
        private static void Update(float[] shift, ReadOnlySpan<float> a, ReadOnlySpan<float> s, int rows, int per, int plane)
        {
            for (int c = 0; c < shift.Length; c++)
            {
                double sum = 0;
                for (int b = 0; b < rows; b++)
                    for (int p = 0; p < plane; p++)
                    {
                        int i = b * per + c * plane + p;
                        sum += a[i] - s[i];
                    }
                shift[c] = (1 - ShiftRate) * shift[c] + ShiftRate * (float)(sum / ((double)rows * plane));
            }
        }
    }
}
