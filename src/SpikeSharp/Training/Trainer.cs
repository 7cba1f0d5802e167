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
/// (seed, epoch), so a run resumed from <c>last/</c> ends where an uninterrupted one would (for the same thread count),
/// even after a kill -9 at any point: <c>best/</c> is replaced before <c>last/</c>, each by a directory swap, and the log
/// is rewritten atomically from the history stored in <c>last/</c>. After every step the parameters are checked for
/// NaN/Inf and every λ for positivity (spec §1, §7.6); training stops with the parameter, layer and step named.
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
    public IReadOnlyList<EpochResult> Run(ImageSet train, ImageSet test, string outDir, bool resume = false,
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
        EnsureSpace(outDir, RequiredCheckpointBytes(parameters.Sum(p => (long)p.Value.Value.Length), _options.Optimizer));
        var history = new List<EpochResult>();
        int startEpoch = 0;
        double best = -1;
        if (resume && Directory.Exists(Path.Combine(outDir, LastDir)))
        {
            (startEpoch, best) = Restore(Path.Combine(outDir, LastDir), opt, history);
            // A kill between the swap of last/ and the log rewrite leaves the log one epoch short: heal it now.
            AtomicFile.WriteAllText(Path.Combine(outDir, LogFile), string.Concat(history.Select(h => JsonSerializer.Serialize(h, JsonOptions) + "\n")));
        }

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
            foreach (var (_, m) in _model.NamedModules())
                if (m is NoisyQcActivation noisy) noisy.TrainingCalls = (long)epoch * trainLoader.BatchesPerEpoch;
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
                    CheckStep(epoch, step + 1, lr);
                }
                lossSum += loss * batch.Count;
                seen += batch.Count;
                step++;
                FaultInjection.AfterStep(epoch + 1, step);
                OnProgress?.Invoke(new TrainProgress(epoch + 1, _options.Epochs, step, trainLoader.BatchesPerEpoch, lossSum / seen,
                    (double)correct / seen, seen / sw.Elapsed.TotalSeconds));
            }
            double trainSeconds = sw.Elapsed.TotalSeconds;
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

    /// <summary>After an update: every parameter finite (one vectorized sum each; the exact scan runs only when the sum
    /// is not finite), every λ positive (|λ| non-zero for NoisyQC, which uses |λ|). Cheap next to a training step.</summary>
    private void CheckStep(int epoch, int step, float lr)
    {
        foreach (var (name, p) in _model.NamedParameters())
        {
            var data = p.Value.Data;
            if (float.IsFinite(TensorPrimitives.Sum(data))) continue;
            int nan = 0, inf = 0;
            foreach (float v in data) { if (float.IsNaN(v)) nan++; else if (float.IsInfinity(v)) inf++; }
            if (nan + inf > 0)
                throw new SpikeSharpException($"training diverged at epoch {epoch + 1}, step {step}: parameter '{name}' (layer '{LayerOf(name)}') " +
                    $"has {nan} NaN and {inf} infinite values of {data.Length} after the update (lr {lr}); lower --lr");
        }
        foreach (var (layer, m) in _model.NamedModules())
        {
            if (m is not Activation { Lambda: { } lambda }) continue;
            float l = lambda.Value.Data[0];
            if (m is NoisyQcActivation ? l != 0 : l > 0) continue;
            throw new SpikeSharpException($"training stopped at epoch {epoch + 1}, step {step}: λ of layer '{layer}' is {l}; the {m.GetType().Name} " +
                "threshold must stay positive (spec §1, §7.6): lower --lr, exempt λ from weight decay (--wd-exempt lambda) or raise --lambda-init");
        }
    }

    private static string LayerOf(string parameter) => parameter.LastIndexOf('.') is > 0 and var dot ? parameter[..dot] : parameter;

    /// <summary>Bytes the checkpoints need at their peak: last/ (weights + optimizer state) and best/ (weights), each
    /// briefly twice during its swap, plus 1 MiB for the JSON files and log.</summary>
    public static long RequiredCheckpointBytes(long parameterCount, string optimizer)
    {
        long weights = 4 * parameterCount, state = weights * (optimizer == "adam" ? 2 : 1);
        return 2 * (weights + state) + 2 * weights + (1 << 20);
    }

    /// <summary>Fails before training when the output volume has less free space than the checkpoints need.</summary>
    public static void EnsureSpace(string outDir, long required)
    {
        long free;
        try { free = new DriveInfo(Path.GetFullPath(outDir)).AvailableFreeSpace; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ArgumentException) { return; } // unknown: the write errors will tell
        if (free < required)
            throw new SpikeSharpException($"not enough free space in output directory '{outDir}': the checkpoints need about " +
                $"{required / 1048576.0:0.0} MiB, {free / 1048576.0:0.0} MiB are free; free space or choose another --out");
    }

    /// <summary>True for "no space left on device" and "disk quota exceeded" (ENOSPC 28, EDQUOT 122 on Linux;
    /// ERROR_DISK_FULL 112, ERROR_HANDLE_DISK_FULL 39 on Windows).</summary>
    public static bool IsDiskFull(IOException e) => (e.HResult & 0xFFFF) is 28 or 122 or 112 or 39;

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
        try
        {
            WriteEpoch(outDir, opt, history, best, improved);
        }
        catch (IOException e) when (IsDiskFull(e))
        {
            throw new SpikeSharpException($"disk full while writing the checkpoint of epoch {history[^1].Epoch} to '{outDir}': {e.Message}. " +
                $"The previous checkpoint in {Path.Combine(outDir, LastDir)} is intact; free space and rerun with --resume", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SpikeSharpException($"cannot write the checkpoint of epoch {history[^1].Epoch} to '{outDir}': {e.Message}. " +
                $"The previous checkpoint in {Path.Combine(outDir, LastDir)} is intact; rerun with --resume once the directory is writable", e);
        }
    }

    // Order matters for kill -9 at any point: best/ first (a resume that redoes this epoch rewrites it identically),
    // then last/ (the resume point), then the log, rewritten whole from the history saved in last/.
    private void WriteEpoch(string outDir, Optimizer opt, List<EpochResult> history, double best, bool improved)
    {
        var checkpoint = new Checkpoint(_spec, _dataInfo, _model, Recipe(history, best));
        int epoch = history[^1].Epoch;
        if (improved) ReplaceDirectory(Path.Combine(outDir, BestDir), checkpoint.Save);
        ReplaceDirectory(Path.Combine(outDir, LastDir), dir =>
        {
            checkpoint.Save(dir);
            FaultInjection.KillIf("checkpoint-write", epoch);
            Safetensors.Write(Path.Combine(dir, StateTensors), opt.StateDict());
            var state = new JsonObject
            {
                ["epochs_done"] = history[^1].Epoch,
                ["best_test_accuracy"] = best,
                ["history"] = JsonSerializer.SerializeToNode(history, JsonOptions),
            };
            AtomicFile.WriteAllText(Path.Combine(dir, StateJson), state.ToJsonString());
        }, epoch);
        AtomicFile.WriteAllText(Path.Combine(outDir, LogFile), string.Concat(history.Select(h => JsonSerializer.Serialize(h, JsonOptions) + "\n")));
    }

    private (int epoch, double best) Restore(string lastDir, Optimizer opt, List<EpochResult> history)
    {
        var cp = Checkpoint.Load(lastDir);
        if (cp.Spec with { Activation = null } != _spec with { Activation = null } || cp.Spec.ActivationOrDefault != _spec.ActivationOrDefault)
            throw new SpikeSharpException($"cannot resume from {lastDir}: it holds {cp.Spec}, but this run asks for {_spec}");
        _model.LoadStateDict(cp.Model.StateDict().ToDictionary(kv => kv.Key, kv => kv.Value));
        opt.LoadStateDict(Safetensors.Read(Path.Combine(lastDir, StateTensors)).Tensors);
        string statePath = Path.Combine(lastDir, StateJson);
        try
        {
            var state = JsonNode.Parse(File.ReadAllText(statePath)) as JsonObject ?? throw new InvalidFileException(statePath, "expected a JSON object");
            var past = state["history"].Deserialize<List<EpochResult>>(JsonOptions) ?? [];
            int done = state["epochs_done"]?.GetValue<int>() ?? throw new InvalidFileException(statePath, "missing field 'epochs_done'");
            double best = state["best_test_accuracy"]?.GetValue<double>() ?? throw new InvalidFileException(statePath, "missing field 'best_test_accuracy'");
            if (done != past.Count) throw new InvalidFileException(statePath, $"epochs_done is {done} but the history has {past.Count} epochs");
            history.AddRange(past);
            return (done, best);
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or FormatException or ArgumentException)
        {
            throw new InvalidFileException(statePath, $"cannot resume from this training state: {e.Message}", e);
        }
    }

    /// <summary>Writes a directory beside the target, then swaps it in, so a crash leaves either the old or the new one
    /// (a leftover <c>.old</c> is used by <see cref="ReplaceDirectory"/>'s next call and by resume).</summary>
    private static void ReplaceDirectory(string target, Action<string> write, int epoch = 0)
    {
        string fresh = target + ".new", old = target + ".old";
        if (Directory.Exists(fresh)) Directory.Delete(fresh, true);
        write(fresh);
        if (Directory.Exists(old)) Directory.Delete(old, true);
        if (Directory.Exists(target)) Directory.Move(target, old);
        FaultInjection.KillIf("checkpoint-swap", epoch);
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
            foreach (string dir in new[] { LastDir, BestDir }.Select(d => Path.Combine(outDir, d)))
                if (!Directory.Exists(dir) && Directory.Exists(dir + ".old")) Directory.Move(dir + ".old", dir);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SpikeSharpException($"cannot write to output directory '{outDir}': {e.Message}");
        }
    }
}
