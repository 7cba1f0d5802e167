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

/// <summary>The vectorized kernels agree bit for bit with the scalar reference at every length (every tail runs).</summary>
public class ActivationKernelTests
{
    [Fact]
    public void QcfsForwardAndBackwardMatchScalarReferenceAtEveryLength()
    {
        var q = new QcfsActivation(levels: 4, lambdaInit: 2f);
        for (int n = 0; n <= 257; n++)
        {
            var x = TestUtil.RandomRange(n, -1f, 3f, n).Data;
            var gy = TestUtil.Random(n + 1000, n).Data;
            var y = new float[n];
            q.Forward(x, y);
            var gx = new float[n];
            var gl = new float[1];
            q.Backward(x, y, gy, gx, gl);
            double expectedGl = 0;
            for (int i = 0; i < n; i++)
            {
                Assert.Equal(QcfsActivation.Quantize(x[i], 2f, 4), y[i]);
                bool inside = x[i] >= 0 && x[i] <= 2f;
                Assert.Equal(inside ? gy[i] : 0f, gx[i]);
                expectedGl += x[i] > 2f ? gy[i] : inside ? gy[i] * (y[i] - x[i]) / 2f : 0;
            }
            Assert.True(Math.Abs(expectedGl - gl[0]) < 1e-4, $"λ gradient {gl[0]} vs {expectedGl} at length {n}");
        }
    }

    [Fact]
    public void ReluBackwardMatchesScalarAtEveryLength()
    {
        var relu = new ReLU();
        for (int n = 0; n <= 257; n++)
        {
            var x = TestUtil.Random(n, n).Data;
            var gy = TestUtil.Random(n + 7, n).Data;
            var gx = new float[n];
            relu.Backward(x, x, gy, gx, []);
            for (int i = 0; i < n; i++) Assert.Equal(x[i] > 0 ? gy[i] : 0f, gx[i]);
        }
    }
}
