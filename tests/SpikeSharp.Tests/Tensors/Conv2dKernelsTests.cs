using SpikeSharp.Tensors;
using Xunit;

namespace SpikeSharp.Tests.Tensors;

public class Conv2dKernelsTests
{
    [Theory]
    [InlineData(6, 12, 4, 1)]
    [InlineData(9, 40, 2, 2)]
    [InlineData(3, 5, 8, 1)]
    public void SkippingSilentChannelsMatchesTheDenseConvolution(int n, int channels, int size, int stride)
    {
        var g = new Conv2dGeometry(n, channels, size, size, 7, 3, 3, stride, stride, 1, 1);
        var x = TestUtil.Random(1, n * channels * size * size).Data;
        // Channels 0, 3, 4 … silent in every image; channel 1 silent in all but the last image; binary like spikes.
        for (int i = 0; i < n; i++)
            for (int c = 0; c < channels; c++)
                for (int p = 0; p < size * size; p++)
                {
                    int idx = (i * channels + c) * size * size + p;
                    bool silent = c % 3 == 0 || c == 4 || (c == 1 && i < n - 1);
                    x[idx] = silent ? 0f : x[idx] > 0.3f ? 1.5f : 0f;
                }
        var w = TestUtil.Random(2, 7 * channels * 9).Data;
        var b = TestUtil.Random(3, 7).Data;
        var dense = new float[n * 7 * g.OutPlane];
        var sparse = new float[dense.Length];
        Conv2dKernels.Forward(g, x, w, b, dense);
        Conv2dKernels.Forward(g, x, w, b, sparse, skipSilentChannels: true);
        TestUtil.AssertClose(dense, sparse, 1e-5, 1e-5, "silent-channel skipping");
        Array.Clear(x);
        Conv2dKernels.Forward(g, x, w, b, sparse, skipSilentChannels: true);
        for (int i = 0; i < sparse.Length; i++) Assert.Equal(b[i / g.OutPlane % 7], sparse[i]);
    }

    /// <summary>Accumulating into y gives y₀ + the overwriting result, on every path: the direct 3×3 kernel (32 wide), the
    /// channel-vector kernel (8 wide, 32 channels), im2col (5 wide), and col2im for the strided backward.</summary>
    [Theory]
    [InlineData(2, 16, 32, 16, 1)]
    [InlineData(3, 32, 8, 32, 1)]
    [InlineData(2, 6, 5, 7, 1)]
    [InlineData(2, 8, 9, 16, 2)]
    public void AccumulateAddsToTheOutput(int n, int cin, int size, int cout, int stride)
    {
        var g = new Conv2dGeometry(n, cin, size, size, cout, 3, 3, stride, stride, 1, 1);
        var x = TestUtil.Random(1, n * cin * size * size).Data;
        var w = TestUtil.Random(2, cout * cin * 9).Data;
        var b = TestUtil.Random(3, cout).Data;
        var y0 = TestUtil.Random(4, n * cout * g.OutPlane).Data;
        var fresh = new float[y0.Length];
        var sum = (float[])y0.Clone();
        Conv2dKernels.Forward(g, x, w, b, fresh);
        Conv2dKernels.Forward(g, x, w, b, sum, accumulate: true);
        TestUtil.AssertClose(y0.Zip(fresh, (a, c) => a + c).ToArray(), sum, 1e-5, 1e-5, "forward accumulate");

        var gx0 = TestUtil.Random(5, x.Length).Data;
        var gxFresh = new float[x.Length];
        var gxSum = (float[])gx0.Clone();
        Conv2dKernels.BackwardData(g, y0, w, gxFresh);
        Conv2dKernels.BackwardData(g, y0, w, gxSum, accumulate: true);
        TestUtil.AssertClose(gx0.Zip(gxFresh, (a, c) => a + c).ToArray(), gxSum, 1e-5, 1e-5, "backward-data accumulate");
    }

    /// <summary>The im2col/col2im paths at stride 2 (8 output channels keep the direct kernels out), whose rows are gathered
    /// and scattered 16 at a time: forward, backward-data and weight gradient against their definitions.</summary>
    [Theory]
    [InlineData(3, 1, 32)] // 16 outputs per row: whole vectors
    [InlineData(3, 1, 37)] // 19: vectors and a tail
    [InlineData(1, 0, 34)] // 1×1 shortcut, 17
    public void StridedColumnPathsMatchTheDefinition(int k, int pad, int size)
    {
        var g = new Conv2dGeometry(2, 5, size, size, 8, k, k, 2, 2, pad, pad);
        var x = TestUtil.Random(1, g.N * g.InChannels * g.InPlane).Data;
        var w = TestUtil.Random(2, g.OutChannels * g.ColRows).Data;
        var gy = TestUtil.Random(3, g.N * g.OutChannels * g.OutPlane).Data;
        double[] gx = new double[x.Length], gw = new double[w.Length];
        for (int n = 0; n < g.N; n++)
            for (int co = 0; co < g.OutChannels; co++)
                for (int p = 0; p < g.OutPlane; p++)
                {
                    double gyv = gy[(n * g.OutChannels + co) * g.OutPlane + p];
                    int oh = p / g.OutW, ow = p % g.OutW;
                    for (int ci = 0; ci < g.InChannels; ci++)
                        for (int kh = 0; kh < k; kh++)
                            for (int kw = 0; kw < k; kw++)
                            {
                                int ih = oh * 2 - pad + kh, iw = ow * 2 - pad + kw;
                                if ((uint)ih >= (uint)g.H || (uint)iw >= (uint)g.W) continue;
                                int xi = ((n * g.InChannels + ci) * g.H + ih) * g.W + iw, wi = ((co * g.InChannels + ci) * k + kh) * k + kw;
                                gx[xi] += gyv * w[wi];
                                gw[wi] += gyv * x[xi];
                            }
                }
        var y = new float[gy.Length];
        Conv2dKernels.Forward(g, x, w, null, y);
        TestUtil.AssertClose(DirectConv3x3Tests.Naive(g, x, w, null), y, 1e-4, 1e-4, "forward");
        var gxOut = new float[x.Length];
        Conv2dKernels.BackwardData(g, gy, w, gxOut);
        TestUtil.AssertClose(gx.Select(v => (float)v).ToArray(), gxOut, 1e-4, 1e-4, "backward-data");
        var gwOut = new float[w.Length];
        Conv2dKernels.BackwardWeight(g, gy, x, gwOut, null);
        TestUtil.AssertClose(gw.Select(v => (float)v).ToArray(), gwOut, 1e-4, 1e-4, "weight gradient");
    }
}

public class DirectConv3x3Tests
{
    /// <summary>The convolution by its definition, accumulated in double.</summary>
    internal static float[] Naive(Conv2dGeometry g, float[] x, float[] w, float[]? b)
    {
        var y = new float[g.N * g.OutChannels * g.OutPlane];
        for (int n = 0; n < g.N; n++)
            for (int co = 0; co < g.OutChannels; co++)
                for (int oh = 0; oh < g.OutH; oh++)
                    for (int ow = 0; ow < g.OutW; ow++)
                    {
                        double s = b?[co] ?? 0;
                        for (int ci = 0; ci < g.InChannels; ci++)
                            for (int kh = 0; kh < g.KH; kh++)
                                for (int kw = 0; kw < g.KW; kw++)
                                {
                                    int ih = oh * g.StrideH - g.PadH + kh, iw = ow * g.StrideW - g.PadW + kw;
                                    if ((uint)ih < (uint)g.H && (uint)iw < (uint)g.W)
                                        s += (double)w[((co * g.InChannels + ci) * g.KH + kh) * g.KW + kw] * x[((n * g.InChannels + ci) * g.H + ih) * g.W + iw];
                                }
                        y[((n * g.OutChannels + co) * g.OutH + oh) * g.OutW + ow] = (float)s;
                    }
        return y;
    }

    [Theory]
    [InlineData(3, 16, 32, 32, false)]
    [InlineData(2, 5, 8, 16, true)]
    [InlineData(1, 24, 24, 16, true)]
    [InlineData(2, 3, 16, 32, true)]
    public void MatchesTheNaiveConvolution(int n, int cin, int cout, int size, bool bias)
    {
        var g = new Conv2dGeometry(n, cin, size, size, cout, 3, 3, 1, 1, 1, 1);
        Assert.True(DirectConv3x3.Supports(g) || !System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated);
        var x = TestUtil.Random(1, n * cin * size * size).Data;
        for (int i = 0; i < size * size; i++) x[i] = 0f; // image 0, channel 0 silent: exercises channel skipping
        var w = TestUtil.Random(2, cout * cin * 9).Data;
        var b = bias ? TestUtil.Random(3, cout).Data : null;
        var expected = Naive(g, x, w, b);
        foreach (bool skip in new[] { false, true })
        {
            var y = new float[expected.Length];
            Conv2dKernels.Forward(g, x, w, b, y, skipSilentChannels: skip);
            TestUtil.AssertClose(expected, y, 1e-4, 1e-4, $"direct conv skip={skip}");
        }
    }

    [Theory]
    [InlineData(3, 5, 8, 16, 1)]   // im2col
    [InlineData(2, 4, 16, 32, 1)]  // channel-vector kernel from here on
    [InlineData(3, 5, 32, 8, 1)]   // odd input channels
    [InlineData(2, 3, 16, 16, 2)]  // stride 2
    public void WeightGradientMatchesTheNaiveSum(int n, int cin, int cout, int size, int stride)
    {
        var g = new Conv2dGeometry(n, cin, size, size, cout, 3, 3, stride, stride, 1, 1);
        int outSize = g.OutH;
        var x = TestUtil.Random(1, n * cin * size * size).Data;
        var gy = TestUtil.Random(2, n * cout * outSize * outSize).Data;
        var expected = new double[cout * cin * 9];
        var expectedBias = new double[cout];
        for (int i = 0; i < n; i++)
            for (int co = 0; co < cout; co++)
                for (int oh = 0; oh < outSize; oh++)
                    for (int ow = 0; ow < outSize; ow++)
                    {
                        double go = gy[((i * cout + co) * outSize + oh) * outSize + ow];
                        expectedBias[co] += go;
                        for (int ci = 0; ci < cin; ci++)
                            for (int kh = 0; kh < 3; kh++)
                                for (int kw = 0; kw < 3; kw++)
                                {
                                    int ih = oh * stride - 1 + kh, iw = ow * stride - 1 + kw;
                                    if ((uint)ih < (uint)size && (uint)iw < (uint)size)
                                        expected[((co * cin + ci) * 3 + kh) * 3 + kw] += go * x[((i * cin + ci) * size + ih) * size + iw];
                                }
                    }
        var gw = Enumerable.Repeat(0.5f, expected.Length).ToArray();
        var gb = Enumerable.Repeat(0.25f, cout).ToArray();
        Conv2dKernels.BackwardWeight(g, gy, x, gw, gb);
        TestUtil.AssertClose(expected.Select(v => (float)v + 0.5f).ToArray(), gw, 1e-3, 1e-4, "direct weight gradient (accumulated)");
        TestUtil.AssertClose(expectedBias.Select(v => (float)v + 0.25f).ToArray(), gb, 1e-3, 1e-4, "bias gradient");
    }
}

public class DirectConvChannelVectorTests
{
    [Theory]
    [InlineData(2, 5, 32, 8, 3, 1, 1)]    // ResNet-20 stage 3
    [InlineData(3, 16, 64, 16, 3, 2, 1)]  // stride-2 block entry
    [InlineData(1, 3, 32, 32, 5, 1, 2)]   // 5×5 kernel
    public void MatchesTheNaiveConvolution(int n, int cin, int cout, int size, int kernel, int stride, int pad)
    {
        var g = new Conv2dGeometry(n, cin, size, size, cout, kernel, kernel, stride, stride, pad, pad);
        Assert.True(DirectConvChannelVector.Supports(g) || !System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated);
        var x = TestUtil.Random(1, n * cin * size * size).Data;
        for (int i = 0; i < size * size; i++) x[i] = 0f; // image 0, channel 0 silent: exercises channel skipping
        var w = TestUtil.Random(2, cout * cin * kernel * kernel).Data;
        var b = TestUtil.Random(3, cout).Data;
        var expected = DirectConv3x3Tests.Naive(g, x, w, b);
        foreach (bool skip in new[] { false, true })
        {
            var y = new float[expected.Length];
            Conv2dKernels.Forward(g, x, w, b, y, skipSilentChannels: skip);
            TestUtil.AssertClose(expected, y, 1e-4, 1e-4, $"channel-vector conv skip={skip}");
        }
    }
}
