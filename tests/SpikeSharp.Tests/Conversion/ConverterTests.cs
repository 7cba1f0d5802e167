using SpikeSharp.Autograd;
using SpikeSharp.Conversion;
using SpikeSharp.Models;
using SpikeSharp.Nn;
using SpikeSharp.Snn;
using SpikeSharp.Tensors;
using Xunit;

namespace SpikeSharp.Tests.Conversion;

/// <summary>Spec §8(c) cases 5 and 12, conversion bookkeeping and bad input.</summary>
public class ConverterTests
{
    private static void RandomizeBatchNorm(Module m, int seed) => TestUtil.RandomizeBatchNorm(m, seed);

    [Fact]
    public void Case5_FoldingBatchNormKeepsOutputs()
    {
        var model = ModelFactory.Create(new ModelSpec("resnet20", 3, 16, 16, 10, 0.5f, ActivationSpec.Relu));
        RandomizeBatchNorm(model, 1);
        model.Eval();
        var x = new Variable(TestUtil.Random(2, 3, 3, 16, 16));
        var before = model.Forward(x).Value.Data;
        var swaps = BatchNormFolding.Fold(model);
        Assert.DoesNotContain(model.NamedModules(), m => m.Value is BatchNorm);
        var after = model.Forward(x).Value.Data;
        TestUtil.AssertClose(before, after, 1e-5, 1e-4, "folded");
        for (int i = swaps.Count - 1; i >= 0; i--) swaps[i].Undo();
        Assert.Equal(before, model.Forward(x).Value.Data);
    }

    [Fact]
    public void FoldingBatchNormAfterLinearGivesTheAffineWeightsAndKeepsOutputs()
    {
        var fc = new Linear(6, 5, rng: new Random(3));
        var bn = new BatchNorm(5);
        var model = new Sequential(new Flatten(), fc, bn, new ReLU(), new Linear(5, 3, rng: new Random(4)));
        RandomizeBatchNorm(model, 2);
        model.Eval();
        var x = new Variable(TestUtil.Random(5, 4, 6));
        var before = model.Forward(x).Value.Data;
        float[] w = (float[])fc.Weight.Value.Data.Clone(), b = (float[])fc.Bias!.Value.Data.Clone();
        var swaps = BatchNormFolding.Fold(model);
        Assert.DoesNotContain(model.NamedModules(), m => m.Value is BatchNorm);
        var folded = Assert.IsType<Linear>(model.Children[1].Value);
        for (int o = 0; o < 5; o++)
        {
            // W' = W·γ/σ, b' = γ(b − μ)/σ + β, σ = √(var + ε) (spec §0).
            double sigma = Math.Sqrt(bn.RunningVar.Data[o] + (double)bn.Eps), scale = bn.Weight.Value.Data[o] / sigma;
            for (int i = 0; i < 6; i++) Assert.Equal(w[o * 6 + i] * scale, folded.Weight.Value.Data[o * 6 + i], 1e-6);
            Assert.Equal(scale * (b[o] - bn.RunningMean.Data[o]) + bn.Bias.Value.Data[o], folded.Bias!.Value.Data[o], 1e-6);
        }
        TestUtil.AssertClose(before, model.Forward(x).Value.Data, 1e-5, 1e-4, "folded linear");
        for (int i = swaps.Count - 1; i >= 0; i--) swaps[i].Undo();
        Assert.Same(fc, model.Children[1].Value);
        Assert.Equal(before, model.Forward(x).Value.Data);
    }

    [Theory]
    [InlineData(50.0)]
    [InlineData(90.0)]
    [InlineData(99.99)]
    public void ReluThresholdBalancingTakesThePercentileOfPositiveActivations(double percentile)
    {
        var fc = new Linear(4, 3, rng: new Random(5));
        fc.Weight.Value.Data[8] = -100f; fc.Weight.Value.Data[9] = -100f; fc.Weight.Value.Data[10] = -100f; fc.Weight.Value.Data[11] = -100f;
        fc.Bias!.Value.Data[2] = -1000f; // unit 2 never activates: the layer still has positives from units 0 and 1
        var model = new Sequential(fc, new ReLU(), new Linear(3, 2, rng: new Random(6)));
        var images = new[] { TestUtil.Random(7, 16, 4), TestUtil.Random(8, 9, 4) };
        // Independently: the positive pre-activations of the first layer, sorted, at index ⌊n·p/100⌋.
        var positives = new List<double>();
        foreach (var x in images)
            for (int r = 0; r < x.Shape[0]; r++)
                for (int o = 0; o < 3; o++)
                {
                    double z = fc.Bias.Value.Data[o];
                    for (int i = 0; i < 4; i++) z += fc.Weight.Value.Data[o * 4 + i] * x.Data[r * 4 + i];
                    if (z > 0) positives.Add(z);
                }
        positives.Sort();
        double expected = positives[Math.Min(positives.Count - 1, (int)(positives.Count * percentile / 100))];
        var snn = Converter.Convert(model, new ConversionOptions(ReluPercentile: percentile), images, _ => { });
        Assert.Equal(expected, snn.Neurons[0].Threshold, 1e-5);
        Assert.True(percentile < 99 || snn.Neurons[0].Threshold == (float)positives[^1]);
    }

    [Fact]
    public void ReluThresholdOfASilentLayerIsOne()
    {
        var fc = new Linear(2, 2, rng: new Random(1));
        fc.Bias!.Value.Data[0] = fc.Bias.Value.Data[1] = -1e6f;
        var snn = Converter.Convert(new Sequential(fc, new ReLU(), new Linear(2, 2)), calibrationImages: [TestUtil.Random(2, 8, 2)], warn: _ => { });
        Assert.Equal(1f, snn.Neurons[0].Threshold);
    }

    [Fact]
    public void Case12_FirstLayerOfQcfsMlpIsExactWithTEqualsLAndErrorShrinksWithT()
    {
        const int levels = 4;
        var rng = new Random(3);
        // Two hidden layers: the first sees constant input, so at T = L it equals the QCFS ANN exactly. As T grows the
        // rates approach clip(z) (QCFS with T levels, spec §1), so the output approaches the clip ANN on the same
        // weights, and the second layer's unevenness error shrinks.
        Linear l1 = new(20, 64, rng: rng), l2 = new(64, 64, rng: rng), l3 = new(64, 5, rng: rng);
        var mlp = new Sequential(l1, new QcfsActivation(levels, 1.5f), l2, new QcfsActivation(levels, 1.5f), l3);
        var clipAnn = new Sequential(l1, new ClipActivation(1.5f), l2, new ClipActivation(1.5f), l3);
        var x = TestUtil.Random(4, 32, 20);
        Tensor annHidden;
        Tensor annOut;
        using (var rec = ActivationRecorder.Start())
        {
            annOut = mlp.Forward(new Variable(x)).Value;
            annHidden = rec.Outputs(mlp[1])[0];
        }
        var clipOut = clipAnn.Forward(new Variable(x)).Value;
        var snn = Converter.Convert(mlp);
        var gaps = new List<double>();
        foreach (int steps in new[] { levels, 32, 256 })
        {
            var neuronOut = new List<Tensor>();
            snn.Neurons[0].Attach((_, _, y) => neuronOut.Add(y.Clone()));
            snn.Configure(32, steps);
            var y = snn.Run(x, steps);
            var rate = new float[annHidden.Length];
            for (int t = 0; t < steps; t++) TensorPrimitives.Add(rate, neuronOut[0].Data.AsSpan(t * rate.Length, rate.Length), rate);
            TensorPrimitives.Multiply(rate, 1f / steps, rate);
            if (steps == levels) TestUtil.AssertClose(annHidden.Data, rate, 1e-5, 1e-5, "first layer at T = L");
            var mean = new float[annOut.Length];
            for (int t = 0; t < steps; t++) TensorPrimitives.Add(mean, y.Data.AsSpan(t * mean.Length, mean.Length), mean);
            TensorPrimitives.Multiply(mean, 1f / steps, mean);
            TensorPrimitives.Subtract(mean, clipOut.Data, mean);
            gaps.Add(TensorPrimitives.SumOfMagnitudes(mean) / mean.Length);
        }
        Assert.True(gaps[1] < gaps[0] && gaps[2] < gaps[1], $"gaps to the clip ANN at T = 4, 32, 256 do not shrink: {string.Join(", ", gaps)}");
    }

    [Fact]
    public void ConversionSharesParametersAndCanBeUndone()
    {
        var model = ModelFactory.Create(new ModelSpec("cnn-small", 1, 8, 8, 10, 0.25f, ActivationSpec.Qcfs(4, 2f)));
        model.Eval();
        var x = new Variable(TestUtil.Random(5, 2, 1, 8, 8));
        var ann = model.Forward(x).Value.Data;
        var weightsBefore = model.Parameters().Select(p => p.Value).ToList();
        var snn = Converter.Convert(model);
        Assert.Equal(3, snn.Neurons.Count);
        Assert.All(snn.Neurons, n => Assert.Equal(2f, n.Threshold));
        // Every remaining parameter is the ANN's own tensor; only the λ parameters left with their activations.
        Assert.All(model.Parameters(), p => Assert.Contains(p.Value, weightsBefore));
        Assert.Equal(weightsBefore.Count - 3, model.Parameters().Count());
        snn.RestoreAnn();
        Assert.Equal(ann, model.Forward(x).Value.Data);
    }

    [Fact]
    public void NeuronsAreListedInExecutionOrder()
    {
        var model = ModelFactory.Create(new ModelSpec("resnet20", 1, 8, 8, 10, 0.25f, ActivationSpec.Qcfs(4, 2f)));
        var snn = Converter.Convert(model);
        var fired = new List<string>();
        foreach (var n in snn.Neurons) n.Attach((neuron, _, _) => fired.Add(neuron.LayerName));
        snn.Configure(2, 2);
        snn.Run(TestUtil.Random(1, 2, 1, 8, 8), 2);
        Assert.Equal(fired, snn.Neurons.Select(n => n.LayerName));
        Assert.Equal(["conv1.2", "conv2_x.0.residual_function.2", "conv2_x.0.relu"], snn.Neurons.Take(3).Select(n => n.LayerName));
    }

    [Fact]
    public void MaxPoolIsRefusedWithAClearMessage()
    {
        var model = new Sequential(new Conv2d(1, 2, 3, 1, 1), new QcfsActivation(), new MaxPool2d(2));
        var e = Assert.Throws<SpikeSharpException>(() => Converter.Convert(model));
        Assert.Contains("max pool", e.Message);
        Assert.Contains("average pooling", e.Message);
    }

    [Fact]
    public void PlainReluNeedsCalibrationImages()
    {
        var model = new Sequential(new Linear(4, 3), new ReLU(), new Linear(3, 2));
        var e = Assert.Throws<SpikeSharpException>(() => Converter.Convert(model));
        Assert.Contains("threshold balancing", e.Message);
        var warnings = new List<string>();
        var snn = Converter.Convert(model, calibrationImages: [TestUtil.Random(1, 16, 4)], warn: warnings.Add);
        Assert.Single(warnings);
        Assert.True(snn.Neurons[0].Threshold > 0);
    }
}
