using SpikeSharp.Autograd;
using SpikeSharp.Conversion;
using SpikeSharp.Conversion.Methods;
using SpikeSharp.Data;
using SpikeSharp.Models;
using SpikeSharp.Nn;
using SpikeSharp.Snn;
using SpikeSharp.Tensors;
using Xunit;

namespace SpikeSharp.Tests.Conversion;

/// <summary>Spec §8(c) cases 9 and 10 and the dual-phase calibration's guards.</summary>
public class DualPhaseTests
{
    [Fact]
    public void Case9_MeanPotentialCalibrationAddsTheMissingSpike()
    {
        float[] input = [0f, 0f, 0f, 2f];
        var neuron = new IfNeuron("l", 1f) { Rule = FireRule.Greater };
        neuron.Configure(1, 4);
        var y = neuron.Forward(new Variable(new Tensor((float[])input.Clone(), 4, 1))).Value.Data;
        float rate = y.Sum() / 4, ann = 0.5f;
        Assert.Equal(0.25f, rate);
        neuron.InitialOffset = [4 * (ann - rate)];
        neuron.Configure(1, 4);
        y = neuron.Forward(new Variable(new Tensor((float[])input.Clone(), 4, 1))).Value.Data;
        Assert.Equal(2f, y.Sum());
    }

    /// <summary>A dyadic random network (ANN and a converted twin with the same weights), 16 training images (8 for
    /// calibration, 8 held out) and the dual-phase method for T_c = 4.</summary>
    private static (Module Ann, SpikingNetwork Snn, ImageDataset Train, float[][] Inputs, CalibrationData Data) DualPhaseCase(int seed, DualPhaseCalibration method)
    {
        const int c = 2, size = 8, classes = 4;
        var ann = Tests.Snn.ReferenceNets.Random(seed, c, size, classes);
        ann.Eval();
        var snn = Converter.Convert(Tests.Snn.ReferenceNets.Random(seed, c, size, classes), method.Options);
        var (train, inputs, transform) = Tests.Snn.ReferenceNets.Images(seed, 16, c, size, classes);
        return (ann, snn, train, inputs, new CalibrationData(train, transform, 4, null));
    }

    /// <summary>Spec §4a worked out with the reference simulator: for each layer in order (earlier layers already
    /// calibrated), v0 += T·(mean over images of the ANN activation − mean of θ·s over images and steps).</summary>
    private static Dictionary<SpikingNeuron, double[]> ExpectedMeanPotentialOffsets(Module ann, SpikingNetwork snn, float[][] calib, int[] labels, int steps)
    {
        var reference = new Tests.Snn.ReferenceSnn(snn.Model) { Strict = true };
        var offsets = new Dictionary<SpikingNeuron, double[]>();
        var batch = Tests.Snn.ReferenceNets.Batch(calib, 2, 8);
        using var rec = ActivationRecorder.Start();
        ann.Forward(new Variable(batch));
        var acts = ann.NamedModules().Where(m => m.Value is Activation).ToDictionary(m => m.Key, m => rec.Outputs(m.Value)[0]);
        for (int l = 0; l < snn.Neurons.Count; l++)
        {
            var r = reference.RunWithOffsets(calib, [2, 8, 8], labels, steps, offsets);
            var a = acts[snn.Neurons[l].LayerName];
            int per = a.SizeFrom(1);
            var off = new double[per];
            for (int i = 0; i < per; i++)
            {
                double meanA = 0, meanR = 0;
                for (int b = 0; b < calib.Length; b++)
                {
                    meanA += a.Data[b * per + i] / calib.Length;
                    for (int t = 0; t < steps; t++) meanR += r.Spikes[l][t][b * per + i] * (double)snn.Neurons[l].Threshold / (steps * calib.Length);
                }
                off[i] = steps * (meanA - meanR);
            }
            offsets[snn.Neurons[l]] = off;
        }
        return offsets;
    }

    private static double HeldOutAccuracy(SpikingNetwork snn, float[][] inputs, int[] labels, IReadOnlyDictionary<SpikingNeuron, double[]> offsets, int steps)
    {
        var r = new Tests.Snn.ReferenceSnn(snn.Model) { Strict = true }.RunWithOffsets(inputs[8..], [2, 8, 8], labels[8..], steps, offsets);
        Assert.True(r.MinMargin > 1e-6, $"a potential came within {r.MinMargin} of θ: the comparison would not be exact");
        return r.CorrectByStep[^1] / 8.0;
    }

    [Theory]
    [InlineData(3)]
    [InlineData(9)]
    [InlineData(13)]
    [InlineData(49)]
    public void MeanPotentialCalibrationMatchesTheSpecAndTheBetterStageIsKept(int seed)
    {
        var method = new DualPhaseCalibration(8, 8, 4) { Bptt = null };
        var (ann, snn, train, inputs, data) = DualPhaseCase(seed, method);
        var before = snn.Model.Parameters().Select(p => (float[])p.Value.Data.Clone()).ToList();
        Assert.Equal(16, method.Calibrate(snn, ann, data, 4));

        var offsets = ExpectedMeanPotentialOffsets(ann, snn, inputs[..8], train.Labels[..8], 4);
        double none = HeldOutAccuracy(snn, inputs, train.Labels, new Dictionary<SpikingNeuron, double[]>(), 4);
        double calibrated = HeldOutAccuracy(snn, inputs, train.Labels, offsets, 4);
        Assert.Equal([("none", none), ("mean-potential", calibrated)], method.Stages);
        string kept = calibrated > none ? "mean-potential" : "none"; // ties keep the earlier stage
        Assert.Equal(kept, method.KeptStage);
        Assert.Contains($"kept '{kept}'", method.CalibrationSummary);
        foreach (var n in snn.IfNeurons)
        {
            if (kept == "none") Assert.Null(n.InitialOffset);
            else Assert.Equal(offsets[n].Select(v => (float)v), n.InitialOffset!);
            Assert.Null(n.BeforeRun);      // the stopped runs leave no hook behind
            Assert.Empty(n.Monitors);
            Assert.Equal(FireRule.Greater, n.Rule);
        }
        Assert.Equal(before, snn.Model.Parameters().Select(p => p.Value.Data)); // no stage trained weights
    }

    [Fact]
    public void BothOutcomesOfTheStageChoiceAreCovered()
    {
        // The seeds of the theory above must include a network that keeps the calibrated stage and one that keeps none.
        var kept = new[] { 3, 9, 13, 49 }.Select(seed =>
        {
            var method = new DualPhaseCalibration(8, 8, 4) { Bptt = null };
            var (ann, snn, _, _, data) = DualPhaseCase(seed, method);
            method.Calibrate(snn, ann, data, 4);
            return method.KeptStage;
        }).ToHashSet();
        Assert.Equal(new HashSet<string?> { "none", "mean-potential" }, kept);
    }

    [Fact]
    public void WithBpttTheKeptStageRestoresItsWeightsAndOffsets()
    {
        var method = new DualPhaseCalibration(8, 8, 4) { Bptt = new LayerwiseBptt { MaxEpochs = 3, BatchSize = 4, WeightLearningRate = 0.05f }, BpttImages = 8 };
        var (ann, snn, train, inputs, data) = DualPhaseCase(9, method);
        var before = snn.Model.Parameters().Select(p => (float[])p.Value.Data.Clone()).ToList();
        method.Calibrate(snn, ann, data, 4);
        Assert.Equal(["none", "mean-potential", "bptt", "mean-potential again"], method.Stages.Select(s => s.Stage));
        // The network left behind is the kept stage: the reference simulation of its weights and offsets on the
        // held-out images gives the accuracy recorded for that stage, and the best one.
        var offsets = snn.IfNeurons.Where(n => n.InitialOffset != null).ToDictionary(n => (SpikingNeuron)n, n => n.InitialOffset!.Select(v => (double)v).ToArray());
        double accuracy = HeldOutAccuracy(snn, inputs, train.Labels, offsets, 4);
        var keptStage = method.Stages.First(s => s.Stage == method.KeptStage);
        Assert.Equal(keptStage.Accuracy, accuracy);
        Assert.Equal(method.Stages.Max(s => s.Accuracy), accuracy);
        bool weightsTrained = method.KeptStage is "bptt" or "mean-potential again";
        Assert.Equal(!weightsTrained, before.Zip(snn.Model.Parameters()).All(p => p.First.SequenceEqual(p.Second.Value.Data)));
    }

    [Fact]
    public void Case10_NoisyQcEndpointsAndEvalMode()
    {
        var z = TestUtil.RandomRange(1, -1f, 3f, 4096);
        foreach (var (p, expectQuantized) in new[] { (0f, true), (1f, false) })
        {
            var a = new NoisyQcActivation(levels: 4, lambdaInit: 2f, noiseP: p);
            var y = a.Forward(new Variable(z)).Value.Data;
            for (int i = 0; i < y.Length; i++)
            {
                float expected = expectQuantized ? NoisyQcActivation.Quantize(z.Data[i], 2f, 4) : Math.Clamp(z.Data[i], 0f, 2f);
                Assert.Equal(expected, y[i], 5);
            }
            a.Eval();
            y = a.Forward(new Variable(z)).Value.Data;
            for (int i = 0; i < y.Length; i++) Assert.Equal(NoisyQcActivation.Quantize(z.Data[i], 2f, 4), y[i], 5);
        }
        // With p = 0.1 each element whose clip and quantized values differ stays continuous with probability 0.1: over
        // 2^16 draws the count is Binomial(m, 0.1); accept ±4 standard deviations (about ±7 %).
        var many = TestUtil.RandomRange(2, -1f, 3f, 1 << 16);
        var mixed = new NoisyQcActivation(4, 2f, 0.1f).Forward(new Variable(many)).Value.Data;
        int differ = many.Data.Count(x => Math.Clamp(x, 0f, 2f) != NoisyQcActivation.Quantize(x, 2f, 4));
        int continuous = mixed.Where((v, i) => v != NoisyQcActivation.Quantize(many.Data[i], 2f, 4)).Count();
        Assert.True(mixed.Select((v, i) => (v, i)).All(p => p.v == NoisyQcActivation.Quantize(many.Data[p.i], 2f, 4) || p.v == Math.Clamp(many.Data[p.i], 0f, 2f)),
            "every output is either the quantized or the clipped value");
        double mean = 0.1 * differ, sd = Math.Sqrt(differ * 0.1 * 0.9);
        Assert.InRange(continuous, mean - 4 * sd, mean + 4 * sd);
    }

    [Fact]
    public void NoisyQcUsesTheAbsoluteThreshold()
    {
        var a = new NoisyQcActivation(4, -2f, 0f);
        a.Eval();
        Assert.Equal(2f, a.Forward(new Variable(Tensor.FromArray([5f]))).Value.Data[0]);
    }

    [Fact]
    public void DualPhaseWithoutTrainingDataIsAClearError()
    {
        var model = ModelFactory.Create(new ModelSpec("cnn-small", 1, 8, 8, 10, 0.25f, ActivationSpec.Qcfs(4, 2f)));
        var snn = Converter.Convert(model, new DualPhaseCalibration().Options);
        var transform = TransformSpec.ForEval(1, 8, 8, new Normalization([0f], [1f]));
        var e = Assert.Throws<SpikeSharpException>(() => new DualPhaseCalibration().Calibrate(snn, model, new CalibrationData(null, transform, 16, null), 8));
        Assert.Contains("training", e.Message);
        Assert.All(snn.IfNeurons, n => Assert.Equal(FireRule.Greater, n.Rule));
    }

    [Fact]
    public void LayerwiseBpttRaisesTheInitialPotentialOfAnUnderFiringNeuron()
    {
        // Two neurons, T = 4: neuron 0 gets [0, 0, 0, 2] (1 spike, rate 0.25) but the ANN says 0.5; neuron 1 is silent in both.
        const int samples = 8, steps = 4;
        var currents = new float[steps * samples * 2];
        for (int b = 0; b < samples; b++) currents[((3 * samples) + b) * 2] = 2f;
        var targets = new float[samples * 2];
        for (int b = 0; b < samples; b++) targets[b * 2] = 0.5f;
        var data = new LayerwiseBptt.LayerData(currents, false, targets, samples, 2, steps);
        var neuron = new IfNeuron("l", 1f) { Rule = FireRule.Greater };
        var offsets = new float[2];
        var bptt = new LayerwiseBptt { LearningRate = 0.05f, MaxEpochs = 200, Patience = 200 };
        var (before, after) = bptt.Train(neuron, offsets, data, data);
        Assert.True(after < before, $"KL {before} -> {after}");
        Assert.True(offsets[0] > 0.4f, $"offset of the under-firing neuron is {offsets[0]}");
    }

    [Fact]
    public void SynapseOfEachNeuronIsTheLayerBeforeIt_AndTheResidualBranchForABlockOutput()
    {
        var spec = new ModelSpec("resnet20", 3, 16, 16, 10, 0.25f, ActivationSpec.Qcfs(4, 1f));
        var snn = Converter.Convert(ModelFactory.Create(spec));
        string Describe(string neuron)
        {
            var s = LayerwiseBptt.Synapse.Find(snn.Model, neuron)!;
            return $"{s.LayerName}:{s.Layer.GetType().Name}+{s.Norm?.GetType().Name}";
        }
        Assert.Equal("conv1.0:Conv2d+BatchNorm", Describe("conv1.2"));
        Assert.Equal("conv2_x.0.residual_function.0:Conv2d+BatchNorm", Describe("conv2_x.0.residual_function.2"));
        Assert.Equal("conv2_x.0.residual_function.3:Conv2d+BatchNorm", Describe("conv2_x.0.relu"));
        // A downsampling block: the residual branch, not the 1×1 shortcut (whose current stays fixed in stage b).
        Assert.Equal("conv3_x.0.residual_function.3:Conv2d+BatchNorm", Describe("conv3_x.0.relu"));
        var vgg = Converter.Convert(ModelFactory.Create(new ModelSpec("vgg16", 3, 32, 32, 10, 0.0625f, ActivationSpec.Qcfs(4, 1f))));
        var head = LayerwiseBptt.Synapse.Find(vgg.Model, "classifier.2")!;
        Assert.IsType<Linear>(head.Layer);
        Assert.Null(head.Norm);
    }

    [Fact]
    public void TrainingTheSynapseLowersTheHeldOutLossAndKeepsTheBest()
    {
        // A conv+BN synapse whose ANN targets come from different weights: stage b must move W, b towards them.
        const int steps = 4, samples = 48, cin = 2, cout = 8, size = 6;
        var conv = new Conv2d(cin, cout, 3, padding: 1, bias: false, rng: new Random(1));
        var bn = new BatchNorm(cout);
        var model = new Sequential(conv, bn, new ReLU());
        model.Eval();
        var synapse = LayerwiseBptt.Synapse.Find(model, "2")!;
        Assert.Same(conv, synapse.Layer);
        var spikes = TestUtil.RandomRange(2, 0f, 1f, steps * samples, cin, size, size);
        for (int i = 0; i < spikes.Length; i++) spikes.Data[i] = spikes.Data[i] > 0.7f ? 1f : 0f;
        // Targets: the clip-ReLU of the current of the same synapse with weights ×1.5, averaged over time.
        var original = (float[])conv.Weight.Value.Data.Clone();
        TensorPrimitives.Multiply(conv.Weight.Value.Data, 1.5f, conv.Weight.Value.Data);
        var scaled = synapse.Forward(new Variable(spikes)).Value.Data;
        original.CopyTo(conv.Weight.Value.Data, 0);
        int per = cout * size * size;
        var targets = new float[samples * per];
        for (int t = 0; t < steps; t++)
            for (int i = 0; i < samples * per; i++) targets[i] += Math.Clamp(scaled[t * samples * per + i], 0f, 1f) / steps;
        LayerwiseBptt.SynapseData Half(int from) => new(new Tensor(Rows(spikes, from, samples / 2, samples, steps), steps * samples / 2, cin, size, size),
            false, null, targets.AsSpan(from * per, samples / 2 * per).ToArray(), samples / 2, per, steps);
        var neuron = new IfNeuron("n", 1f) { Rule = FireRule.Greater };
        var offsets = new float[per];
        var (before, after) = new LayerwiseBptt { MaxEpochs = 20, BatchSize = 8, WeightLearningRate = 1e-2f, LearningRate = 0f }
            .TrainWithSynapse(neuron, offsets, synapse, Half(0), Half(samples / 2));
        Assert.True(after < before, $"held-out KL {before} -> {after}"); // a wrong gradient never improves, and the best (= initial) is kept
        Assert.NotEqual(original, conv.Weight.Value.Data);
        Assert.All(offsets, o => Assert.Equal(0f, o)); // v0 frozen: the improvement came through W and b
    }

    /// <summary>Rows of samples [from, from+count) for every step of a t-major [T·N, …] tensor, as a t-major [T·count, …] array.</summary>
    private static float[] Rows(Tensor x, int from, int count, int samples, int steps)
    {
        int per = x.SizeFrom(1);
        var rows = new float[steps * count * per];
        for (int t = 0; t < steps; t++) x.Data.AsSpan((t * samples + from) * per, count * per).CopyTo(rows.AsSpan(t * count * per));
        return rows;
    }
}
