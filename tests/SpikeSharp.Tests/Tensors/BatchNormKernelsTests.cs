using SpikeSharp.Tensors;
using Xunit;

namespace SpikeSharp.Tests.Tensors;

public class BatchNormKernelsTests
{
    /// <summary>Batch statistics stay accurate when a channel's mean is far larger than its spread, and when the value the
    /// one-pass sums are shifted by is an outlier; plane sizes with and without a vector tail.</summary>
    [Theory]
    [InlineData(3, 64)]
    [InlineData(5, 33)]
    [InlineData(4, 7)]
    [InlineData(9, 1)]
    public void StatisticsMatchADoublePrecisionReference(int n, int s)
    {
        const int c = 3;
        var rng = new Random(7);
        var x = new float[n * c * s];
        float[] centres = [0f, 1e4f, -300f], spreads = [1f, 0.05f, 2f];
        for (int i = 0; i < n; i++)
            for (int ch = 0; ch < c; ch++)
                for (int k = 0; k < s; k++)
                    x[(i * c + ch) * s + k] = centres[ch] + spreads[ch] * (float)(rng.NextDouble() * 2 - 1);
        x[2 * s] = centres[2] + 40 * spreads[2]; // channel 2's first value, the shift, is an outlier
        float[] mean = new float[c], variance = new float[c];
        BatchNormKernels.Statistics(x, n, c, s, mean, variance);
        for (int ch = 0; ch < c; ch++)
        {
            var values = Enumerable.Range(0, n).SelectMany(i => x.Skip((i * c + ch) * s).Take(s)).Select(v => (double)v).ToArray();
            double m = values.Average(), v = values.Select(a => (a - m) * (a - m)).Average();
            Assert.Equal(m, mean[ch], Math.Abs(m) * 1e-6 + 1e-6);
            Assert.Equal(v, variance[ch], v * 1e-3 + 1e-9);
        }
    }

    [Theory]
    [InlineData(2, 48, false)]
    [InlineData(3, 21, true)]
    public void GradientPassesMatchTheirDefinitions(int n, int s, bool accumulate)
    {
        const int c = 2;
        var x = TestUtil.Random(1, n * c * s).Data;
        var gy = TestUtil.Random(2, n * c * s).Data;
        var gx0 = TestUtil.Random(3, n * c * s).Data;
        float[] mean = [0.1f, -0.2f], invStd = [2f, 0.5f], a = [1.5f, -1f], b = [0.25f, 2f], d = [-0.5f, 0.75f];
        float[] sumGy = new float[c], sumGyXhat = new float[c];
        BatchNormKernels.GradSums(x, gy, n, c, s, mean, invStd, sumGy, sumGyXhat);
        var gx = (float[])gx0.Clone();
        BatchNormKernels.AffineGrad(gy, x, n, c, s, a, b, d, gx, accumulate);
        for (int ch = 0; ch < c; ch++)
        {
            double sg = 0, sgx = 0;
            for (int i = 0; i < n; i++)
                for (int k = 0; k < s; k++)
                {
                    int o = (i * c + ch) * s + k;
                    sg += gy[o];
                    sgx += gy[o] * (x[o] - mean[ch]) * invStd[ch];
                    double expected = (accumulate ? gx0[o] : 0) + a[ch] * gy[o] + b[ch] * x[o] + d[ch];
                    Assert.Equal(expected, gx[o], 1e-5);
                }
            Assert.Equal(sg, sumGy[ch], 1e-4);
            Assert.Equal(sgx, sumGyXhat[ch], 1e-4);
        }
    }
}
