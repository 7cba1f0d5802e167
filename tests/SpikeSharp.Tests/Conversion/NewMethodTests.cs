// The methods beyond the seed papers (docs/conversion-methods.md "parallel", "signed", "burst", "ftbc"): the toy cases
// worked by hand there, their accounting (unit spikes, SOPs of bursts, latency), and the PyTorch golden of
// tools/make_neuron_fixtures.py on a small random ResNet-20 (per-neuron spike counts must be equal).
using SpikeSharp.Autograd;
using SpikeSharp.Conversion;
using SpikeSharp.Conversion.Methods;
using SpikeSharp.Interop;
using SpikeSharp.Models;
using SpikeSharp.Nn;
using SpikeSharp.Snn;
using SpikeSharp.Tensors;
using Xunit;

namespace SpikeSharp.Tests.Conversion;

public class NewMethodTests
{
    /// <summary>Runs one neuron on a single element's input sequence; returns the outputs per step and the spike counts.</summary>
    private static (float[] Out, long[] Counts) Run(SpikingNeuron neuron, params float[] inputs)
    {
        int steps = inputs.Length;
        neuron.Configure(1, steps);
        long[]? counts = null;
        neuron.Attach((_, c, _) => counts = c);
        var y = neuron.Forward(new Variable(new Tensor(inputs, steps, 1))).Value;
        return (y.Data, counts!);
    }

    // ---- parallel: θ = 1, T = 4 ----

    [Fact]
    public void Parallel_FiresTheFirstKStepsOfTheWindow()
    {
        // x̄ = 0.5: T·x̄/θ + ½ = 2.5 → k = 2; the mean output 0.5 is QCFS_4(0.5).
        var (y, counts) = Run(new ParallelNeuron("p", 1f), 0.6f, 0.2f, 0.9f, 0.3f);
        Assert.Equal([1f, 1f, 0f, 0f], y);
        Assert.Equal([1L, 1, 0, 0], counts);
        Assert.Equal([0f, 0f, 0f, 0f], Run(new ParallelNeuron("p", 1f), -0.3f, -0.3f, -0.3f, -0.3f).Out); // k = clip(−0.7) = 0
        Assert.Equal([1f, 1f, 1f, 1f], Run(new ParallelNeuron("p", 1f), 1.7f, 1.7f, 1.7f, 1.7f).Out);     // k = clip(7) = 4
        // Calibrated: δ_in = 0.1, δ_th = 0.2, x̄ = 0.3: 4·0.4 + ½ = 2.1 → k = 2 spikes of 1.2.
        var shifted = new ParallelNeuron("p", 1f) { InputShift = [0.1f], SpikeShift = [0.2f] };
        Assert.Equal([1.2f, 1.2f, 0f, 0f], Run(shifted, 0.3f, 0.3f, 0.3f, 0.3f).Out);
    }

    [Fact]
    public void ParallelCalibration_OneUpdateByHand()
    {
        // λ = 1, L = 4, T = 2, one channel, two positions; both paths see z = [0.30, 0.40], so δ_in stays 0.
        // y_s (2 levels) = [0.5, 0.5], y_a (4 levels) = [0.25, 0.5]: δ_th = 0.01 · mean(−0.25, 0) = −0.00125.
        var layer = new ParallelConversion.ShiftCalibration(new QcfsActivation(4, 1f), steps: 2);
        var y = layer.Forward(new Variable(new Tensor([0.30f, 0.40f, 0.30f, 0.40f], 2, 1, 1, 2))).Value;
        Assert.Equal([0.5f, 0.5f, 0.25f, 0.5f], y.Data);
        Assert.Equal(0f, layer.InputShift![0]);
        Assert.Equal(-0.00125f, layer.SpikeShift![0], 7);
        // The ANN path 0.1 higher everywhere: δ_in = 0.99·0 + 0.01·0.1 = 0.001, used at once for y_s.
        layer.Forward(new Variable(new Tensor([0.30f, 0.40f, 0.40f, 0.50f], 2, 1, 1, 2)));
        Assert.Equal(0.001f, layer.InputShift[0], 6);
    }

    [Fact]
    public void Parallel_EqualsTheQcfsAnn_WhenTEqualsL()
    {
        var rng = new Random(3);
        var act = new QcfsActivation(4, 1.5f);
        var neuron = new ParallelNeuron("p", 1.5f);
        var x = new Tensor(Enumerable.Range(0, 4000).Select(_ => (float)(rng.NextDouble() * 2.4 - 0.4)).ToArray(), 4000, 1);
        neuron.Configure(4000, 4);
        var y = neuron.Forward(new Variable(x)).Value; // constant input over the window
        var ann = new float[4000];
        act.Forward(x.Data, ann);
        for (int i = 0; i < 4000; i++)
        {
            float rate = (y.Data[i] + y.Data[4000 + i] + y.Data[8000 + i] + y.Data[12000 + i]) / 4;
            Assert.True(Math.Abs(rate - ann[i]) < 1e-6f, $"x = {x.Data[i]}: parallel rate {rate}, QCFS {ann[i]}");
        }
    }

    // ---- signed: θ = 1, ε = 10⁻³ ----

    [Fact]
    public void Signed_TakesBackASpikeFiredTooEarly()
    {
        // v: 0.5 → 1.3 (+1, 0.3, n 1) → 1.1 (+1, 0.1, n 2) → −0.8 (−1, 0.2, n 1) → 0.3. IF would keep both early spikes.
        var (y, counts) = Run(new SignedNeuron("s", 1f), 0.8f, 0.8f, -0.9f, 0.1f);
        Assert.Equal([1f, 1f, -1f, 0f], y);
        Assert.Equal([1L, 1, 1, 0], counts); // a negative spike is a spike too
        // Never below a zero net count: v = −0.4 after the first step but nothing was fired yet.
        Assert.Equal([0f, 0f], Run(new SignedNeuron("s", 1f), -0.9f, 0.2f).Out);
        // After a spike, v = −0.0005 is within ε of zero (no spike); −0.0015 is past it (a negative spike).
        Assert.Equal([1f, 0f, -1f], Run(new SignedNeuron("s", 1f), 0.5f, -0.0005f, -0.001f).Out);
    }

    // ---- burst: θ = 1, m = 4 (unit 0.25, v0 = 0.125) ----

    [Fact]
    public void Burst_EmitsUpToMUnitSpikesPerStep_AndCountsEachOne()
    {
        // v: 1.025 → 4 spikes (1.0), v 0.025; 0.075 → 0; 0.375 → 1 spike (0.25), v 0.125.
        var (y, counts) = Run(new BurstNeuron("b", 1f, 4), 0.9f, 0.05f, 0.3f);
        Assert.Equal([1f, 0f, 0.25f], y);
        Assert.Equal([4L, 0, 1], counts);
        // Capped at m: v = 2.125 → 8 units wanted, 4 sent, the rest stays in v for the next step.
        var (capped, _) = Run(new BurstNeuron("b", 1f, 4), 2f, 0f);
        Assert.Equal([1f, 1f], capped);
    }

    [Fact]
    public void Burst_SynapticOpsCountEveryUnitSpike()
    {
        // Linear(2 → 3) after a burst layer: 4 + 1 unit spikes at step 1 are 5 × 3 SOPs, not 2 × 3.
        var neuron = new BurstNeuron("b", 1f, 4);
        var model = new Sequential(neuron, new Linear(2, 3));
        var snn = new SpikingNetwork(model, [neuron], []);
        snn.Configure(1, 1);
        using var counter = OpCounter.StartSpiking(1, 1);
        OpCounter.BeginRun(extra: false);
        model.Forward(new Variable(new Tensor([0.9f, 0.2f], 1, 2)));
        Assert.Equal(15, counter.SynapticOpsByStep[0]);
    }

    // ---- ftbc: θ = 1, T = 2, one channel of two positions: A (input 1.0 at both steps, a = 0.5), B (0.6, a = 0.25) ----

    [Fact]
    public void Ftbc_ReplayGivesTheHandWorkedBiases_AndTheNeuronSubtractsThemBeforeCharging()
    {
        // A: m 1.5 → s 1, e 0.5, u 1.0 fires again → v 0; m 1.0 → s 1, e 0.5.
        // B: m 1.1 → s 1, e 0.75, u 0.35 → v 0.35; m 0.95 → s 0, e −0.25.
        // b = 0.4 · mean e = (0.4 · 1.25/2, 0.4 · 0.25/2) = (0.25, 0.05), whether one batch or three.
        var errors = new FtbcCalibration.ErrorSums(2, 1);
        for (int batch = 0; batch < 3; batch++)
            errors.Replay(new Tensor([1f, 0.6f, 1f, 0.6f], 2, 1, 2), new Tensor([0.5f, 0.25f], 1, 1, 2), 1f, 1);
        var bias = errors.Biases(0.4f);
        Assert.Equal(0.25f, bias[0], 5);
        Assert.Equal(0.05f, bias[1], 5);
        // B corrected: 0.5 − 0.25 + 0.6 = 0.85 (silent), 0.85 − 0.05 + 0.6 = 1.4 (fires); plain IF fires at step 1.
        Assert.Equal([0f, 1f], Run(new StepBiasNeuron("f", 1f) { Bias = bias, BiasChannels = 1 }, 0.6f, 0.6f).Out);
        Assert.Equal([1f, 0f], Run(new StepBiasNeuron("f", 1f), 0.6f, 0.6f).Out);
    }

    [Fact]
    public void Latency_IsExtraPlusTForCausalMethods_AndDepthTimesTForParallel()
    {
        Assert.Equal(8, new SignedConversion().Latency(8, 19));
        Assert.Equal(4 + 8, new SrpCalibration(4).Latency(8, 19));
        Assert.Equal(19 * 8, new ParallelConversion().Latency(8, 19));
        Assert.True(new ParallelConversion().WindowPerT);
        Assert.Equal("signed", new SignedConversion().SpikeKind);
        Assert.StartsWith("graded", new BurstConversion(3).SpikeKind);
        Assert.Equal(["qcfs", "srp", "cos", "dual-phase", "bit-serial", "parallel", "signed", "burst", "ftbc"], ConversionMethods.Names);
    }

    [Fact]
    public void Evaluator_RunsEachParallelWindowApart_CalibratesOnTraining_AndReportsKindAndLatency()
    {
        using var tmp = new SpikeSharp.Tests.Interop.TempDirectory();
        SpikeSharp.Tests.Interop.NirExportTests.SaveCheckpoint(tmp.Combine("ckpt"), "cnn-small");
        var rng = new Random(4);
        SpikeSharp.Data.ImageDataset Images(int n) => new("mnist", Enumerable.Range(0, n * 64).Select(_ => (byte)rng.Next(256)).ToArray(),
            Enumerable.Range(0, n).Select(i => i % 3).ToArray(), 1, 8, 8, 3);
        var evaluator = new ConversionEvaluator { CheckpointDir = tmp.Combine("ckpt"), Test = Images(40), Train = Images(70), BatchSize = 16 };
        var alone = evaluator.Run([new QcfsConversion()], [1, 2, 4]);
        var report = evaluator.Run([new ParallelConversion(calibrate: true), new SignedConversion(), new BurstConversion(), new FtbcCalibration(), new QcfsConversion()], [1, 2, 4]);
        var (parallel, signed, burst, ftbc, qcfs) = (report.Snn[0], report.Snn[1], report.Snn[2], report.Snn[3], report.Snn[4]);
        Assert.True(parallel.WindowPerT);
        Assert.Equal(new Dictionary<int, int> { [1] = 3, [2] = 6, [4] = 12 }, parallel.LatencyByT); // 3 spiking layers wait for each window
        Assert.Equal(70, parallel.CalibrationImages);
        Assert.Contains("from one pass over 70 training images", parallel.CalibrationSummary);
        Assert.Equal(new Dictionary<int, int> { [1] = 1, [2] = 2, [4] = 4 }, signed.LatencyByT);
        Assert.Equal("signed", signed.SpikeKind);
        Assert.StartsWith("graded", burst.SpikeKind);
        Assert.Equal(48, ftbc.CalibrationImages); // 3 batches of 16
        Assert.Equal("training split", ftbc.CalibrationData);
        // The calibration passes put the ANN back as it was: QCFS after them equals QCFS alone, bit for bit.
        Assert.Equal(alone.AnnAccuracy, report.AnnAccuracy);
        Assert.Equal(alone.Snn[0].AccuracyByT, qcfs.AccuracyByT);
        Assert.Equal(alone.Snn[0].SopsByT, qcfs.SopsByT);
        var json = report.ToJson()["snn"]!.AsArray();
        Assert.Equal(12, (double)json[0]!["latency_steps_by_t"]!["4"]!);
        Assert.True((bool)json[0]!["window_per_t"]!);
    }

    // ---- the PyTorch golden ----

    private static readonly string FixturePath = Path.Combine(AppContext.BaseDirectory, "Fixtures", "torch", "neurons_resnet20.safetensors");

    [Theory]
    [InlineData("parallel", 4)]
    [InlineData("parallel", 8)]
    [InlineData("signed", 4)]
    [InlineData("signed", 8)]
    [InlineData("burst", 4)]
    [InlineData("burst", 8)]
    [InlineData("ftbc", 4)]
    [InlineData("ftbc", 8)]
    public void SpikeCountsPerNeuron_EqualThePyTorchReference(string name, int steps)
    {
        var f = Safetensors.Read(FixturePath);
        var spec = new ModelSpec("resnet20", 3, 8, 8, 10, 0.125f, ActivationSpec.Qcfs(4, 1f));
        var model = ModelFactory.Create(spec);
        model.LoadStateDict(f.Tensors.Where(kv => kv.Key.Contains('.')).ToDictionary(kv => kv.Key, kv => kv.Value));
        model.Eval();
        var method = ConversionMethods.Create(name);
        var snn = Converter.Convert(model, method.Options, createNeuron: method.NeuronFactory);
        Assert.Equal(19, snn.Neurons.Count);
        if (method is FtbcCalibration)
            foreach (var (n, k) in snn.Neurons.Cast<StepBiasNeuron>().Select((n, k) => (n, k)))
            {
                var b = f.Get($"ftbc_bias_T{steps}_layer{k}");
                (n.Bias, n.BiasChannels) = (b.Data, b.Shape[1]);
            }
        var outputs = new Tensor[snn.Neurons.Count];
        foreach (var (n, k) in snn.Neurons.Select((n, k) => (n, k))) n.Attach((_, _, y) => outputs[k] = y.Clone());
        var x = f.Get("x");
        int batch = x.Shape[0];
        snn.Configure(batch, steps);
        var logits = snn.Run(x.Clone(), steps);
        for (int k = 0; k < outputs.Length; k++)
        {
            var expected = f.Get($"counts_{name}_T{steps}_layer{k}");
            float unit = method is BurstConversion b ? snn.Neurons[k].Threshold / b.MaxBurst : snn.Neurons[k].Threshold;
            int mismatches = TestUtil.SpikeCountMismatches(expected, outputs[k], steps, unit);
            Assert.True(mismatches == 0, $"{name} T={steps} layer {k} ({snn.Neurons[k].LayerName}): {mismatches} of {expected.Length} neurons differ from PyTorch");
        }
        var mean = TestUtil.MeanOverSteps(logits, steps);
        TestUtil.AssertClose(f.Get($"logits_{name}_T{steps}").Data, mean, atol: 1e-4, what: $"{name} T={steps} logits");
    }
}
