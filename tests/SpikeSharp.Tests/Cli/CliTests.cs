using System.Text.Json.Nodes;
using SpikeSharp.Interop;
using Xunit;

namespace SpikeSharp.Tests.Cli;

[CollectionDefinition("cli", DisableParallelization = true)]
public sealed class CliCollection { }

/// <summary>End-to-end runs of the <c>spikesharp</c> commands in-process on the bundled MNIST sample.</summary>
[Collection("cli")]
public sealed class CliTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "spikesharp-cli-" + Guid.NewGuid().ToString("N"));

    public static string DataDir
    {
        get
        {
            for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
                if (File.Exists(Path.Combine(d.FullName, "data", "t10k-labels-idx1-ubyte.gz"))) return Path.Combine(d.FullName, "data");
            throw new InvalidOperationException("bundled data/ not found above " + AppContext.BaseDirectory);
        }
    }

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (DirectoryNotFoundException) { }
    }

    /// <summary>Runs the CLI and returns (exit code, stdout, stderr).</summary>
    public static (int Code, string Out, string Err) Run(params string[] args)
    {
        var (oldOut, oldErr) = (Console.Out, Console.Error);
        var (o, e) = (new StringWriter(), new StringWriter());
        Console.SetOut(o);
        Console.SetError(e);
        try { return (SpikeSharp.Cli.Program.Main(args), o.ToString(), e.ToString()); }
        finally { Console.SetOut(oldOut); Console.SetError(oldErr); }
    }

    private string Train(string name, int epochs, bool resume = false, string limit = "512") =>
        Run(["train", "--model", "cnn-small", "--dataset", "mnist", "--data", DataDir, "--out", Path.Combine(_dir, name),
            "--preset", "qcfs", "--augment", "none", "--epochs", epochs.ToString(), "--batch", "64", "--limit", limit, "--width", "0.5",
            .. (resume ? new[] { "--resume" } : []), "--json", Path.Combine(_dir, name + ".json")]) is var (code, _, err) && code == 0
            ? Path.Combine(_dir, name) : throw new Xunit.Sdk.XunitException($"train failed ({code}): {err}");

    [Fact]
    public void TrainThenEvaluateWritesTheDocumentedJson()
    {
        string run = Train("t", 1);
        Assert.True(File.Exists(Path.Combine(run, "last", "model.safetensors")));
        Assert.True(File.Exists(Path.Combine(run, "best", "model.json")));
        Assert.Single(File.ReadAllLines(Path.Combine(run, "train_log.jsonl")));
        string json = Path.Combine(_dir, "eval.json");
        var (code, stdout, err) = Run("evaluate", "--checkpoint", Path.Combine(run, "last"), "--data", DataDir, "--method", "qcfs",
            "--timesteps", "1,2,4", "--limit", "96", "--batch", "32", "--json", json);
        Assert.True(code == 0, err);
        Assert.Contains("ANN accuracy", stdout);
        var doc = JsonNode.Parse(File.ReadAllText(json))!;
        Assert.Equal("cnn-small", doc["model"]!.GetValue<string>());
        Assert.Equal("mnist", doc["dataset"]!.GetValue<string>());
        Assert.Equal(96, doc["test_images"]!.GetValue<int>());
        // The reported ANN accuracy is the checkpoint's accuracy on exactly those 96 images, recomputed here in-process.
        var cp = Checkpoint.Load(Path.Combine(run, "last"));
        var test = SpikeSharp.Data.Datasets.Load("mnist", DataDir, train: false).Take(96);
        using (var loader = new SpikeSharp.Data.DataLoader(test, 32, SpikeSharp.Data.TransformSpec.ForEval(1, 28, 28, new SpikeSharp.Data.Normalization(cp.Data.Mean, cp.Data.Std)),
            shuffle: false, train: false, seed: 0))
        {
            double expected = SpikeSharp.Training.Evaluation.Accuracy(cp.Model, loader);
            Assert.Equal(expected, doc["ann_accuracy"]!.GetValue<double>(), 12);
            Assert.True(expected > 0.3, $"ANN accuracy {expected} after one epoch on 512 images: no better than chance");
        }
        Assert.True(doc["macs_per_image"]!.GetValue<long>() > 0);
        var snn = doc["snn"]![0]!;
        Assert.Equal("qcfs", snn["method"]!.GetValue<string>());
        Assert.Equal(0, snn["extra_steps"]!.GetValue<int>());
        Assert.Equal(new[] { "1", "2", "4" }, snn["accuracy_by_t"]!.AsObject().Select(kv => kv.Key));
        Assert.Equal(3, snn["firing_rate_by_layer"]!.AsArray().Count);
        Assert.True(snn["energy_pj_per_image"]!["4"]!.GetValue<double>() > snn["energy_pj_per_image"]!["1"]!.GetValue<double>());
    }

    [Fact]
    public void ResumingGivesTheSameResultAsAnUninterruptedRun()
    {
        string straight = Train("straight", 2);
        string resumed = Train("resumed", 1);
        Train("resumed", 2, resume: true);
        var a = Safetensors.Read(Path.Combine(straight, "last", "model.safetensors")).Tensors;
        var b = Safetensors.Read(Path.Combine(resumed, "last", "model.safetensors")).Tensors;
        Assert.Equal(a.Keys, b.Keys);
        foreach (var k in a.Keys) Assert.Equal(a[k].Data, b[k].Data);
        Assert.Equal(2, File.ReadAllLines(Path.Combine(resumed, "train_log.jsonl")).Length);
    }

    [Fact]
    public void TrainsEvaluatesAndExportsAUserGraph()
    {
        var g = new SpikeSharp.Graphs.GraphBuilder(1, 28, 28);
        var x = g.MaxPool("pool", g.Activation("act1", g.BatchNorm("bn1", g.Conv("conv1", g.Input, 8, 3, padding: 1, bias: false))), 2);
        var branch = g.Activation("act2", g.BatchNorm("bn2", g.Conv("dw", x, 8, 3, padding: 1, bias: false, groups: 8)));
        x = g.AvgPool("avg", g.Concat("cat", x, branch), 2);
        var graph = g.Build(g.Linear("fc", g.Flatten("flat", x), 10));
        string file = Path.Combine(_dir, "net.json");
        Directory.CreateDirectory(_dir);
        File.WriteAllText(file, graph.ToJson().ToJsonString());
        string run = Path.Combine(_dir, "g");
        string[] Train(int epochs, params string[] extra) => ["train", "--graph", file, "--dataset", "mnist", "--data", DataDir, "--out", run,
            "--preset", "qcfs", "--augment", "none", "--epochs", epochs.ToString(), "--batch", "64", "--limit", "384", "--quiet", .. extra];
        var (code, stdout, err) = Run(Train(1));
        Assert.True(code == 0, err);
        var cp = Checkpoint.Load(Path.Combine(run, "last"));
        Assert.IsType<SpikeSharp.Graphs.GraphModel>(cp.Model);
        Assert.Equal("qcfs", cp.Spec.Activation!.Kind); // the preset's activation replaced the graph's ReLUs
        (code, _, err) = Run(Train(2, "--resume"));
        Assert.True(code == 0, err);
        Assert.Equal(2, File.ReadAllLines(Path.Combine(run, "train_log.jsonl")).Length);
        (code, stdout, err) = Run("evaluate", "--checkpoint", Path.Combine(run, "last"), "--data", DataDir, "--method", "qcfs", "srp",
            "--timesteps", "1,4", "--limit", "64", "--quiet");
        Assert.True(code == 0, err);
        Assert.Contains("srp", stdout);
        (code, _, err) = Run("export", "--checkpoint", Path.Combine(run, "last"), "--format", "onnx", "--out", Path.Combine(_dir, "g.onnx"));
        Assert.True(code == 0, err);
        (code, _, err) = Run("export", "--checkpoint", Path.Combine(run, "last"), "--format", "nir", "--out", Path.Combine(_dir, "g.nir"));
        Assert.Equal(2, code);
        Assert.Contains("graph node 'pool' (maxpool2d) has no NIR equivalent", err);
        Assert.False(File.Exists(Path.Combine(_dir, "g.nir")));
        (code, _, err) = Run("train", "--graph", file, "--model", "resnet20", "--dataset", "mnist", "--data", DataDir, "--out", run);
        Assert.Equal(2, code);
        Assert.Contains("one of them", err);
    }

    [Fact]
    public void ShardsEvaluatedApartAndMergedGiveTheWholeRunsAccuracies()
    {
        string run = Train("t", 1);
        string[] Eval(string json, params string[] extra) => ["evaluate", "--checkpoint", Path.Combine(run, "last"), "--data", DataDir, "--method", "qcfs", "cos",
            "--timesteps", "1,2,4", "--limit", "90", "--batch", "32", "--quiet", "--json", Path.Combine(_dir, json), .. extra];
        Assert.Equal(0, Run(Eval("whole.json")).Code);
        Assert.Equal(0, Run(Eval("part2.json", "--shard", "2/2")).Code);
        var (code, stdout, err) = Run(Eval("part1.json", "--shard", "1/2"));
        Assert.True(code == 0, err);
        Assert.Contains("shard 1/2: test images 0..44 of 90", stdout);
        (code, stdout, err) = Run("merge", Path.Combine(_dir, "part2.json"), Path.Combine(_dir, "part1.json"), "--json", Path.Combine(_dir, "merged.json"));
        Assert.True(code == 0, err);
        Assert.Contains("merged from 2 shards", stdout);
        var whole = JsonNode.Parse(File.ReadAllText(Path.Combine(_dir, "whole.json")))!;
        var merged = JsonNode.Parse(File.ReadAllText(Path.Combine(_dir, "merged.json")))!;
        Assert.Equal(90, merged["test_images"]!.GetValue<int>());
        Assert.Equal(whole["ann_accuracy"]!.GetValue<double>(), merged["ann_accuracy"]!.GetValue<double>());
        foreach (int m in new[] { 0, 1 })
            foreach (var key in new[] { "accuracy_by_t", "sops_per_image", "energy_pj_per_image", "spikes_by_layer_and_t" })
                Assert.Equal(whole["snn"]![m]![key]!.ToJsonString(), merged["snn"]![m]![key]!.ToJsonString());
    }

    [Theory]
    [InlineData("unknown model 'lenet'", "train", "--model", "lenet", "--dataset", "mnist", "--data", "DATA", "--out", "OUT")]
    [InlineData("unknown dataset 'svhn'", "train", "--model", "cnn-small", "--dataset", "svhn", "--data", "DATA", "--out", "OUT")]
    [InlineData("no-such-dir", "train", "--model", "cnn-small", "--dataset", "mnist", "--data", "no-such-dir", "--out", "OUT")]
    [InlineData("--epochs must be > 0", "train", "--model", "cnn-small", "--dataset", "mnist", "--data", "DATA", "--out", "OUT", "--epochs", "0")]
    [InlineData("model.safetensors and model.json", "evaluate", "--checkpoint", "no-such-checkpoint", "--data", "DATA")]
    [InlineData("--frobnicate", "train", "--frobnicate")]
    [InlineData("unknown benchmark", "bench", "--only", "nope")]
    [InlineData("--wd-exempt: unknown group 'gamma'", "train", "--model", "cnn-small", "--dataset", "mnist", "--data", "DATA", "--out", "OUT", "--wd-exempt", "gamma")]
    [InlineData("--shard needs --json", "evaluate", "--checkpoint", "no-such-checkpoint", "--data", "DATA", "--shard", "1/2")]
    [InlineData("--shard '0/2': expected 1 ≤ K ≤ N", "evaluate", "--checkpoint", "no-such-checkpoint", "--data", "DATA", "--shard", "0/2", "--json", "OUT")]
    [InlineData("no-such-part.json not found", "merge", "no-such-part.json")]
    [InlineData("unknown LR schedule 'linear'", "train", "--model", "cnn-small", "--dataset", "mnist", "--data", "DATA", "--out", "OUT", "--schedule", "linear")]
    public void BadInputExitsWithCode2AndAOneLineMessage(string expected, params string[] args)
    {
        args = args.Select(a => a == "DATA" ? DataDir : a == "OUT" ? Path.Combine(_dir, "out") : a).ToArray();
        var (code, _, err) = Run(args);
        Assert.Equal(2, code);
        Assert.Contains(expected, err);
        Assert.DoesNotContain("   at ", err);
    }

    [Fact]
    public void DualPhasePipelineClipThenNoisyQcThenCalibratedEvaluation()
    {
        string clip = Path.Combine(_dir, "clip"), noisy = Path.Combine(_dir, "noisy");
        string[] common = ["--model", "cnn-small", "--dataset", "mnist", "--data", DataDir, "--augment", "none", "--batch", "64", "--limit", "256", "--width", "0.5"];
        var (code, _, err) = Run(["train", .. common, "--out", clip, "--preset", "dual-phase", "--epochs", "1"]);
        Assert.True(code == 0, err);
        (code, var stdout, err) = Run(["train", .. common, "--out", noisy, "--activation", "noisyqc", "--levels", "4", "--lr", "0.001", "--wd", "0",
            "--epochs", "1", "--init-from", Path.Combine(clip, "last")]);
        Assert.True(code == 0, err);
        Assert.Contains("activation clip", stdout);
        string json = Path.Combine(_dir, "dp.json");
        (code, _, err) = Run("evaluate", "--checkpoint", Path.Combine(noisy, "last"), "--data", DataDir, "--method", "dual-phase", "--timesteps", "2,4",
            "--limit", "64", "--calibration-images", "64", "--calibration-steps", "4", "--json", json);
        Assert.True(code == 0, err);
        var snn = JsonNode.Parse(File.ReadAllText(json))!["snn"]![0]!;
        Assert.Equal(80, snn["calibration_images"]!.GetValue<int>());
        Assert.Equal("training split", snn["calibration_data"]!.GetValue<string>());
    }

    [Fact]
    public void BitSerialEvaluationReproducesTheQuantizedAnnAndChecksTheHorizon()
    {
        string run = Path.Combine(_dir, "bits");
        var (code, _, err) = Run("train", "--model", "cnn-small", "--dataset", "mnist", "--data", DataDir, "--out", run, "--preset", "bit-serial",
            "--augment", "none", "--epochs", "1", "--batch", "64", "--limit", "256", "--width", "0.5", "--spike-beta", "1e-7");
        Assert.True(code == 0, err);
        string json = Path.Combine(_dir, "bits.json");
        (code, _, err) = Run("evaluate", "--checkpoint", Path.Combine(run, "last"), "--data", DataDir, "--method", "bit-serial", "--timesteps", "2,4",
            "--limit", "96", "--ann-agreement", "--json", json);
        Assert.True(code == 0, err);
        var snn = JsonNode.Parse(File.ReadAllText(json))!["snn"]![0]!;
        Assert.Equal(1.0, snn["ann_prediction_agreement"]!.GetValue<double>());
        // Every layer was compared (a length mismatch is now an error, not a silent zero) and none differs.
        Assert.Equal(3, snn["ann_error_by_layer"]!.AsArray().Count);
        Assert.All(snn["ann_error_by_layer"]!.AsArray(), l => Assert.Equal(0, l!["mismatched_values"]!.GetValue<long>()));
        (code, _, err) = Run("evaluate", "--checkpoint", Path.Combine(run, "last"), "--data", DataDir, "--method", "bit-serial", "--timesteps", "8");
        Assert.Equal(2, code);
        Assert.Contains("L = 15", err);
    }

    [Fact]
    public void EvaluateRejectsBadTimestepsAndMethods()
    {
        string run = Train("m", 1, limit: "128");
        var (code, _, err) = Run("evaluate", "--checkpoint", Path.Combine(run, "last"), "--data", DataDir, "--method", "qcfs", "--timesteps", "0,4");
        Assert.Equal(2, code);
        Assert.Contains("--timesteps", err);
        (code, _, err) = Run("evaluate", "--checkpoint", Path.Combine(run, "last"), "--data", DataDir, "--method", "coss");
        Assert.Equal(2, code);
        Assert.Contains("unknown method 'coss'; expected one of qcfs, srp, cos, dual-phase, bit-serial", err);
    }
}

/// <summary>The demo pipeline end to end on a slice of the bundled sample, and report rebuilding.</summary>
[Collection("cli")]
public sealed class DemoTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "spikesharp-demo-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (DirectoryNotFoundException) { }
    }

    [Fact]
    public void DemoWritesReportsWithAllChartsAndReportRebuildsThem()
    {
        var (code, stdout, err) = CliTests.Run("demo", "--out", _dir, "--data", CliTests.DataDir, "--epochs", "1", "--limit", "256",
            "--timesteps", "1,2,4,8");
        Assert.True(code == 0, err);
        Assert.Contains("[3/3] report", stdout);
        string report = Path.Combine(_dir, "report");
        var doc = JsonNode.Parse(File.ReadAllText(Path.Combine(report, "report.json")))!;
        Assert.Equal(new[] { "qcfs", "srp", "cos", "dual-phase" }, doc["snn"]!.AsArray().Select(m => m!["method"]!.GetValue<string>()));
        Assert.Equal(4, doc["snn"]![1]!["extra_steps"]!.GetValue<int>());
        Assert.True(doc["raster"]!["neurons"]!.AsArray().Count > 0);
        string html = File.ReadAllText(Path.Combine(report, "report.html"));
        Assert.Equal(4, html.Split("<svg").Length - 1);
        Assert.Contains("Accuracy vs time steps", html);
        File.Delete(Path.Combine(report, "report.html"));
        File.Delete(Path.Combine(report, "report.md"));
        (code, _, err) = CliTests.Run("report", "--run", _dir);
        Assert.True(code == 0, err);
        Assert.Equal(html, File.ReadAllText(Path.Combine(report, "report.html")));
        Assert.Contains("| qcfs | 0 |", File.ReadAllText(Path.Combine(report, "report.md")));
    }

    [Fact]
    public void ReportOnAFolderWithoutResultsIsABadInputError()
    {
        Directory.CreateDirectory(_dir);
        var (code, _, err) = CliTests.Run("report", "--run", _dir);
        Assert.Equal(2, code);
        Assert.Contains("report.json", err);
    }
}
