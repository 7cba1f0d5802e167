using System.Diagnostics;
using SpikeSharp.Autograd;
using SpikeSharp.Conversion.Methods;
using SpikeSharp.Data;
using SpikeSharp.Nn;
using SpikeSharp.Tensors;
using SpikeSharp.Training;

namespace SpikeSharp.Snn;

/// <summary>Spikes of one neuron layer over a simulation.</summary>
/// <param name="NeuronsPerImage">neurons in the layer for one image</param>
/// <param name="SpikesByStep">spikes emitted at each step t = 1..T, summed over images (a spike suppressed by an SRP mask is not emitted)</param>
/// <param name="AnnError">mean over neurons and images of |rate·θ − ANN activation| at the full horizon T, when an ANN
/// was given</param>
/// <param name="AnnMismatches">neuron values (over all images) where |rate·θ − activation| &gt; 10⁻⁴·θ</param>
/// <param name="DivergentNeurons">neuron values (over all images) whose membrane potential diverged by the end of the
/// run: NaN/Inf, or |v| &gt; <see cref="IfNeuron.DivergenceFactor"/>·θ·T (integrate-and-fire neurons only)</param>
public sealed record LayerActivity(string Layer, float Threshold, long NeuronsPerImage, long[] SpikesByStep, double? AnnError, long? AnnMismatches = null,
    long DivergentNeurons = 0)
{
    /// <summary>Spikes per neuron per step over steps 1..t.</summary>
    public double FiringRate(int images, int t) => SpikesByStep.Take(t).Sum() / Math.Max(1.0, (double)NeuronsPerImage * images * t);
}

/// <summary>What one simulation measured; per-step arrays are indexed t − 1. Extra steps (pre-simulation,
/// calibration runs) are reported apart from the counted steps. Counts are totals over the images, so results of
/// disjoint image sets add up (<see cref="Combine"/>) to what one run over all of them gives.</summary>
/// <param name="SopsByStep">synaptic operations at each counted step, summed over images (integer-valued)</param>
/// <param name="ExtraSops">synaptic operations of the extra steps, summed over images</param>
/// <param name="AnnAgreement">images whose SNN prediction at the full horizon equals the ANN's (when an ANN was given)</param>
public sealed record SimulationResult(int Images, int Steps, long[] CorrectByStep, IReadOnlyList<LayerActivity> Layers,
    double AnalogMacsPerImagePerStep, double[] SopsByStep, int ExtraSteps, double ExtraSops, long? AnnAgreement = null)
{
    /// <summary>Where the wall time of the run went.</summary>
    public SimulationTime Time { get; init; } = SimulationTime.Zero;

    public double Accuracy(int t) => Images == 0 ? 0 : (double)CorrectByStep[t - 1] / Images;

    /// <summary>Synaptic operations per image at each counted step.</summary>
    public double[] SopsPerImageByStep => SopsByStep.Select(PerImage).ToArray();

    public double ExtraSopsPerImage => PerImage(ExtraSops);

    /// <summary>Synaptic operations per image over steps 1..t.</summary>
    public double Sops(int t) => SopsByStep.Take(t).Sum(PerImage);

    private double PerImage(double total) => Images == 0 ? 0 : total / Images;

    /// <summary>Spikes per neuron per step, over all layers and steps 1..t.</summary>
    public double FiringRate(int t) =>
        Layers.Sum(l => l.SpikesByStep.Take(t).Sum()) / Math.Max(1.0, (double)Layers.Sum(l => l.NeuronsPerImage) * Images * t);

    /// <summary>Energy per image for counted steps 1..t plus the extra steps.</summary>
    public double EnergyPj(EnergyModel e, int t) => e.Snn(AnalogMacsPerImagePerStep * (t + ExtraSteps), Sops(t) + ExtraSopsPerImage);

    /// <summary>The result of one run over the union of the parts' (disjoint) image sets: counts add, the ANN rate
    /// error is weighted by images, times add. The parts must come from the same network, method and horizon.</summary>
    public static SimulationResult Combine(IReadOnlyList<SimulationResult> parts)
    {
        if (parts.Count == 0) throw new ArgumentException("nothing to combine", nameof(parts));
        var first = parts[0];
        foreach (var p in parts)
        {
            if (p.Steps != first.Steps || p.ExtraSteps != first.ExtraSteps || p.Layers.Count != first.Layers.Count)
                throw new SpikeSharpException($"cannot combine a run of {p.Steps} (+{p.ExtraSteps}) steps and {p.Layers.Count} spiking layers with one of {first.Steps} (+{first.ExtraSteps}) steps and {first.Layers.Count} layers");
            if (p.AnalogMacsPerImagePerStep != first.AnalogMacsPerImagePerStep)
                throw new SpikeSharpException($"cannot combine runs of different networks: {p.AnalogMacsPerImagePerStep} and {first.AnalogMacsPerImagePerStep} analog MACs per image and step");
            if ((p.AnnAgreement == null) != (first.AnnAgreement == null))
                throw new SpikeSharpException("cannot combine a run compared with the ANN (--ann-agreement) with one that was not");
        }
        int images = parts.Sum(p => p.Images);
        long[] SumLongs(Func<SimulationResult, long[]> of) => Enumerable.Range(0, first.Steps).Select(t => parts.Sum(p => of(p)[t])).ToArray();
        var layers = first.Layers.Select((l, i) =>
        {
            var all = parts.Select(p => p.Layers[i]).ToList();
            foreach (var o in all)
                if (o.Layer != l.Layer || o.Threshold != l.Threshold || o.NeuronsPerImage != l.NeuronsPerImage)
                    throw new SpikeSharpException($"cannot combine runs of different networks: layer {i} is '{o.Layer}' (θ = {o.Threshold}, {o.NeuronsPerImage} neurons) in one and '{l.Layer}' (θ = {l.Threshold}, {l.NeuronsPerImage} neurons) in another");
            return new LayerActivity(l.Layer, l.Threshold, l.NeuronsPerImage,
                Enumerable.Range(0, first.Steps).Select(t => all.Sum(o => o.SpikesByStep[t])).ToArray(),
                l.AnnError == null ? null : images == 0 ? 0 : parts.Sum(p => p.Layers[i].AnnError!.Value * p.Images) / images,
                l.AnnMismatches == null ? null : all.Sum(o => o.AnnMismatches!.Value), all.Sum(o => o.DivergentNeurons));
        }).ToList();
        return new SimulationResult(images, first.Steps, SumLongs(p => p.CorrectByStep), layers, first.AnalogMacsPerImagePerStep,
            Enumerable.Range(0, first.Steps).Select(t => parts.Sum(p => p.SopsByStep[t])).ToArray(), first.ExtraSteps, parts.Sum(p => p.ExtraSops),
            first.AnnAgreement == null ? null : parts.Sum(p => p.AnnAgreement!.Value))
        {
            Time = parts.Aggregate(SimulationTime.Zero, (sum, p) => sum + p.Time),
        };
    }
}

/// <summary>Wall time of one simulation: all of it, the network's own simulation, and the optional ANN comparison
/// (the ANN's forward pass with its activations recorded, and the per-layer rate comparison). The rest is data loading,
/// accuracy counting and bookkeeping.</summary>
public sealed record SimulationTime(double WallSeconds, double SimulateSeconds, double AnnForwardSeconds, double AnnCompareSeconds)
{
    public static readonly SimulationTime Zero = new(0, 0, 0, 0);

    public static SimulationTime operator +(SimulationTime a, SimulationTime b) =>
        new(a.WallSeconds + b.WallSeconds, a.SimulateSeconds + b.SimulateSeconds, a.AnnForwardSeconds + b.AnnForwardSeconds, a.AnnCompareSeconds + b.AnnCompareSeconds);

    public double SimulateFraction => WallSeconds > 0 ? SimulateSeconds / WallSeconds : 0;
}

/// <summary>
/// Runs a converted network over a dataset for T steps and measures, from one run, the accuracy at every t ≤ T
/// (prediction at t = argmax of the output summed over steps 1..t), spikes per layer and step, synaptic operations,
/// and, given the ANN, the per-layer error |rate·θ − activation|. Batches are split so T·B stays within
/// <see cref="MaxRows"/>; results do not depend on the split.
/// </summary>
public sealed class Simulator
{
    /// <summary>Default <see cref="MaxRows"/>: 512 rows (64 images at T = 8) keep the largest VGG-16 activation at
    /// 134 MB, so the peak working set stays below PyTorch's for the same batch; larger chunks gain no speed.</summary>
    public const int DefaultMaxRows = 512;

    public int MaxRows { get; init; } = DefaultMaxRows;

    /// <summary>Called with (images done, images total) after each chunk.</summary>
    public Action<int, int>? OnProgress { get; init; }

    public SimulationResult Run(SpikingNetwork snn, DataLoader loader, int steps, Module? ann = null, ConversionMethod? method = null)
    {
        if (steps <= 0) throw new SpikeSharpException($"the number of time steps must be positive, got {steps}");
        method ??= new QcfsConversion();
        method.Validate(steps);
        int layers = snn.Neurons.Count;
        var spikes = Enumerable.Range(0, layers).Select(_ => new long[steps]).ToArray();
        var perImage = new long[layers];
        var annErr = new double[layers];
        var annMismatch = new long[layers];
        var divergent = new long[layers];
        long agreement = 0;
        Tensor? annLogits = null;
        var correct = new long[steps];
        var sops = new double[steps];
        double extraSops = 0, analogPerImageStep = -1;
        int images = 0, chunkImages = 0;
        var annByLayer = new Dictionary<string, Tensor>();
        long wallStart = Stopwatch.GetTimestamp(), simulateTicks = 0, annTicks = 0, compareTicks = 0;
        var index = snn.Neurons.Select((n, i) => (n, i)).ToDictionary(p => p.n, p => p.i);
        var arena = new TensorArena();
        var monitors = snn.Neurons.Select(neuron => neuron.Attach((n, counts, output) =>
            {
                // Pre-simulation and calibration runs are extra latency, not counted steps.
                if (snn.InExtraRun || counts.Length != steps) return;
                int i = index[n];
                for (int t = 0; t < counts.Length; t++) spikes[i][t] += counts[t];
                perImage[i] = output.Length / ((long)chunkImages * steps);
                if (annByLayer.TryGetValue(n.LayerName, out var a))
                {
                    long compareStart = Stopwatch.GetTimestamp();
                    var (err, mismatches) = CompareRates(n.LayerName, output, a, steps, n.Threshold);
                    annErr[i] += err;
                    annMismatch[i] += mismatches;
                    compareTicks += Stopwatch.GetTimestamp() - compareStart;
                }
            })).ToList();
        try
        {
            foreach (var batch in loader.Epoch(0))
            {
                int chunk = Math.Max(1, MaxRows / steps);
                for (int b0 = 0; b0 < batch.Count; b0 += chunk)
                {
                    chunkImages = Math.Min(chunk, batch.Count - b0);
                    using var scope = arena.Activate();
                    var x = Rows(batch.Images, b0, chunkImages);
                    annByLayer.Clear();
                    if (analogPerImageStep < 0) analogPerImageStep = AnalogMacsPerImageStep(snn, x, steps);
                    long annStart = Stopwatch.GetTimestamp();
                    if (ann != null) annLogits = RecordAnn(ann, x, annByLayer);
                    annTicks += Stopwatch.GetTimestamp() - annStart;
                    using (var counter = OpCounter.StartSpiking(chunkImages, steps))
                    {
                        // The SNN keeps no intermediate (the ANN recordings above must survive, so only here).
                        arena.ReleaseIntermediates = true;
                        Tensor logits;
                        long simulateStart = Stopwatch.GetTimestamp();
                        try { logits = method.Simulate(snn, x, steps); }
                        finally { arena.ReleaseIntermediates = false; }
                        simulateTicks += Stopwatch.GetTimestamp() - simulateStart;
                        for (int i = 0; i < layers; i++) if (snn.Neurons[i] is IfNeuron f) divergent[i] += f.DivergentNeurons;
                        for (int t = 0; t < steps; t++) sops[t] += counter.SynapticOpsByStep[t];
                        extraSops += counter.ExtraSynapticOps;
                        CountCorrectByStep(logits, chunkImages, steps, batch.Labels.AsSpan(b0, chunkImages), correct);
                        if (annLogits != null) agreement += CountAgreement(logits, annLogits, chunkImages, steps);
                    }
                    images += chunkImages;
                    OnProgress?.Invoke(images, loader.Data.Count);
                }
            }
        }
        finally
        {
            foreach (var m in monitors) m.Dispose();
        }
        var activity = snn.Neurons.Select((n, i) => new LayerActivity(n.LayerName, n.Threshold, perImage[i], spikes[i],
            ann != null && images > 0 ? annErr[i] / images : null, ann != null ? annMismatch[i] : null, divergent[i])).ToList();
        static double Seconds(long ticks) => (double)ticks / Stopwatch.Frequency;
        return new SimulationResult(images, steps, correct, activity, Math.Max(0, analogPerImageStep), sops, method.ExtraSteps, extraSops,
            ann != null ? agreement : null)
        {
            // The ANN comparison runs inside the neurons' observers, so it is taken out of the simulation time.
            Time = new(Seconds(Stopwatch.GetTimestamp() - wallStart), Seconds(simulateTicks - compareTicks), Seconds(annTicks), Seconds(compareTicks)),
        };
    }

    /// <summary>MACs of the layers before the first neuron for one image and one step (they see the analog image). The
    /// probe runs the full horizon because some neurons (bit-serial) only run their own number of steps.</summary>
    private static double AnalogMacsPerImageStep(SpikingNetwork snn, Tensor batch, int steps)
    {
        var one = Rows(batch, 0, 1);
        foreach (var n in snn.Neurons) n.MonitorsPaused = true;
        try
        {
            using var counter = OpCounter.StartSpiking(1, steps);
            snn.Configure(1, steps);
            snn.Run(one, steps, extra: true);
            return counter.AnalogMacsPerStep;
        }
        finally
        {
            foreach (var n in snn.Neurons) n.MonitorsPaused = false;
        }
    }

    /// <summary>Rows [start, start+count) of a batch tensor (a copy in the active arena).</summary>
    public static Tensor Rows(Tensor batch, int start, int count)
    {
        if (start == 0 && count == batch.Shape[0]) return batch;
        var shape = (int[])batch.Shape.Clone();
        shape[0] = count;
        var t = Tensor.Scratch(shape);
        int per = batch.SizeFrom(1);
        batch.Data.AsSpan(start * per, count * per).CopyTo(t.Data);
        return t;
    }

    /// <summary>Adds, for each t, how many images the running sum of outputs over steps 1..t classifies correctly.</summary>
    public static void CountCorrectByStep(Tensor outputs, int batch, int steps, ReadOnlySpan<int> labels, long[] correct)
    {
        int k = outputs.SizeFrom(1);
        var sum = new float[batch * k];
        for (int t = 0; t < steps; t++)
        {
            TensorPrimitives.Add(sum, outputs.Data.AsSpan(t * batch * k, batch * k), sum);
            correct[t] += Evaluation.CountCorrect(sum, k, labels);
        }
    }

    /// <summary>Runs the ANN on the chunk, keeping each activation's output; returns the ANN's logits.</summary>
    private static Tensor RecordAnn(Module ann, Tensor x, Dictionary<string, Tensor> byLayer)
    {
        ann.Eval();
        using var rec = ActivationRecorder.Start();
        var logits = ann.Forward(new Variable(x)).Value;
        foreach (var (name, m) in ann.NamedModules())
            if (m is Activation && rec.Outputs(m).Count > 0) byLayer[name] = rec.Outputs(m)[^1];
        return logits;
    }

    /// <summary>(Σ over images of the mean over neurons of |mean_t output − ANN activation|, number of neuron values
    /// differing by more than 10⁻⁴·θ).</summary>
    private static (double Error, long Mismatches) CompareRates(string layer, Tensor output, Tensor annAct, int steps, float theta)
    {
        int n = annAct.Length;
        // A skipped comparison would report zero error: a mismatch means the ANN is not the network that was converted.
        if (output.Length != (long)n * steps)
            throw new SpikeSharpException($"layer '{layer}': the SNN emits {output.Length} values over {steps} steps but the ANN's activation has {n}; " +
                "pass the ANN the SNN was converted from");
        var rate = new float[n];
        for (int t = 0; t < steps; t++) TensorPrimitives.Add(rate, output.Data.AsSpan(t * n, n), rate);
        TensorPrimitives.Multiply(rate, 1f / steps, rate);
        TensorPrimitives.Subtract(rate, annAct.Data, rate);
        long mismatches = 0;
        foreach (float d in rate) if (Math.Abs(d) > 1e-4f * theta) mismatches++;
        return (TensorPrimitives.SumOfMagnitudes(rate) / (n / annAct.Shape[0]), mismatches);
    }

    /// <summary>Images whose summed SNN output over all steps has the same argmax as the ANN's logits.</summary>
    private static int CountAgreement(Tensor snnOut, Tensor annLogits, int batch, int steps)
    {
        int k = annLogits.SizeFrom(1), agree = 0;
        var sum = new float[k];
        for (int b = 0; b < batch; b++)
        {
            Array.Clear(sum);
            for (int t = 0; t < steps; t++) TensorPrimitives.Add(sum, snnOut.Data.AsSpan((t * batch + b) * k, k), sum);
            if (TensorPrimitives.IndexOfMax(sum) == TensorPrimitives.IndexOfMax(annLogits.Data.AsSpan(b * k, k))) agree++;
        }
        return agree;
    }
}
