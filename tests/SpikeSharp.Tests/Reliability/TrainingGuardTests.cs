// Numerical guards and output-directory checks of training (issue 7).
using SpikeSharp.Data;
using SpikeSharp.Interop;
using SpikeSharp.Models;
using SpikeSharp.Nn;
using SpikeSharp.Tests.Cli;
using SpikeSharp.Tests.Data;
using SpikeSharp.Training;
using Xunit;

namespace SpikeSharp.Tests.Reliability;

public sealed class TrainingGuardTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("spikesharp-guards-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    private SpikeSharpException Train(TrainOptions options)
    {
        var spec = new ModelSpec("cnn-small", 1, 8, 8, 10, 0.25f, ActivationSpec.Qcfs(4));
        var data = SyntheticData.Random(64, 1, 8, 8);
        var trainer = new Trainer(spec, options with { Epochs = 1, BatchSize = 16, CropPadding = 0, HorizontalFlip = false },
            new DataInfo("synthetic", [0.5f], [0.25f]));
        return Assert.ThrowsAny<SpikeSharpException>(() => trainer.Run(data, data, Path.Combine(_dir, "out")));
    }

    [Fact]
    public void InfiniteWeightsStopTrainingNamingTheParameterLayerAndStep()
    {
        // wd·w ≈ 1e37 times lr 1e10 overflows: every decayed weight is ±Inf after the first step, the loss not yet.
        var e = Train(new TrainOptions { LearningRate = 1e10f, WeightDecay = 1e38f });
        Assert.Contains("training diverged at epoch 1, step 1: parameter 'features.0.weight' (layer 'features.0')", e.Message);
        Assert.Contains("infinite values", e.Message);
    }

    [Fact]
    public void NanLossStopsTrainingNamingTheStep()
    {
        var spec = new ModelSpec("cnn-small", 1, 8, 8, 10, 0.25f, ActivationSpec.Qcfs(4));
        var model = ModelFactory.Create(spec);
        model.NamedParameters().First().Value.Value.Data[0] = float.NaN;
        var data = SyntheticData.Random(32, 1, 8, 8);
        var trainer = new Trainer(spec, new TrainOptions { Epochs = 1, BatchSize = 16, CropPadding = 0, HorizontalFlip = false },
            new DataInfo("synthetic", [0.5f], [0.25f]), model);
        var e = Assert.ThrowsAny<SpikeSharpException>(() => trainer.Run(data, data, Path.Combine(_dir, "nan")));
        Assert.Contains("loss is NaN at epoch 1, step 1", e.Message);
    }

    [Fact]
    public void LambdaDrivenNonPositiveStopsTrainingNamingTheLayer()
    {
        // Weight decay 10 with lr 1 sends every λ from 8 to about −72 in one step (spec §7.6's failure mode), weights stay finite.
        var e = Train(new TrainOptions { LearningRate = 1f, WeightDecay = 10f });
        Assert.Contains("training stopped at epoch 1, step 1: λ of layer 'features.2' is -", e.Message);
        Assert.Contains("must stay positive (spec §1, §7.6)", e.Message);
    }

    [Fact]
    public void NoSpaceIsRecognisedAndTooLittleFreeSpaceFailsBeforeTraining()
    {
        if (File.Exists("/dev/full"))
        {
            // /dev/full answers every write with ENOSPC, what a full disk does.
            var io = Assert.ThrowsAny<IOException>(() =>
            {
                using var s = new FileStream("/dev/full", FileMode.Open, FileAccess.Write, FileShare.ReadWrite, 1);
                s.Write(new byte[4096]);
                s.Flush(flushToDisk: true);
            });
            Assert.True(Trainer.IsDiskFull(io), $"HResult 0x{io.HResult:X8}: {io.Message}");
        }
        var e = Assert.Throws<SpikeSharpException>(() => Trainer.EnsureSpace(_dir, long.MaxValue));
        Assert.Contains($"not enough free space in output directory '{_dir}'", e.Message);
        Trainer.EnsureSpace(_dir, 1); // plenty
    }
}

/// <summary>Unwritable output directories fail in a second with exit code 2, before any data is loaded.</summary>
[Collection("cli")]
public sealed class OutputDirectoryTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("spikesharp-outdir-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    private static (int Code, string Err) Train(string outDir)
    {
        var (code, _, err) = CliTests.Run("train", "--model", "cnn-small", "--dataset", "mnist", "--data", CliTests.DataDir, "--out", outDir,
            "--epochs", "1", "--limit", "64", "--width", "0.25");
        return (code, err);
    }

    [Fact]
    public void OutputUnderARegularFileIsRejectedBeforeTraining()
    {
        // Tests run as root here, and root ignores permission bits: a path below a regular file is unwritable for anyone.
        string file = Path.Combine(_dir, "not-a-dir");
        File.WriteAllText(file, "x");
        var (code, err) = Train(Path.Combine(file, "run"));
        Assert.Equal(2, code);
        Assert.Contains($"cannot write to output directory '{Path.Combine(file, "run")}'", err);
        Assert.DoesNotContain("epoch", err);
    }

    [SkippableFact]
    public void ReadOnlyOutputDirectoryIsRejectedBeforeTraining()
    {
        string ro = Path.Combine(_dir, "ro");
        Directory.CreateDirectory(ro);
        using (OutsideTool.ReadOnlyDirectory(ro))
        {
            var (code, err) = Train(ro);
            Assert.Equal(2, code);
            Assert.Contains($"cannot write to output directory '{ro}'", err);
        }
    }
}

/// <summary>The simulator reports, per layer, neurons whose membrane potential diverged.</summary>
public sealed class DivergenceTests
{
    [Fact]
    public void CountDivergentFindsNaNInfinityAndPotentialsBeyondTheLimit()
    {
        var v = new float[1000];
        Assert.Equal(0, global::SpikeSharp.Snn.IfNeuron.CountDivergent(v, 10f));
        // Only a negative one: the fast path's max must be of |v| (TensorPrimitives.MaxMagnitude returns −11, not 11).
        v[998] = -11f;
        Assert.Equal(1, global::SpikeSharp.Snn.IfNeuron.CountDivergent(v, 10f));
        v[3] = float.NaN; v[500] = float.NegativeInfinity; v[999] = 10.5f; v[997] = 10f;
        Assert.Equal(4, global::SpikeSharp.Snn.IfNeuron.CountDivergent(v, 10f));
    }

    [Fact]
    public void ANeuronFedFarAboveItsThresholdIsReportedDivergentAndANormalOneIsNot()
    {
        var neuron = new global::SpikeSharp.Snn.IfNeuron("act", threshold: 1f);
        neuron.Configure(batch: 2, steps: 4);
        // Constant input per neuron: 0.5θ (normal), −3θ (silent, fine), 40θ and NaN (diverged): limit 16·θ·4 = 64.
        var x = new global::SpikeSharp.Tensors.Tensor(new float[] { 0.5f, -3f, 40f, float.NaN, 0.2f, 0.9f, 1.5f, -0.5f }, 2, 4);
        neuron.Forward(new global::SpikeSharp.Autograd.Variable(x));
        Assert.Equal(2, neuron.DivergentNeurons);
        neuron.ResetState();
        Assert.Equal(0, neuron.DivergentNeurons);
    }

    /// <summary>Inside a convolution the neuron takes the largest |v| from its epilogue instead of a pass over v; it must
    /// count the same neurons as the layer-by-layer call: none, one far below, or one far above plus a NaN.</summary>
    [Theory]
    [InlineData(0.7f, 0.2f)]
    [InlineData(-1000f, 0.2f)]
    [InlineData(1000f, float.NaN)]
    public void AFusedNeuronCountsDivergenceAsTheLayerByLayerOneDoes(float a, float b)
    {
        // [T·B, S] = [2·2, 3] currents, rows t·B + item; the odd values go into item 1 at t = 1.
        float[] currents = [0.5f, 0.1f, 0.9f, 0.3f, 0.2f, 0.4f, 0.6f, 0.8f, 0.1f, a, b, 0.3f];
        var layer = new global::SpikeSharp.Snn.IfNeuron("act", threshold: 1f);
        layer.Configure(batch: 2, steps: 2);
        layer.Forward(new global::SpikeSharp.Autograd.Variable(new global::SpikeSharp.Tensors.Tensor((float[])currents.Clone(), 4, 3)));
        var fused = new global::SpikeSharp.Snn.IfNeuron("act", threshold: 1f);
        fused.Configure(batch: 2, steps: 2);
        var y = (float[])currents.Clone();
        var epilogue = fused.BeginFused(4, 3);
        foreach (int row in new[] { 0, 2, 1, 3 }) epilogue.Apply(y.AsSpan(row * 3, 3), row, worker: 0);
        fused.EndFused(new global::SpikeSharp.Tensors.Tensor(y, 4, 3));
        Assert.True(fused.LastCallFused);
        Assert.Equal(float.IsNaN(b) ? 2 : Math.Abs(a) > 100 ? 1 : 0, layer.DivergentNeurons);
        Assert.Equal(layer.DivergentNeurons, fused.DivergentNeurons);
    }
}

/// <summary>NoisyQC's training noise depends only on (seed, training step), so a resumed dual-phase Phase I run ends
/// where an uninterrupted one does (before, the noise came from a generator whose state was not checkpointed).</summary>
public sealed class NoisyQcResumeTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("spikesharp-noisy-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (IOException) { }
    }

    private static Trainer NewTrainer(int epochs) => new(
        new ModelSpec("cnn-small", 1, 8, 8, 10, 0.25f, new ActivationSpec("noisyqc", 4, 2f, NoiseP: 0.5f)),
        new TrainOptions { Epochs = epochs, BatchSize = 16, CropPadding = 0, HorizontalFlip = false, LearningRate = 0.05f },
        new DataInfo("synthetic", [0.5f], [0.25f]));

    [Fact]
    public void ResumedNoisyQcTrainingMatchesAnUninterruptedRun()
    {
        var data = SyntheticData.Random(64, 1, 8, 8);
        var straight = NewTrainer(2);
        straight.Run(data, data, Path.Combine(_dir, "a"));
        NewTrainer(1).Run(data, data, Path.Combine(_dir, "b"));
        var resumed = NewTrainer(2);
        resumed.Run(data, data, Path.Combine(_dir, "b"), resume: true);
        var a = straight.Model.StateDict().ToList();
        var b = resumed.Model.StateDict().ToList();
        Assert.Equal(a.Select(kv => kv.Key), b.Select(kv => kv.Key));
        for (int i = 0; i < a.Count; i++) Assert.Equal(a[i].Value.Data, b[i].Value.Data);
    }
}
