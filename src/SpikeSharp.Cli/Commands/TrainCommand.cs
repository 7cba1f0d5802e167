using System.CommandLine;
using System.Text.Json;
using System.Text.Json.Nodes;
using SpikeSharp.Data;
using SpikeSharp.Interop;
using SpikeSharp.Models;
using SpikeSharp.Nn;
using SpikeSharp.Training;

namespace SpikeSharp.Cli.Commands;

/// <summary><c>spikesharp train</c>: trains a model on a dataset and writes checkpoints (CLI.md).</summary>
internal static class TrainCommand
{
    public static Command Create()
    {
        var model = CliOptions.Make<string?>("--model", $"architecture: {string.Join(", ", ModelSpec.Names)} (or --graph)");
        var graphFile = CliOptions.Make<string?>("--graph", "train the network described by this graph JSON instead of a built-in (its activation nodes take --preset/--activation when given)");
        var dataset = CliOptions.Make<string>("--dataset", $"dataset: {string.Join(", ", Datasets.Names)}", required: true);
        var data = CliOptions.Make<string>("--data", "directory with the dataset files", required: true);
        var outDir = CliOptions.Make<string>("--out", "output directory (last/, best/, train_log.jsonl)", required: true);
        var activation = CliOptions.Make<string?>("--activation", "relu | clip | qcfs (default: the preset's, else relu)");
        var levels = CliOptions.Make<int?>("--levels", "QCFS quantization levels L (default 4)");
        var epochs = CliOptions.Make<int?>("--epochs", "epochs (default 30)");
        var batch = CliOptions.Make<int?>("--batch", "batch size (default 128)");
        var lr = CliOptions.Make<float?>("--lr", "initial learning rate (default: the preset's, else 0.1)");
        var wd = CliOptions.Make<float?>("--wd", "weight decay, applied to λ too (default 5e-4)");
        var seed = CliOptions.Make<int>("--seed", "random seed for init, shuffling and augmentation", 42);
        var width = CliOptions.Make<float>("--width", "channel width multiplier", 1f);
        var preset = CliOptions.Make<string?>("--preset", $"recipe preset: {string.Join(", ", TrainPresets.All.Select(p => p.Name))}");
        var resume = CliOptions.Make<bool>("--resume", "continue from OUT/last if it exists");
        var inputShape = CliOptions.Make<string?>("--input-shape", "model input CxHxW (default: the dataset's, padded to 32x32 for vgg/resnet)");
        var limit = CliOptions.Make<int?>("--limit", "use only the first N training images (quick runs)");
        var optimizer = CliOptions.Make<string?>("--optimizer", "sgd | adam (default sgd)");
        var augment = CliOptions.Make<string?>("--augment", "none | basic (crop+flip) | full (crop+flip+AutoAugment+Cutout); default: the preset's, else basic");
        var lambdaInit = CliOptions.Make<float?>("--lambda-init", "initial λ of clip/QCFS activations (default 8)");
        var schedule = CliOptions.Make<string?>("--schedule", $"learning-rate schedule: {string.Join(", ", LrSchedule.Kinds)} (default cosine to 0)");
        var labelSmoothing = CliOptions.Make<float?>("--label-smoothing", "cross-entropy label smoothing ε (default 0)");
        var wdExempt = CliOptions.Make<string?>("--wd-exempt", "parameters without weight decay: bn, lambda, or bn,lambda (default: decay on all, as the reference codes)");
        var initFrom = CliOptions.Make<string?>("--init-from", "start from this checkpoint's weights (e.g. dual-phase Phase I: a clip model fine-tuned with --activation noisyqc)");
        var spikeBeta = CliOptions.Make<float?>("--spike-beta", "β of the spike-count (popcount) regularizer for QCFS layers (spec §5); default 0");
        var quiet = CliOptions.Quiet();
        var json = CliOptions.JsonOut();

        var cmd = new Command("train", "Train an ANN (ReLU, clip or QCFS activations) and save checkpoints.\n\nExample:\n  " +
            "spikesharp train --model resnet20 --dataset fashion-mnist --data ../shared/datasets/fashion-mnist --out runs/r20 --preset qcfs --epochs 20")
        {
            model, graphFile, dataset, data, outDir, activation, levels, epochs, batch, lr, wd, seed, width, preset, resume, inputShape, limit,
            optimizer, augment, lambdaInit, spikeBeta, initFrom, schedule, labelSmoothing, wdExempt, quiet, json,
        };
        var folder = new CliOptions.ImageFolderFlags();
        folder.AddTo(cmd);
        cmd.SetAction(r => Program.Guard(() =>
        {
            if ((r.GetValue(model) == null) == (r.GetValue(graphFile) == null))
                throw new SpikeSharpException("give --model NAME (a built-in) or --graph FILE (your own network), one of them");
            var graph = r.GetValue(graphFile) is { } gf ? Graphs.Graph.Load(gf) : null;
            if (graph is { Name: "graph" }) graph = graph.Named(Path.GetFileNameWithoutExtension(r.GetValue(graphFile)!));
            // A graph keeps its own activation nodes unless the recipe names one.
            bool recipeActivation = r.GetValue(preset) != null || r.GetValue(activation) != null || r.GetValue(levels) != null || r.GetValue(lambdaInit) != null;
            var p = r.GetValue(preset) is { } pn ? TrainPresets.Get(pn) : null;
            var act = p?.Activation ?? ActivationSpec.Relu;
            if (r.GetValue(activation) is { } a) act = act with { Kind = a };
            if (r.GetValue(levels) is { } l) act = act with { Levels = l };
            if (r.GetValue(lambdaInit) is { } li) act = act with { LambdaInit = li };
            var opts = p?.Options ?? new TrainOptions();
            opts = opts with { Seed = r.GetValue(seed) };
            if (r.GetValue(epochs) is { } e) opts = opts with { Epochs = e };
            if (r.GetValue(batch) is { } b) opts = opts with { BatchSize = b };
            if (r.GetValue(lr) is { } rate) opts = opts with { LearningRate = rate };
            if (r.GetValue(wd) is { } decay) opts = opts with { WeightDecay = decay };
            if (r.GetValue(optimizer) is { } o) opts = opts with { Optimizer = o };
            if (r.GetValue(spikeBeta) is { } sb) opts = opts with { SpikeCountBeta = sb };
            if (r.GetValue(schedule) is { } sch) opts = opts with { Schedule = opts.Schedule with { Kind = sch } };
            if (r.GetValue(labelSmoothing) is { } ls) opts = opts with { LabelSmoothing = ls };
            foreach (var ex in (r.GetValue(wdExempt) ?? "").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
                (opts, act) = ex switch
                {
                    "bn" => (opts with { WeightDecayOnBatchNorm = false }, act),
                    "lambda" => (opts, act with { LambdaWeightDecay = false }),
                    _ => throw new SpikeSharpException($"--wd-exempt: unknown group '{ex}'; expected bn or lambda"),
                };
            if (r.GetValue(augment) is { } aug)
                opts = aug switch
                {
                    "none" => opts with { CropPadding = 0, HorizontalFlip = false, AutoAugment = false, CutoutLength = 0 },
                    "basic" => opts with { CropPadding = 4, HorizontalFlip = true, AutoAugment = false, CutoutLength = 0 },
                    "full" => opts with { CropPadding = 4, HorizontalFlip = true, AutoAugment = true, CutoutLength = 16 },
                    _ => throw new SpikeSharpException($"--augment '{aug}': expected none, basic or full"),
                };
            Trainer.EnsureWritable(r.GetValue(outDir)!); // before loading data: a bad --out fails in a second, not after minutes
            string dsName = r.GetValue(dataset)!;
            string dataDir = r.GetValue(data)!;
            (int C, int H, int W)? shape = r.GetValue(inputShape) is { } s ? CliOptions.ParseShape(s, "--input-shape") : null;
            bool folderSet = Datasets.Canonical(dsName) == Datasets.ImageFolderName;
            // Image folders are decoded to the model's input (default 3x224x224); their augmentation is the
            // random-resized crop, which replaces the padded crop.
            var folderOptions = shape is var (fc, fh, fw) ? folder.For(r, fc, fh, fw) : folder.For(r, 3, 224, 224);
            if (folderSet) opts = opts with { CropPadding = 0 };
            var train = Datasets.Load(dsName, dataDir, train: true, folderOptions);
            var test = Datasets.Load(dsName, dataDir, train: false, folderOptions);
            CliOptions.ReportSkipped(train);
            CliOptions.ReportSkipped(test);
            if (r.GetValue(limit) is { } n)
            {
                if (n <= 0) throw new SpikeSharpException($"--limit must be > 0, got {n}");
                train = train.Take(Math.Min(n, train.Count));
            }
            ModelSpec spec;
            if (graph != null)
            {
                if (shape != null) throw new SpikeSharpException("--input-shape does not apply to --graph: the graph's input shape is the model's");
                if (graph.Classes != train.Classes) throw new SpikeSharpException($"the graph outputs {graph.Classes} classes but {dsName} has {train.Classes}");
                spec = ModelSpec.For(graph, recipeActivation ? act : null);
                act = spec.ActivationOrDefault;
            }
            else
            {
                var (mc, mh, mw) = shape ?? DefaultInputShape(r.GetValue(model)!, train);
                spec = new ModelSpec(r.GetValue(model)!, mc, mh, mw, train.Classes, r.GetValue(width), act);
            }
            var (c, h, w) = (spec.InChannels, spec.Height, spec.Width);
            var norm = Datasets.DefaultNormalization(dsName);
            var trainer = new Trainer(spec, opts, new DataInfo(Datasets.Canonical(dsName), norm.Mean, norm.Std));
            if (r.GetValue(initFrom) is { } init)
            {
                // Activations may differ (clip → noisyqc): parameters are matched by name, λ included.
                var source = Checkpoint.Load(init);
                trainer.Model.LoadStateDict(source.Model.StateDict().ToDictionary(kv => kv.Key, kv => kv.Value));
                Console.WriteLine($"initialized from {init} ({source.Spec.Name}, activation {source.Spec.ActivationOrDefault.Kind})");
            }
            string outPath = r.GetValue(outDir)!;
            if (!r.GetValue(quiet)) Console.WriteLine($"train {spec.Name} ({c}x{h}x{w}, {spec.Classes} classes, width {spec.WidthMultiplier}) on {dsName}: " +
                $"{train.Count} train / {test.Count} test images; activation {act.Kind}{(act.Kind == "qcfs" ? $" L={act.Levels}" : "")}; " +
                $"{opts.Epochs} epochs, batch {opts.BatchSize}, {opts.Optimizer} lr {opts.LearningRate} wd {opts.WeightDecay}; " +
                $"{trainer.Model.Parameters().Sum(q => q.Value.Length):N0} parameters; threads {Tensors.WorkerPool.Shared.Count}");
            var history = Run(trainer, train, test, outPath, r.GetValue(resume), new CliProgress(r.GetValue(quiet)));
            var last = history.Count > 0 ? history[^1] : null;
            Console.WriteLine(last == null ? "nothing to do: all epochs already done" :
                $"done: test accuracy {last.TestAccuracy:P2} after {last.Epoch} epochs; best {history.Max(hh => hh.TestAccuracy):P2} (selected on the test set); checkpoints in {outPath}/last and {outPath}/best");
            var result = new JsonObject
            {
                ["model"] = spec.Name, ["dataset"] = Datasets.Canonical(dsName), ["train_images"] = train.Count, ["test_images"] = test.Count,
                ["epochs"] = JsonSerializer.SerializeToNode(history, new JsonSerializerOptions { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower }),
                ["test_accuracy"] = last?.TestAccuracy,
                ["checkpoint"] = Path.Combine(outPath, Trainer.LastDir),
            };
            CliOptions.WriteJson(r.GetValue(json), result);
            return Program.Ok;
        }));
        return cmd;
    }

    /// <summary>CIFAR architectures take at least 32×32 inputs: smaller images are padded (28 → 32).</summary>
    public static (int C, int H, int W) DefaultInputShape(string model, ImageSet data) =>
        model == "cnn-small" ? (data.Channels, data.Height, data.Width) : (data.Channels, Math.Max(32, data.Height), Math.Max(32, data.Width));

    private static IReadOnlyList<EpochResult> Run(Trainer trainer, ImageSet train, ImageSet test, string outDir, bool resume, CliProgress progress)
    {
        using var cts = new CancellationTokenSource();
        Console.CancelKeyPress += (_, e) => { e.Cancel = true; cts.Cancel(); };
        return progress.Run(tracker =>
        {
            int current = -1;
            trainer.OnProgress = p =>
            {
                if (p.Epoch != current) { current = p.Epoch; tracker.Begin($"epoch {p.Epoch}/{p.Epochs}"); }
                tracker.Update((double)p.Batch / p.Batches, $"epoch {p.Epoch}/{p.Epochs}  loss {p.Loss:0.000}  acc {p.Accuracy:P1}  {p.ImagesPerSecond:0} img/s");
            };
            trainer.OnEpoch = e => tracker.Done(
                $"epoch {e.Epoch,3}  lr {e.LearningRate:0.#####}  loss {e.TrainLoss:0.0000}  train {e.TrainAccuracy:P2}  test {e.TestAccuracy:P2}  " +
                (e.TestSpikesPerImage is { } sp ? $"spikes/img {sp:0}  " : "") + $"{e.Seconds:0.0} s ({e.ImagesPerSecond:0} img/s)");
            return trainer.Run(train, test, outDir, resume, cts.Token);
        });
    }
}
