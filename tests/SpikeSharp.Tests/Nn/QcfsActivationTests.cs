using SpikeSharp.Autograd;
using SpikeSharp.Nn;
using SpikeSharp.Tensors;
using Xunit;

namespace SpikeSharp.Tests.Nn;

/// <summary>Spec §8(c) case 4: QCFS values and straight-through gradients (clip-then-floor, λ=2, L=4).</summary>
public class QcfsActivationTests
{
    [Theory]
    [InlineData(0.9f, 1.0f, 1f, 0.05f)]
    [InlineData(2.5f, 2.0f, 0f, 1f)]
    [InlineData(-0.1f, 0f, 0f, 0f)]
    public void SpecCase4(float z, float h, float dz, float dlambda)
    {
        var q = new QcfsActivation(levels: 4, lambdaInit: 2f);
        var x = new Variable(Tensor.FromArray([z]), true);
        using (var tape = Tape.Start())
        {
            var y = q.Forward(x);
            Assert.Equal(h, y.Value.Data[0], 6);
            var loss = new Variable(new Tensor(new[] { 0f }, 1), true);
            y.AccumulateGrad([1f]);
            tape.Backward(loss);
        }
        Assert.Equal(dz, x.Grad!.Data[0], 6);
        Assert.Equal(dlambda, q.Lambda.Grad!.Data[0], 5);
    }

    [Fact]
    public void HasLPlusOneLevels()
    {
        var levels = new HashSet<float>();
        for (float z = -1; z < 3; z += 0.01f) levels.Add(QcfsActivation.Quantize(z, 2f, 4));
        Assert.Equal(new[] { 0f, 0.5f, 1f, 1.5f, 2f }, levels.OrderBy(v => v));
    }

    [Fact]
    public void NonPositiveLambdaIsAClearError()
    {
        var q = new QcfsActivation(4, 1f);
        q.Lambda.Value.Data[0] = -0.5f;
        var e = Assert.Throws<SpikeSharpException>(() => q.Forward(new Variable(Tensor.FromArray([1f]))));
        Assert.Contains("not positive", e.Message);
    }
}
