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
}
