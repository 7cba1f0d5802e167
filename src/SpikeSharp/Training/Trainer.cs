using System.Diagnostics;
using System.Text.Json;
using System.Text.Json.Nodes;
using SpikeSharp.Autograd;
using SpikeSharp.Autograd.Ops;
using SpikeSharp.Data;
using SpikeSharp.Interop;
using SpikeSharp.Models;
using SpikeSharp.Nn;
using SpikeSharp.Tensors;

namespace SpikeSharp.Training;

/// <summary>
/// Trains a model epoch by epoch. After every epoch it appends to <c>train_log.jsonl</c> and atomically replaces
/// <c>last/</c> (checkpoint + optimizer state), and <c>best/</c> when test accuracy improved. NOTE: "best" is
/// selected on the TEST set (as the reference codes do); model.json records that. Every random choice derives from
/// (seed, epoch), so a run resumed from <c>last/</c> ends where an uninterrupted one would.
/// </summary>
public sealed class Trainer
{
    public const string LastDir = "last", BestDir = "best", LogFile = "train_log.jsonl";
    private const string StateTensors = "train_state.safetensors", StateJson = "train_state.json";

    private readonly ModelSpec _spec;
    private readonly Module _model;
    private readonly TrainOptions _options;
    private readonly DataInfo _dataInfo;

    public Action<TrainProgress>? OnProgress { get; set; }
    public Action<EpochResult>? OnEpoch { get; set; }

    public Module Model => _model;

    public Trainer(ModelSpec spec, TrainOptions options, DataInfo dataInfo, Module? model = null)
    {
        options.Validate();
        spec.Validate();
        (_spec, _options, _dataInfo) = (spec, options, dataInfo);
        _model = model ?? ModelFactory.Create(spec, options.Seed);
        if (!options.WeightDecayOnBatchNorm)
            foreach (var (_, m) in _model.NamedModules())
                if (m is BatchNorm bn) { bn.Weight.WeightDecay = false; bn.Bias.WeightDecay = false; }
    }

    /// <summary>Runs the remaining epochs. With <paramref name="resume"/>, continues from outDir/last if present.</summary>
    public IReadOnlyList<EpochResult> Run(ImageDataset train, ImageDataset test, string outDir, bool resume = false,
        CancellationToken cancel = default)
    {
        EnsureWritable(outDir);
        var norm = new Normalization(_dataInfo.Mean, _dataInfo.Std);
        var trainT = new TransformSpec(_spec.InChannels, _spec.Height, _spec.Width, norm, _options.CropPadding, _options.HorizontalFlip,
            _options.AutoAugment, _options.CutoutLength);
        var testT = TransformSpec.ForEval(_spec.InChannels, _spec.Height, _spec.Width, norm);
        trainT.Validate(train);
        testT.Validate(test);

        var parameters = _model.NamedParameters().ToList();
        Optimizer opt = _options.Optimizer == "adam"
            ? new Adam(parameters, weightDecay: _options.WeightDecay)
            : new Sgd(parameters, _options.Momentum, _options.WeightDecay);
        var history = new List<EpochResult>();
        int startEpoch = 0;
        double best = -1;
        if (resume && Directory.Exists(Path.Combine(outDir, LastDir)))
            (startEpoch, best) = Restore(Path.Combine(outDir, LastDir), opt, history);

        using var trainLoader = new DataLoader(train, _options.BatchSize, trainT, shuffle: true, train: true, seed: _options.Seed, dropLast: true);
        using var testLoader = new DataLoader(test, Math.Max(_options.BatchSize, 256), testT, shuffle: false, train: false, seed: _options.Seed);
        if (trainLoader.BatchesPerEpoch == 0)
            throw new SpikeSharpException($"the training set has {train.Count} images, fewer than one batch of {_options.BatchSize}");

        // Activations and gradients are reused step to step; parameters and optimizer state live outside the arena.
        var arena = new TensorArena();
        bool quantized = _model.NamedModules().Any(m => m.Value is QcfsActivation);
        for (int epoch = startEpoch; epoch < _options.Epochs; epoch++)
        {
            cancel.ThrowIfCancellationRequested();
            float lr = _options.Schedule.At(_options.LearningRate, epoch, _options.Epochs);
            var sw = Stopwatch.StartNew();
            double lossSum = 0;
            long correct = 0, seen = 0;
            int step = 0;
            _model.Train();
            foreach (var batch in trainLoader.Epoch(epoch))
            {
                cancel.ThrowIfCancellationRequested();
                double loss;
                using (arena.Activate())
                using (var tape = Tape.Start())
                using (var spikeLoss = _options.SpikeCountBeta > 0 ? SpikeCountRegularizer.Start(_options.SpikeCountBeta) : null)
                {
                    var logits = _model.Forward(new Variable(batch.Images));
                    var lossVar = CrossEntropyOp.Forward(logits, batch.Labels, _options.LabelSmoothing);
                    // The spike-count term's gradient was recorded by the QCFS layers; its value joins the reported loss.
                    // (Counting costs a pass over every activation, so it runs only when β > 0.)
                    loss = lossVar.Value.Data[0] + (spikeLoss?.Loss ?? 0);
                    if (!double.IsFinite(loss))
                        throw new SpikeSharpException($"training diverged: loss is {loss} at epoch {epoch + 1}, step {step + 1} (lr {lr}); lower --lr");
                    correct += Evaluation.CountCorrect(logits.Value.Data, _spec.Classes, batch.Labels);
                    tape.Backward(lossVar);
                    opt.Step(lr);
                    _model.ZeroGrad();
                }
                lossSum += loss * batch.Count;
                seen += batch.Count;
                step++;
                OnProgress?.Invoke(new TrainProgress(epoch + 1, _options.Epochs, step, trainLoader.BatchesPerEpoch, lossSum / seen,
                    (double)correct / seen, seen / sw.Elapsed.TotalSeconds));
            }
            double trainSeconds = sw.Elapsed.TotalSeconds;
            CheckFinite(epoch);
            var (testAcc, testSpikes) = Evaluation.AccuracyAndSpikes(_model, testLoader);
            var result = new EpochResult(epoch + 1, lr, lossSum / seen, (double)correct / seen, testAcc, trainSeconds, seen / trainSeconds,
                quantized ? testSpikes : null);
            history.Add(result);
            bool improved = testAcc > best;
            if (improved) best = testAcc;
            SaveEpoch(outDir, opt, history, best, improved);
            OnEpoch?.Invoke(result);
        }
        return history;
    }

    private void CheckFinite(int epoch)
    {
        foreach (var (name, p) in _model.NamedParameters())
            if (!float.IsFinite(TensorPrimitives.Sum(p.Value.Data)) && p.Value.Data.Any(v => !float.IsFinite(v)))
                throw new SpikeSharpException($"training diverged: parameter '{name}' has non-finite values after epoch {epoch + 1}; lower --lr");
    }

    private JsonObject Recipe(IReadOnlyList<EpochResult> history, double best) => new()
    {
        ["recipe"] = JsonSerializer.SerializeToNode(_options, JsonOptions),
        ["epochs_done"] = history.Count == 0 ? 0 : history[^1].Epoch,
        ["test_accuracy"] = history.Count == 0 ? null : history[^1].TestAccuracy,
        ["best_test_accuracy"] = best,
        ["best_selected_on"] = "test set (as in the reference codes)",
    };

    private static readonly JsonSerializerOptions JsonOptions = new() { PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    private void SaveEpoch(string outDir, Optimizer opt, List<EpochResult> history, double best, bool improved)
    {
        var checkpoint = new Checkpoint(_spec, _dataInfo, _model, Recipe(history, best));
        ReplaceDirectory(Path.Combine(outDir, LastDir), dir =>
        {
            checkpoint.Save(dir);
            Safetensors.Write(Path.Combine(dir, StateTensors), opt.StateDict());
            var state = new JsonObject
            {
                ["epochs_done"] = history[^1].Epoch,
                ["best_test_accuracy"] = best,
                ["history"] = JsonSerializer.SerializeToNode(history, JsonOptions),
            };
            AtomicFile.WriteAllText(Path.Combine(dir, StateJson), state.ToJsonString());
        });
        if (improved) ReplaceDirectory(Path.Combine(outDir, BestDir), checkpoint.Save);
        var line = JsonSerializer.Serialize(history[^1], JsonOptions) + "\n";
        File.AppendAllText(Path.Combine(outDir, LogFile), line);
    }

    private (int epoch, double best) Restore(string lastDir, Optimizer opt, List<EpochResult> history)
    {
        var cp = Checkpoint.Load(lastDir);
        if (cp.Spec with { Activation = null } != _spec with { Activation = null } || cp.Spec.ActivationOrDefault != _spec.ActivationOrDefault)
            throw new SpikeSharpException($"cannot resume from {lastDir}: it holds {cp.Spec}, but this run asks for {_spec}");
        _model.LoadStateDict(cp.Model.StateDict().ToDictionary(kv => kv.Key, kv => kv.Value));
        opt.LoadStateDict(Safetensors.Read(Path.Combine(lastDir, StateTensors)).Tensors);
        string statePath = Path.Combine(lastDir, StateJson);
        var state = JsonNode.Parse(File.ReadAllText(statePath)) as JsonObject ?? throw new InvalidFileException(statePath, "expected a JSON object");
        var past = state["history"].Deserialize<List<EpochResult>>(JsonOptions) ?? [];
        history.AddRange(past);
        return (state["epochs_done"]!.GetValue<int>(), state["best_test_accuracy"]!.GetValue<double>());
    }

    /// <summary>Writes a directory beside the target, then swaps it in, so a crash leaves either the old or the new one
    /// (a leftover <c>.old</c> is used by <see cref="ReplaceDirectory"/>'s next call and by resume).</summary>
    private static void ReplaceDirectory(string target, Action<string> write)
    {
        string fresh = target + ".new", old = target + ".old";
        if (Directory.Exists(fresh)) Directory.Delete(fresh, true);
        write(fresh);
        if (Directory.Exists(old)) Directory.Delete(old, true);
        if (Directory.Exists(target)) Directory.Move(target, old);
        Directory.Move(fresh, target);
        if (Directory.Exists(old)) Directory.Delete(old, true);
    }

    /// <summary>Fails before any training if the output directory cannot be written.</summary>
    public static void EnsureWritable(string outDir)
    {
        try
        {
            Directory.CreateDirectory(outDir);
            string probe = Path.Combine(outDir, $".write-test-{Environment.ProcessId}");
            File.WriteAllBytes(probe, new byte[4096]);
            File.Delete(probe);
            // Recover a swap interrupted between its two moves.
            string last = Path.Combine(outDir, LastDir);
            if (!Directory.Exists(last) && Directory.Exists(last + ".old")) Directory.Move(last + ".old", last);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SpikeSharpException($"cannot write to output directory '{outDir}': {e.Message}");
        }
    }
}
