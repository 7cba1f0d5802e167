using System.CommandLine;
using SpikeSharp.Conversion;
using SpikeSharp.Conversion.Methods;
using SpikeSharp.Data;
using SpikeSharp.Interop;
using SpikeSharp.Reporting;
using SpikeSharp.Snn;

namespace SpikeSharp.Cli.Commands;

/// <summary><c>spikesharp evaluate</c>: ANN accuracy and, per method, SNN accuracy per time step, firing rates and
/// energy for a checkpoint (CLI.md).</summary>
internal static class EvaluateCommand
{
    public static Command Create()
    {
        var checkpoint = CliOptions.Make<string>("--checkpoint", "checkpoint directory (model.safetensors + model.json)", required: true);
        var data = CliOptions.Make<string>("--data", "directory with the dataset files (the dataset named in model.json)", required: true);
        var method = CliOptions.Make<string[]>("--method", $"conversion methods: {string.Join(", ", ConversionMethods.Names)} (none: ANN only)");
        method.AllowMultipleArgumentsPerToken = true;
        var timesteps = CliOptions.Make<string>("--timesteps", "counted time steps to report", "1,2,4,8,16,32");
        var presim = CliOptions.Make<int>("--presim", "τ for srp, ρ for cos", 4);
        var batch = CliOptions.Make<int>("--batch", "images per batch", 128);
        var limit = CliOptions.Make<int?>("--limit", "evaluate only the first N test images");
        var calImages = CliOptions.Make<int>("--calibration-images", "dual-phase: training images for calibration (a quarter more are held out to accept it)", 1024);
        var calSteps = CliOptions.Make<int>("--calibration-steps", "dual-phase: the horizon T the calibration targets", 8);
        var burst = CliOptions.Make<int>("--burst", "burst: the most unit spikes per step, m", Conversion.Methods.BurstConversion.DefaultMaxBurst);
        var calibrate = CliOptions.Make<bool>("--calibrate", "parallel: calibrate per-channel input and spike-size shifts on the whole training split (one pass per t)");
        var annAgreement = CliOptions.Make<bool>("--ann-agreement", "also run the ANN beside the SNN and report, per layer, |rate·θ − activation| and the share of images with the ANN's prediction (costs ~20 % more time)");
        var shard = CliOptions.Make<string?>("--shard", "evaluate only the K-th of N contiguous slices of the test set (K/N, K from 1) and write its raw counts to --json for `spikesharp merge`");
        var energy = CliOptions.Make<string>("--energy", $"energy preset: {string.Join(", ", EnergyModel.Presets.Select(p => p.Name))}", "45nm-fp32");
        var quiet = CliOptions.Quiet();
        var json = CliOptions.JsonOut();
        var folder = new CliOptions.ImageFolderFlags();
        var cmd = new Command("evaluate", "Evaluate a checkpoint as an ANN and, converted with each method, as an SNN.\n\nExample:\n  " +
            "spikesharp evaluate --checkpoint runs/r20/best --data ../shared/datasets/fashion-mnist --method qcfs --timesteps 1,2,4,8,16,32 --json eval.json")
        { checkpoint, data, method, timesteps, presim, batch, limit, calImages, calSteps, burst, calibrate, annAgreement, shard, energy, quiet, json };
        folder.AddTo(cmd);
        cmd.SetAction(r => Program.Guard(() =>
        {
            var steps = CliOptions.ParseIntList(r.GetValue(timesteps)!, "--timesteps");
            var part = r.GetValue(shard) is { } text ? Shard.Parse(text) : (Shard?)null;
            if (part != null && string.IsNullOrEmpty(r.GetValue(json)))
                throw new SpikeSharpException("--shard needs --json FILE: the shard's raw counts go there for `spikesharp merge`");
            var methods = (r.GetValue(method) ?? []).SelectMany(m => m.Split(',', StringSplitOptions.RemoveEmptyEntries))
                .Select(m => ConversionMethods.Create(m, new MethodOptions(r.GetValue(presim), r.GetValue(calImages), r.GetValue(calSteps), r.GetValue(burst), r.GetValue(calibrate)))).ToList();
            var report = Evaluate(r.GetValue(checkpoint)!, r.GetValue(data)!, methods, steps, r.GetValue(batch), r.GetValue(limit),
                EnergyModel.Get(r.GetValue(energy)!), new CliProgress(r.GetValue(quiet)), (c, h, w) => folder.For(r, c, h, w), r.GetValue(annAgreement), part);
            Console.Write(report.ToTable());
            CliOptions.WriteJson(r.GetValue(json), report.ToJson());
            return Program.Ok;
        }));
        return cmd;
    }

    public static EvaluationReport Evaluate(string checkpointDir, string dataDir, IReadOnlyList<ConversionMethod> methods, int[] steps,
        int batch, int? limit, EnergyModel energy, CliProgress progress, Func<int, int, int, ImageFolderOptions>? folder = null, bool compareWithAnn = false,
        Shard? shard = null)
    {
        if (batch <= 0) throw new SpikeSharpException($"--batch must be > 0, got {batch}");
        var cp = Checkpoint.Load(checkpointDir);
        // An image folder is decoded to the model's input size.
        var folderOptions = folder?.Invoke(cp.Spec.InChannels, cp.Spec.Height, cp.Spec.Width)
            ?? new ImageFolderOptions(cp.Spec.InChannels, cp.Spec.Height, cp.Spec.Width);
        var test = Datasets.Load(cp.Data.Dataset, dataDir, train: false, folderOptions);
        CliOptions.ReportSkipped(test);
        if (limit is { } n)
        {
            if (n <= 0) throw new SpikeSharpException($"--limit must be > 0, got {n}");
            test = test.Take(Math.Min(n, test.Count));
        }
        ImageSet? train = null;
        try { train = Datasets.Load(cp.Data.Dataset, dataDir, train: true, folderOptions); }
        catch (SpikeSharpException) { /* calibration data is optional; methods that need it say so */ }
        return progress.Run(tracker =>
        {
            string? current = null;
            var evaluator = new ConversionEvaluator
            {
                CheckpointDir = checkpointDir, Test = test, Train = train, BatchSize = batch, Energy = energy, CompareWithAnn = compareWithAnn, Shard = shard,
                Log = tracker.Note,
                OnProgress = (m, done, total) =>
                {
                    if (m != current) { if (current != null) tracker.Done($"{current}: {total} images simulated"); current = m; tracker.Begin(m); }
                    tracker.Update((double)done / total, $"{m}: {done}/{total} images");
                },
            };
            var report = evaluator.Run(methods, steps);
            if (current != null) tracker.Done($"{current}: {report.TestImages} images simulated");
            foreach (var s in report.Snn)
                foreach (var l in s.Layers.Where(l => l.DivergentNeurons > 0))
                    Console.Error.WriteLine($"warning: {s.Method}: layer '{l.Layer}': {l.DivergentNeurons} of {l.NeuronsPerImage * test.Count} neuron values " +
                        $"diverged (membrane potential NaN/Inf or beyond {Snn.IfNeuron.DivergenceFactor}·θ·T); check the threshold, BN folding and input normalization");
            return report;
        });
    }
}

/// <summary><c>spikesharp merge</c>: combines the JSON reports of <c>evaluate --shard K/N</c> into the report of one run.</summary>
internal static class MergeCommand
{
    public static Command Create()
    {
        var parts = new Argument<string[]>("parts") { Description = "the --json files of every shard (any order)", Arity = ArgumentArity.OneOrMore };
        var json = CliOptions.JsonOut();
        var cmd = new Command("merge", "Merge the reports of `evaluate --shard K/N` runs into the report one run over the whole test set gives.\n\nExample:\n  " +
            "spikesharp merge runs/shards/part-*.json --json eval.json") { parts, json };
        cmd.SetAction(r => Program.Guard(() =>
        {
            var report = ShardMerge.MergeFiles(r.GetValue(parts)!);
            Console.Write(report.ToTable());
            CliOptions.WriteJson(r.GetValue(json), report.ToJson());
            return Program.Ok;
        }));
        return cmd;
    }
}
