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
        var mixed = new NoisyQcActivation(4, 2f, 0.1f).Forward(new Variable(z)).Value.Data;
        int continuous = mixed.Where((v, i) => v != NoisyQcActivation.Quantize(z.Data[i], 2f, 4)).Count();
        Assert.InRange(continuous, 100, 700); // ≈ 10 % of the elements inside (0, λ) stay unquantized
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
}
