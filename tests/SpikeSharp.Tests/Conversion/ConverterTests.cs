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
    private static void RandomizeBatchNorm(Module m, int seed)
    {
        var rng = new Random(seed);
        foreach (var (_, bn) in m.NamedModules().Where(x => x.Value is BatchNorm).Select(x => (x.Key, (BatchNorm)x.Value)))
            for (int c = 0; c < bn.Channels; c++)
            {
                bn.Weight.Value.Data[c] = 0.5f + rng.NextSingle();
                bn.Bias.Value.Data[c] = rng.NextSingle() - 0.5f;
                bn.RunningMean.Data[c] = rng.NextSingle() - 0.5f;
                bn.RunningVar.Data[c] = 0.5f + rng.NextSingle();
            }
    }

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
            snn.Neurons[0].Observer = (_, _, y) => neuronOut.Add(y.Clone());
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
        foreach (var n in snn.Neurons) n.Observer = (neuron, _, _) => fired.Add(neuron.LayerName);
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
