using System.Diagnostics;
using SpikeSharp.Autograd;
using SpikeSharp.Conversion.Methods;
using SpikeSharp.Data;
using SpikeSharp.Interop;
using SpikeSharp.Reporting;
using SpikeSharp.Snn;
using SpikeSharp.Training;

namespace SpikeSharp.Conversion;

/// <summary>
/// The evaluate pipeline: load a checkpoint, measure the ANN on the test images, then for each method convert a fresh
/// copy of the model and simulate the SNN for max(t) steps, reporting every requested t from that one run.
/// Calibration, where a method needs it, uses TRAINING images only.
/// </summary>
public sealed class ConversionEvaluator
{
    public required string CheckpointDir { get; init; }
    public required ImageSet Test { get; init; }
    /// <summary>Training images for calibration (threshold balancing, methods that calibrate); may be null.</summary>
    public ImageSet? Train { get; init; }
    public int BatchSize { get; init; } = 128;

    /// <summary>Evaluate only this slice of <see cref="Test"/>; the report then carries the raw counts that
    /// <see cref="ShardMerge"/> adds up. Calibrations use the same training images in every shard.</summary>
    public Shard? Shard { get; init; }

    /// <summary>Also run the ANN on every chunk and compare it layer by layer with the SNN (per-layer rate error and
    /// prediction agreement in the report). Off by default: it costs about a fifth of the simulation's wall time.</summary>
    public bool CompareWithAnn { get; init; }
    public EnergyModel Energy { get; init; } = EnergyModel.Fp32;
    public Action<string>? Log { get; init; }
    public Action<string, int, int>? OnProgress { get; init; }

    public EvaluationReport Run(IReadOnlyList<ConversionMethod> methods, IReadOnlyList<int> timesteps)
    {
        if (timesteps.Count == 0 || timesteps.Any(t => t <= 0)) throw new SpikeSharpException("--timesteps must list positive integers");
        int horizon = timesteps.Max();
        foreach (var m in methods) m.Validate(horizon);
        var annCheckpoint = Checkpoint.Load(CheckpointDir);
        foreach (var m in methods) m.ValidateModel(annCheckpoint.Spec.ActivationOrDefault, horizon);
        var ann = annCheckpoint.Model;
        ann.Eval();
        var transform = TransformSpec.ForEval(annCheckpoint.Spec.InChannels, annCheckpoint.Spec.Height, annCheckpoint.Spec.Width,
            new Normalization(annCheckpoint.Data.Mean, annCheckpoint.Data.Std));
        transform.Validate(Test);
        var test = Shard is { } shard ? shard.Of(Test) : Test;
        using var loader = new DataLoader(test, BatchSize, transform, shuffle: false, train: false, seed: 0);
        string model = annCheckpoint.Spec.Graph?.Name ?? annCheckpoint.Spec.Name;
        Log?.Invoke($"ANN: {model}, {test.Count} test images" + (Shard is { } sh ? $" (shard {sh} of {Test.Count})" : ""));
        long annCorrect = (long)Math.Round(Evaluation.Accuracy(ann, loader) * test.Count);
        long macs = MacsPerImage(annCheckpoint);
        var reports = new List<SnnReport>();
        foreach (var method in methods)
        {
            var sw = Stopwatch.StartNew();
            var copy = Checkpoint.Load(CheckpointDir).Model;
            var calibration = CalibrationImages(transform, annCheckpoint);
            var snn = Converter.Convert(copy, method.Options, calibration?.Images, Log, method.NeuronFactory);
            Log?.Invoke($"SNN ({method.Name}): {snn.Neurons.Count} spiking layers, T = {horizon}{(method.ExtraSteps > 0 ? $" + {method.ExtraSteps} extra steps" : "")}");
            // Causal neurons: one run of the longest horizon, read at every t. Windowed neurons: one run (and
            // calibration) per t.
            int[] windows = method.WindowPerT ? timesteps.Distinct().Order().ToArray() : [horizon];
            var runs = new SortedDictionary<int, SimulationResult>();
            int methodImages = 0;
            foreach (int window in windows)
            {
                methodImages = Math.Max(methodImages, method.Calibrate(snn, ann, new CalibrationData(Train, transform, BatchSize, Log), window));
                string label = windows.Length > 1 ? $"{method.Name} (T = {window})" : method.Name;
                var sim = new Simulator { OnProgress = (done, total) => OnProgress?.Invoke(label, done, total) };
                runs[window] = sim.Run(snn, loader, window, CompareWithAnn ? ann : null, method);
            }
            int calImages = methodImages + (calibration?.Count ?? 0);
            string calData = calImages > 0 ? "training split" : "none";
            reports.Add(SnnReport.From(method, calImages, calData, runs, timesteps, Energy, sw.Elapsed.TotalSeconds, depth: snn.Neurons.Count));
        }
        return new EvaluationReport(model, annCheckpoint.Data.Dataset, test.Count, test.Count == 0 ? 0 : (double)annCorrect / test.Count,
            macs, Energy, reports, CheckpointDir, loader.Statistics)
        {
            AnnCorrect = annCorrect,
            Shard = Shard is { } part ? new EvaluationShard(part.Index, part.Count, part.Range(Test.Count).Start, Test.Count, CheckpointFiles.Fingerprint(CheckpointDir)) : null,
        };
    }

    /// <summary>Threshold balancing for ReLU checkpoints needs calibration images: the first 512 training images.</summary>
    private (List<Tensors.Tensor> Images, int Count)? CalibrationImages(TransformSpec transform, Checkpoint cp)
    {
        if (cp.Spec.ActivationOrDefault.Kind != "relu") return null;
        if (Train == null) throw new SpikeSharpException("this checkpoint uses plain ReLU: converting it needs training images for threshold balancing, but none were found in --data");
        var subset = Train.Take(Math.Min(512, Train.Count));
        using var l = new DataLoader(subset, BatchSize, transform, shuffle: false, train: false, seed: 0);
        var images = l.Epoch(0).Select(b => b.Images.Clone()).ToList();
        return (images, subset.Count);
    }

    private static long MacsPerImage(Checkpoint cp)
    {
        using var counter = OpCounter.Start();
        cp.Model.Forward(new Variable(new Tensors.Tensor(1, cp.Spec.InChannels, cp.Spec.Height, cp.Spec.Width)));
        return counter.TotalMacs;
    }
}
