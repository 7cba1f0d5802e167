using System.CommandLine;
using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using SpikeSharp.Conversion;
using SpikeSharp.Conversion.Methods;
using SpikeSharp.Data;
using SpikeSharp.Interop;
using SpikeSharp.Models;
using SpikeSharp.Nn;
using SpikeSharp.Reporting;
using SpikeSharp.Snn;
using SpikeSharp.Snn.Monitors;
using SpikeSharp.Training;

namespace SpikeSharp.Cli.Commands;

/// <summary><c>spikesharp demo</c>: the whole pipeline in minutes on the bundled MNIST sample — train a QCFS CNN,
/// convert it with every method, print one table and write a report folder.</summary>
internal static class DemoCommand
{
    public static Command Create()
    {
        var outDir = CliOptions.Make<string>("--out", "report and checkpoint folder", Path.Combine("runs", "demo"));
        var data = CliOptions.Make<string?>("--data", "dataset folder (default: the bundled MNIST sample in data/)");
        var dataset = CliOptions.Make<string>("--dataset", $"dataset: {string.Join(", ", Datasets.Names)}", "mnist");
        var model = CliOptions.Make<string>("--model", $"architecture: {string.Join(", ", ModelSpec.Names)}", "cnn-small");
        var epochs = CliOptions.Make<int>("--epochs", "training epochs", 8);
        var methods = CliOptions.Make<string>("--methods", "conversion methods, comma-separated (bit-serial needs a model with L = 2^T − 1 levels)", "qcfs,srp,cos,dual-phase");
        var timesteps = CliOptions.Make<string>("--timesteps", "counted time steps to report", "1,2,4,8,16,32");
        var limit = CliOptions.Make<int?>("--limit", "use only the first N training and N/4 test images (quick runs)");
        var json = CliOptions.JsonOut();
        var cmd = new Command("demo", "Train a small QCFS network on the bundled MNIST sample, convert it with every method, and write a report " +
            "(report.json, report.md, report.html).\n\nExamples:\n  spikesharp demo\n  " +
            "spikesharp demo --data ../shared/datasets/fashion-mnist --dataset fashion-mnist --model resnet20 --epochs 10 --out runs/demo-fmnist")
        { outDir, data, dataset, model, epochs, methods, timesteps, limit, json };
        cmd.SetAction(r => Program.Guard(() =>
        {
            var total = Stopwatch.StartNew();
            string dsName = r.GetValue(dataset)!, outPath = r.GetValue(outDir)!;
            string dataDir = r.GetValue(data) ?? FindBundledData();
            var steps = CliOptions.ParseIntList(r.GetValue(timesteps)!, "--timesteps");
            var methodList = r.GetValue(methods)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
                .Select(m => ConversionMethods.Create(m, new MethodOptions(CalibrationImages: 1024, CalibrationSteps: 4))).ToList();
            foreach (var m in methodList) m.Validate(steps.Max());
            var train = Datasets.Load(dsName, dataDir, train: true);
            var test = Datasets.Load(dsName, dataDir, train: false);
            if (r.GetValue(limit) is { } n)
            {
                if (n < 8) throw new SpikeSharpException($"--limit must be at least 8, got {n}");
                (train, test) = (train.Take(Math.Min(n, train.Count)), test.Take(Math.Min(Math.Max(4, n / 4), test.Count)));
            }
            var (c, h, w) = TrainCommand.DefaultInputShape(r.GetValue(model)!, train);
            var spec = new ModelSpec(r.GetValue(model)!, c, h, w, train.Classes, 1f, ActivationSpec.Qcfs(4, 8f));
            // Digits and other grayscale sets must not be flipped; CIFAR gets crop + flip.
            bool gray = train.Channels == 1;
            var options = new TrainOptions { Epochs = r.GetValue(epochs), LearningRate = 0.1f, CropPadding = gray ? 0 : 4, HorizontalFlip = !gray };
            var norm = Datasets.DefaultNormalization(dsName);
            Trainer.EnsureWritable(outPath);
            var trainer = new Trainer(spec, options, new DataInfo(Datasets.Canonical(dsName), norm.Mean, norm.Std))
            {
                OnEpoch = e => Console.WriteLine($"      epoch {e.Epoch,2}: loss {e.TrainLoss:0.000}  test {e.TestAccuracy:P2}  ({e.Seconds:0.0} s)"),
            };
            Console.WriteLine($"[1/3] training {spec.Name} with QCFS (L = 4) on {dsName}: {train.Count} train / {test.Count} test images, {options.Epochs} epochs");
            var trainWatch = Stopwatch.StartNew();
            var history = trainer.Run(train, test, outPath);
            double trainSeconds = trainWatch.Elapsed.TotalSeconds;
            string checkpoint = Path.Combine(outPath, Trainer.LastDir);
            Console.WriteLine($"[2/3] converting with {string.Join(", ", methodList.Select(m => m.Name))} and simulating T = {steps.Max()} steps on {test.Count} test images");
            var report = new ConversionEvaluator { CheckpointDir = checkpoint, Test = test, Train = train }.Run(methodList, steps);
            Console.WriteLine();
            Console.Write(report.ToTable());
            var doc = report.ToJson();
            doc["title"] = $"SpikeSharp demo: {spec.Name} with QCFS on {Datasets.Canonical(dsName)}";
            doc["command"] = "spikesharp " + string.Join(" ", Environment.GetCommandLineArgs().Skip(1));
            doc["training"] = new JsonObject
            {
                ["epochs"] = JsonSerializer.SerializeToNode(history, new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower }),
                ["seconds"] = trainSeconds,
                ["checkpoint"] = checkpoint,
                ["note"] = "the checkpoint used is the last epoch (no selection on the test set)",
            };
            doc["raster"] = Raster(checkpoint, test, steps.Max());
            doc["seconds_total"] = total.Elapsed.TotalSeconds;
            string reportDir = Path.Combine(outPath, "report");
            ReportWriter.Write(reportDir, doc);
            CliOptions.WriteJson(r.GetValue(json), doc);
            Console.WriteLine($"[3/3] report: {Path.Combine(reportDir, ReportWriter.HtmlFile)} (also report.md, report.json); total {total.Elapsed.TotalSeconds:0} s");
            return Program.Ok;
        }));
        return cmd;
    }

    private static JsonObject Raster(string checkpoint, ImageSet test, int steps)
    {
        var cp = Checkpoint.Load(checkpoint);
        var snn = Converter.Convert(cp.Model);
        var transform = TransformSpec.ForEval(cp.Spec.InChannels, cp.Spec.Height, cp.Spec.Width, new Normalization(cp.Data.Mean, cp.Data.Std));
        using var loader = new DataLoader(test.Take(1), 1, transform, shuffle: false, train: false, seed: 0);
        var image = loader.Epoch(0).First().Images;
        return SpikeRaster.Record(snn, image, steps);
    }

    /// <summary>The repository's data/ folder, searched from the working directory and from the program's location.</summary>
    public static string FindBundledData()
    {
        foreach (var start in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
            for (var d = new DirectoryInfo(start); d != null; d = d.Parent)
            {
                string candidate = Path.Combine(d.FullName, "data");
                if (File.Exists(Path.Combine(candidate, "train-images-idx3-ubyte.gz"))) return candidate;
            }
        throw new SpikeSharpException("the bundled MNIST sample (data/train-images-idx3-ubyte.gz) was not found above the current directory; pass --data DIR");
    }
}

/// <summary><c>spikesharp report</c>: re-renders report.md and report.html from a saved report.json.</summary>
internal static class ReportCommand
{
    public static Command Create()
    {
        var run = CliOptions.Make<string>("--run", "a report folder (with report.json), or a run folder containing report/", required: true);
        var cmd = new Command("report", "Rebuild report.md and report.html from saved results.\n\nExample:\n  spikesharp report --run runs/demo/report") { run };
        cmd.SetAction(r => Program.Guard(() =>
        {
            string dir = r.GetValue(run)!;
            if (!File.Exists(Path.Combine(dir, ReportWriter.JsonFile)) && File.Exists(Path.Combine(dir, "report", ReportWriter.JsonFile)))
                dir = Path.Combine(dir, "report");
            ReportWriter.Rebuild(dir);
            Console.WriteLine($"rebuilt {Path.Combine(dir, ReportWriter.MarkdownFile)} and {Path.Combine(dir, ReportWriter.HtmlFile)}");
            return Program.Ok;
        }));
        return cmd;
    }
}
