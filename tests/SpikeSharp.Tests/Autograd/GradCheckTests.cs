using SpikeSharp.Autograd;
using SpikeSharp.Autograd.Ops;
using SpikeSharp.Models;
using SpikeSharp.Nn;
using SpikeSharp.Tensors;
using Xunit;

namespace SpikeSharp.Tests.Autograd;

/// <summary>Finite-difference checks of every differentiable primitive and of small whole networks.</summary>
public class GradCheckTests
{
    private const double Tol = 2e-3;

    private static Variable P(int seed, params int[] shape) => new(TestUtil.Random(seed, shape), requiresGrad: true);

    private static void AssertGrad(Func<Variable> f, params Variable[] inputs) => AssertGrad(1e-2, f, inputs);

    /// <summary>Whole networks: float32 noise and kinks coupled through BN spoil a few elements, so each input
    /// must agree within 1e-2 on 80 % of its sampled elements and within 0.05 on all, and at least half of each input's
    /// samples must be checked (not skipped at kinks). A wiring error (a gradient lost or overwritten) shifts every
    /// element of its tensor and still fails.</summary>
    private static void AssertNetworkGrad(Func<Variable> f, params Variable[] inputs)
    {
        var r = GradCheck.Check(f, inputs, 1e-3);
        Assert.True(r.MaxRelativeError < 0.05, $"max relative error {r.MaxRelativeError:G3} at {r.Worst}");
        double within = r.WorstInputFractionWithin(1e-2);
        Assert.True(within >= 0.8, $"only {within:P0} of one input's elements within 1e-2");
        Assert.True(r.WorstInputFractionChecked >= 0.5, $"only {r.WorstInputFractionChecked:P0} of one input's sampled elements were checked ({r.SkippedAtKinks} kinks)");
    }

    private static void AssertGrad(double step, Func<Variable> f, params Variable[] inputs)
    {
        var r = GradCheck.Check(f, inputs, step);
        Assert.True(r.MaxRelativeError < Tol, $"max relative error {r.MaxRelativeError:G3} at {r.Worst}");
        Assert.True(r.Checked >= 4 * r.SkippedAtKinks, $"only {r.Checked} elements checked, {r.SkippedAtKinks} skipped at kinks");
        Assert.True(r.WorstInputFractionChecked >= 0.5, $"only {r.WorstInputFractionChecked:P0} of one input's sampled elements were checked: {string.Join(", ", r.ErrorsPerInput.Select((e, i) => $"{e.Length}/{r.SampledPerInput[i]}"))}");
    }

    [Fact]
    public void ALostSmallGradientFailsTheCheck()
    {
        // Gradients of order 1e-3: an absolute tolerance would pass a backward that loses them entirely.
        var x = P(1, 2, 3, 6, 6);
        var w = new Variable(TestUtil.RandomRange(2, -1e-3f, 1e-3f, 4, 3, 3, 3), requiresGrad: false);
        var good = GradCheck.Check(() => Conv2dOp.Forward(x, w, null, 1, 1), [x]);
        Assert.True(good.MaxRelativeError < Tol && good.Checked >= 20, $"correct backward: {good.MaxRelativeError:G3}, {good.Checked} checked");
        var lost = GradCheck.Check(() => Conv2dOp.Forward(new Variable(x.Value), w, null, 1, 1), [x]); // detached: analytic 0
        Assert.True(lost.MaxRelativeError > 0.5, $"a lost gradient of order 1e-3 scored {lost.MaxRelativeError:G3}");
    }

    [Theory]
    [InlineData(3, 1, 1, true, 7, 7)]
    [InlineData(3, 2, 1, false, 8, 8)]
    [InlineData(1, 2, 0, false, 8, 8)]
    [InlineData(5, 1, 2, true, 9, 9)]
    [InlineData(3, 1, 0, true, 6, 5)]
    [InlineData(3, 3, 2, true, 10, 7)]
    [InlineData(3, 1, 1, true, 4, 4, 5)]
    [InlineData(3, 2, 1, true, 4, 4, 7)]
    public void Conv2d(int k, int stride, int pad, bool bias, int h, int w, int n = 2)
    {
        // Batches of 5 and 7 with 4×4 maps exercise the grouping of several images per GEMM.
        var x = P(1, n, 3, h, w);
        var wt = P(2, 4, 3, k, k);
        var b = bias ? P(3, 4) : null;
        AssertGrad(() => Conv2dOp.Forward(x, wt, b, stride, pad), b == null ? [x, wt] : [x, wt, b]);
    }

    [Theory]
    [InlineData(4, 4, 4, 3, 1, 1, 1)] // depthwise
    [InlineData(4, 8, 4, 3, 2, 1, 1)] // depthwise, channel multiplier 2, stride 2
    [InlineData(6, 4, 2, 3, 1, 1, 1)] // two groups
    [InlineData(3, 4, 1, 3, 1, 2, 2)] // dilation 2
    [InlineData(4, 4, 2, 3, 1, 2, 2)] // grouped and dilated
    public void GroupedAndDilatedConv2d(int cin, int cout, int groups, int k, int stride, int pad, int dilation)
    {
        var x = P(1, 2, cin, 7, 7);
        var wt = P(2, cout, cin / groups, k, k);
        var b = P(3, cout);
        AssertGrad(() => Conv2dOp.ForwardGrouped(x, wt, b, stride, pad, dilation, groups), x, wt, b);
        // The accumulating backward (x used twice) adds to the gradient already there.
        AssertGrad(() => ElementwiseOps.Add(Conv2dOp.ForwardGrouped(x, wt, null, stride, pad, dilation, groups), Conv2dOp.ForwardGrouped(x, wt, null, stride, pad, dilation, groups)), x, wt);
    }

    [Fact]
    public void GroupedConvWithOneGroupEqualsTheDenseKernels()
    {
        var x = new Variable(TestUtil.Random(4, 3, 5, 9, 9));
        var w = new Variable(TestUtil.Random(5, 6, 5, 3, 3));
        var b = new Variable(TestUtil.Random(6, 6));
        var dense = Conv2dOp.Forward(x, w, b, 2, 1).Value;
        var g = new GroupedConvGeometry(3, 5, 9, 9, 6, 3, 2, 1, 1, 1);
        var y = new float[dense.Length];
        GroupedConvKernels.Forward(g, x.Value.Data, w.Value.Data, b.Value.Data, y);
        TestUtil.AssertClose(dense.Data, y, atol: 1e-4, what: "direct loops vs GEMM");
    }

    [Theory]
    [InlineData(4, 4, 4, 3, 1, 1, 7)]   // depthwise, rows shorter than a vector
    [InlineData(4, 8, 4, 3, 1, 1, 28)]  // channel multiplier 2, two vectors per row
    [InlineData(6, 4, 2, 3, 2, 2, 13)]  // two groups, dilation 2
    [InlineData(3, 5, 1, 5, 0, 1, 33)]  // one group, 5×5, no padding
    public void GroupedConvStride1EqualsANaiveLoop(int cin, int cout, int groups, int k, int pad, int dilation, int size)
    {
        var x = TestUtil.Random(11, 2, cin, size, size).Data;
        var w = TestUtil.Random(12, cout, cin / groups, k, k).Data;
        var b = TestUtil.Random(13, cout).Data;
        var g = new GroupedConvGeometry(2, cin, size, size, cout, k, 1, pad, dilation, groups);
        var y = new float[2 * cout * g.OutH * g.OutW];
        GroupedConvKernels.Forward(g, x, w, b, y);
        for (int n = 0; n < 2; n++)
            for (int o = 0; o < cout; o++)
                for (int r = 0; r < g.OutH; r++)
                    for (int c = 0; c < g.OutW; c++)
                    {
                        double sum = b[o];
                        for (int i = 0; i < g.InPerGroup; i++)
                            for (int kh = 0; kh < k; kh++)
                                for (int kw = 0; kw < k; kw++)
                                {
                                    int ih = r - pad + kh * dilation, iw = c - pad + kw * dilation;
                                    if (ih < 0 || iw < 0 || ih >= size || iw >= size) continue;
                                    int ci = o / g.OutPerGroup * g.InPerGroup + i;
                                    sum += (double)w[((o * g.InPerGroup + i) * k + kh) * k + kw] * x[((n * cin + ci) * size + ih) * size + iw];
                                }
                        float got = y[((n * cout + o) * g.OutH + r) * g.OutW + c];
                        Assert.True(Math.Abs(got - sum) <= 1e-4 * (1 + Math.Abs(sum)), $"({n},{o},{r},{c}): {got} vs {sum}");
                    }
    }

    [Theory]
    [InlineData(1, 2, 2)] // spread to 5×5: the dense kernels
    [InlineData(2, 2, 2)]
    [InlineData(1, 3, 3)] // 7×7 is more than 4× the taps: direct loops
    public void DilatedConvOnTheDenseKernelsEqualsTheDirectLoops(int stride, int pad, int dilation)
    {
        var x = new Variable(TestUtil.Random(7, 3, 5, 12, 12));
        var w = new Variable(TestUtil.Random(8, 6, 5, 3, 3));
        var b = new Variable(TestUtil.Random(9, 6));
        var y = Conv2dOp.ForwardGrouped(x, w, b, stride, pad, dilation, 1).Value;
        var g = new GroupedConvGeometry(3, 5, 12, 12, 6, 3, stride, pad, dilation, 1);
        var direct = new float[y.Length];
        GroupedConvKernels.Forward(g, x.Value.Data, w.Value.Data, b.Value.Data, direct);
        Assert.Equal([3, 6, g.OutH, g.OutW], y.Shape);
        TestUtil.AssertClose(direct, y.Data, atol: 1e-4, what: "dense spread kernel vs direct loops");
    }

    [Fact]
    public void ConcatAlongChannels()
    {
        var a = P(1, 2, 3, 4, 4);
        var b = P(2, 2, 1, 4, 4);
        var c = P(3, 2, 2, 4, 4);
        AssertGrad(() => ElementwiseOps.Concat([a, b, c]), a, b, c);
        var y = ElementwiseOps.Concat([a, b]).Value;
        Assert.Equal([2, 4, 4, 4], y.Shape);
        Assert.Equal(b.Value.Data[16], y.Data[4 * 16 + 3 * 16]); // image 1, channel 3 = b's image 1, channel 0
    }

    [Fact]
    public void ConvBackwardMatchesWhenInputGradAlreadyExists()
    {
        // x feeds two convolutions: the second backward must add to, not overwrite, x's gradient.
        var x = P(1, 2, 3, 6, 6);
        var w1 = P(2, 4, 3, 3, 3);
        var w2 = P(3, 4, 3, 3, 3);
        AssertGrad(() => ElementwiseOps.Add(Conv2dOp.Forward(x, w1, null, 1, 1), Conv2dOp.Forward(x, w2, null, 1, 1)), x, w1, w2);
    }

    [Fact]
    public void Linear()
    {
        var x = P(1, 5, 7);
        var w = P(2, 3, 7);
        var b = P(3, 3);
        AssertGrad(() => LinearOp.Forward(x, w, b), x, w, b);
    }

    [Theory]
    [InlineData(true, 4)]
    [InlineData(false, 4)]
    [InlineData(true, 2)]
    [InlineData(false, 2)]
    public void BatchNorm(bool training, int rank)
    {
        var x = rank == 4 ? P(1, 4, 3, 5, 5) : P(1, 8, 5);
        var g = new Variable(TestUtil.RandomRange(2, 0.5f, 1.5f, 3 + (rank == 2 ? 2 : 0)), true);
        var b = P(3, g.Value.Length);
        var rm = TestUtil.Random(4, g.Value.Length).Data;
        var rv = TestUtil.RandomRange(5, 0.5f, 2f, g.Value.Length).Data;
        AssertGrad(() => BatchNormOp.Forward(x, g, b, (float[])rm.Clone(), (float[])rv.Clone(), training), x, g, b);
    }

    [Theory]
    [InlineData(true, false)]
    [InlineData(true, true)]
    [InlineData(false, true)]
    public void BatchNormFusedWithActivation(bool training, bool withAddend)
    {
        // Few values per channel and a small step: in training every value of a channel moves with each perturbation,
        // and none may cross a kink for the difference to count.
        var x = P(1, 2, 3, 3, 3);
        var g = new Variable(TestUtil.RandomRange(2, 0.5f, 1.5f, 3), true);
        var b = P(3, 3);
        var rm = TestUtil.Random(4, 3).Data;
        var rv = TestUtil.RandomRange(5, 0.5f, 2f, 3).Data;
        var addend = withAddend ? P(6, 2, 3, 3, 3) : null;
        var clip = new ClipActivation(1.35f); // kinks at 0 and λ, and a λ gradient (no value within a step of λ = 1.35)
        Variable[] inputs = withAddend ? [x, g, b, clip.Lambda, addend!] : [x, g, b, clip.Lambda];
        AssertGrad(1e-3, () => BatchNormOp.ForwardActivation(x, g, b, (float[])rm.Clone(), (float[])rv.Clone(), training, 0.1f, 1e-5f, addend, clip), inputs);
    }

    [Fact]
    public void Pools()
    {
        var x = P(1, 2, 3, 6, 6);
        AssertGrad(() => PoolOps.AvgPool2d(x, 2, 2), x);
        AssertGrad(() => PoolOps.AvgPool2d(x, 3, 1), x);
        AssertGrad(() => PoolOps.MaxPool2d(x, 2, 2), x);
        AssertGrad(() => PoolOps.GlobalAvgPool(x), x);
    }

    [Fact]
    public void AddFlattenDropout()
    {
        var a = P(1, 2, 3, 4, 4);
        var b = P(2, 2, 3, 4, 4);
        AssertGrad(() => ElementwiseOps.Add(a, b), a, b);
        AssertGrad(() => ElementwiseOps.Flatten(a), a);
        AssertGrad(() => ElementwiseOps.Dropout(a, 0.3f, new Random(7)), a);
    }

    [Fact]
    public void CrossEntropyWithAndWithoutSmoothing()
    {
        var z = P(1, 6, 10);
        int[] labels = [0, 3, 9, 2, 2, 7];
        AssertGrad(() => CrossEntropyOp.Forward(z, labels), z);
        AssertGrad(() => CrossEntropyOp.Forward(z, labels, 0.1f), z);
    }

    [Fact]
    public void ReluAndClipAwayFromKinks()
    {
        // Inputs kept ≥ 0.05 from 0 and from λ so the central difference never straddles a kink.
        var x = new Variable(Tensor.FromArray([-0.9f, -0.3f, 0.2f, 0.7f, 1.4f, 2.6f, 3.5f]), true);
        AssertGrad(() => new ReLU().Forward(x), x);
        var clip = new ClipActivation(2f);
        AssertGrad(() => clip.Forward(x), x, clip.Lambda);
    }

    [Fact]
    public void ConvBnReluPoolLinearNetwork()
    {
        var x = P(1, 3, 2, 8, 8);
        var net = new Sequential(new Conv2d(2, 4, 3, 1, 1, rng: new Random(1)), new BatchNorm(4), new ReLU(), new AvgPool2d(2),
            new Conv2d(4, 4, 3, 2, 1, rng: new Random(2)), new AvgPool2d(2), new Flatten(), new Linear(4, 5, rng: new Random(3)));
        // NOTE: max pooling is checked on its own (Pools): inside a network its ties act like the kinks above.
        var ps = net.Parameters().Cast<Variable>().Append(x).ToArray();
        AssertNetworkGrad(() => net.Forward(x), ps);
    }

    [Fact]
    public void ResidualBlock()
    {
        var x = P(1, 2, 4, 6, 6);
        // fc(gap(act(BN(conv(act(BN(conv(x))))) + BN(conv1×1(x))))), stride 2, 4 → 8 channels.
        var g = new SpikeSharp.Graphs.GraphBuilder(4, 6, 6);
        var r = g.Activation("a1", g.BatchNorm("bn1", g.Conv("c1", g.Input, 8, 3, 2, 1, bias: false)));
        r = g.BatchNorm("bn2", g.Conv("c2", r, 8, 3, 1, 1, bias: false));
        var sc = g.BatchNorm("bn3", g.Conv("c3", g.Input, 8, 1, 2, 0, bias: false));
        var block = new SpikeSharp.Graphs.GraphModel(g.Build(g.Linear("fc", g.GlobalAvgPool("gap", g.Activation("a2", g.AddNodes("add", r, sc))), 3)), seed: 5);
        var ps = block.Parameters().Cast<Variable>().Append(x).ToArray();
        AssertNetworkGrad(() => block.Forward(x), ps);
    }
}
