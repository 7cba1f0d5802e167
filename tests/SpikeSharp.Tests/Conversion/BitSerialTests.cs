using SpikeSharp.Autograd;
using SpikeSharp.Conversion;
using SpikeSharp.Conversion.Methods;
using SpikeSharp.Models;
using SpikeSharp.Nn;
using SpikeSharp.Snn;
using SpikeSharp.Tensors;
using Xunit;

namespace SpikeSharp.Tests.Conversion;

/// <summary>Spec §8(c) case 11 and the bit-serial SNN's exact equality with the quantized ANN.</summary>
public class BitSerialTests
{
    private static (float[] Values, float[] Bits) Run(float lambda, int bits, float[] z)
    {
        int levels = (1 << bits) - 1;
        var neuron = new BitSerialNeuron("l", lambda, levels);
        neuron.Configure(z.Length, bits);
        var y = neuron.Forward(new Variable(new Tensor((float[])z.Clone(), z.Length))).Value.Data;
        var values = new float[z.Length];
        var spikes = new float[z.Length];
        for (int j = 0; j < bits; j++)
            for (int i = 0; i < z.Length; i++)
            {
                values[i] += y[j * z.Length + i] / bits;
                if (y[j * z.Length + i] != 0) spikes[i]++;
            }
        return (values, spikes);
    }

    [Fact]
    public void Case11_Example()
    {
        var neuron = new BitSerialNeuron("l", 1f, 15);
        neuron.Configure(1, 4);
        var y = neuron.Forward(new Variable(Tensor.FromArray([0.31f]))).Value.Data;
        Assert.Equal(new[] { 0f, 1f, 0f, 1f }, y.Select(v => v != 0 ? 1f : 0f));
        Assert.Equal(2, SpikeCountRegularizer.Popcount(QcfsActivation.Quantize(0.31f, 1f, 15), 1f, 15));
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    [InlineData(5)]
    [InlineData(8)]
    public void Case11_BitsSumToQcfsAndSpikesArePopcount(int bits)
    {
        int levels = (1 << bits) - 1;
        var rng = new Random(bits);
        const float lambda = 1.7f;
        var z = Enumerable.Range(0, 5000).Select(_ => lambda * (-0.5f + 2 * rng.NextSingle())).ToArray();
        var (values, spikes) = Run(lambda, bits, z);
        int tested = 0;
        for (int i = 0; i < z.Length; i++)
        {
            double u = (double)z[i] * levels / lambda + 0.5;
            if (Math.Abs(u - Math.Round(u)) < 1e-3) continue; // NOTE: float ties at level boundaries (spec §7.1)
            tested++;
            float q = QcfsActivation.Quantize(z[i], lambda, levels);
            Assert.True(Math.Abs(values[i] - q) <= 1e-5f * lambda, $"z={z[i]}: bits give {values[i]}, QCFS {q}");
            Assert.Equal(SpikeCountRegularizer.Popcount(q, lambda, levels), (int)spikes[i]);
        }
        Assert.True(tested > 4800);
    }

    [Fact]
    public void RejectsLevelsThatAreNotTwoToTheTMinusOne()
    {
        var e = Assert.Throws<SpikeSharpException>(() => new BitSerialNeuron("conv1.2", 1f, 4));
        Assert.Contains("L = 2^T − 1", e.Message);
        Assert.Throws<SpikeSharpException>(() => BitSerialConversion.CheckLevels(15, 8));
        BitSerialConversion.CheckLevels(15, 4);
    }

    [Fact]
    public void BitSerialNetworkReproducesTheQuantizedAnn()
    {
        var model = ModelFactory.Create(new ModelSpec("resnet20", 1, 8, 8, 10, 0.5f, ActivationSpec.Qcfs(15, 2f)), seed: 3);
        model.Eval();
        var x = TestUtil.Random(5, 16, 1, 8, 8);
        var ann = model.Forward(new Variable(x)).Value.Data;
        var snn = Converter.Convert(model, createNeuron: new BitSerialConversion().NeuronFactory);
        snn.Configure(16, 4);
        var y = snn.Run(x, 4).Data;
        var mean = new float[ann.Length];
        for (int t = 0; t < 4; t++) TensorPrimitives.Add(mean, y.AsSpan(t * ann.Length, ann.Length), mean);
        TensorPrimitives.Multiply(mean, 0.25f, mean);
        TestUtil.AssertClose(ann, mean, 1e-4, 1e-4, "bit-serial logits vs quantized ANN");
    }

    [Fact]
    public void RegularizerAddsBetaTimesLevelsOverLambdaToTheQcfsGradient()
    {
        var q = new QcfsActivation(15, 1f);
        var x = new Variable(Tensor.FromArray([0.31f, 0.9f, -0.2f]), true);
        using var tape = Tape.Start();
        using var reg = SpikeCountRegularizer.Start(0.01f);
        var y = q.Forward(x);
        Assert.Equal(2 + 3 + 0, reg.SpikeCount); // k = 5 (0101), 14 (1110), 0
        y.AccumulateGrad([0f, 0f, 0f]);
        tape.Backward(new Variable(new Tensor(new[] { 0f }, 1), true));
        // ∂(β·popcount)/∂h = β·L/λ = 0.15, passed to z inside [0, λ] by the straight-through QCFS gradient.
        Assert.Equal(0.15f, x.Grad!.Data[0], 5);
        Assert.Equal(0.15f, x.Grad.Data[1], 5);
        Assert.Equal(0f, x.Grad.Data[2]);
    }
}
