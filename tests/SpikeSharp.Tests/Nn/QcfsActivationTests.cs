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

    /// <summary>The vector forward is bit for bit the scalar definition where it matters most, at the steps between
    /// levels: L = 1…31, shifts 0 to ½, λ from 1e-30 to 3e30, every float within 40 ulps of each step, random inputs and
    /// the special values. (Random inputs alone miss a step moved by one ulp.)</summary>
    [Fact]
    public void QcfsForwardMatchesTheDefinitionAtEveryStep()
    {
        var rng = new Random(5);
        foreach (int levels in new[] { 1, 2, 3, 4, 5, 7, 8, 15, 16, 31 })
            foreach (float lambda in new[] { 1f, 2f, 0.3f, 7.77f, 1e-30f, 3e30f })
                foreach (float shift in new[] { 0.5f, 0f, 0.25f })
                {
                    var q = new QcfsActivation(levels, lambda) { Shift = shift };
                    var x = new List<float> { 0f, -0f, float.Epsilon, -float.Epsilon, float.PositiveInfinity, float.NegativeInfinity,
                        float.MaxValue, float.MinValue, lambda, -lambda, float.NaN };
                    for (int k = 0; k <= levels; k++)
                    {
                        // Around the ideal step (k − shift)·λ/L, 40 ulps either side.
                        float near = (k - shift) * lambda / levels;
                        for (int d = -40; d <= 40; d++) x.Add(StepUlps(near, d));
                    }
                    for (int i = 0; i < 200; i++) x.Add((float)((rng.NextDouble() * 1.4 - 0.2) * lambda));
                    var input = x.ToArray();
                    var y = new float[input.Length];
                    q.Forward(input, y);
                    for (int i = 0; i < input.Length; i++)
                    {
                        float expected = QcfsActivation.Quantize(input[i], lambda, levels, shift);
                        Assert.True(BitConverter.SingleToInt32Bits(expected) == BitConverter.SingleToInt32Bits(y[i]) || float.IsNaN(expected) && float.IsNaN(y[i]),
                            $"L = {levels}, λ = {lambda}, φ = {shift}: z = {input[i]:R} gives {y[i]:R}, expected {expected:R}");
                    }
                }
    }

    private static float StepUlps(float f, int ulps)
    {
        for (; ulps > 0; ulps--) f = MathF.BitIncrement(f);
        for (; ulps < 0; ulps++) f = MathF.BitDecrement(f);
        return f;
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
