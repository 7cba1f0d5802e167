using SpikeSharp.Tensors;
using Xunit;

namespace SpikeSharp.Tests.Tensors;

public class SpikeTableConvTests
{
    /// <summary>Spikes x ∈ {0, a} at the given rate, weights and bias from N(0, 1).</summary>
    private static (Conv2dGeometry G, float[] X, float[] W, float[] B) Case(int n, int cin, int size, int cout, int k, int stride, int pad,
        float amplitude, double rate, int seed)
    {
        var g = new Conv2dGeometry(n, cin, size, size, cout, k, k, stride, stride, pad, pad);
        var rng = new Random(seed);
        var x = new float[n * cin * size * size];
        for (int i = 0; i < x.Length; i++) x[i] = rng.NextDouble() < rate ? amplitude : 0f;
        return (g, x, TestUtil.Random(seed + 1, cout * cin * k * k).Data, TestUtil.Random(seed + 2, cout).Data);
    }

    /// <summary>Every geometry ResNet-20 gives it (3×3 at 16, 32, 64 channels, stride 2, 1×1 stride-2 shortcuts), 8-wide
    /// maps (two rows per tile), a channel count that leaves a short last group, a 5×5 kernel, input rows that are not a
    /// multiple of 8, and firing rates from silent to saturated; against the definition summed in double, to float32
    /// rounding.</summary>
    [Theory]
    [InlineData(3, 16, 32, 16, 3, 1, 1, 1f, 0.18)]
    [InlineData(2, 32, 16, 32, 3, 1, 1, 0.375f, 0.3)]
    [InlineData(2, 64, 8, 64, 3, 1, 1, 2.5f, 0.1)]
    [InlineData(2, 16, 32, 32, 3, 2, 1, 1f, 0.5)]
    [InlineData(2, 32, 16, 64, 1, 2, 0, 1f, 0.2)]
    [InlineData(2, 20, 16, 48, 3, 1, 1, 0.5f, 0.25)]
    [InlineData(2, 3, 8, 16, 5, 1, 2, 1f, 0.4)]
    [InlineData(2, 16, 15, 16, 3, 2, 1, 1f, 0.3)] // 15-wide input rows: the packer's scalar tail
    [InlineData(2, 16, 16, 16, 3, 1, 1, 1f, 0.0)]
    [InlineData(2, 16, 16, 16, 3, 1, 1, 1f, 1.0)]
    public void MatchesTheDefinition(int n, int cin, int size, int cout, int k, int stride, int pad, float amplitude, double rate)
    {
        var (g, x, w, b) = Case(n, cin, size, cout, k, stride, pad, amplitude, rate, seed: cin * 31 + size);
        Assert.True(SpikeTableConv.Supports(g), $"{g} should run on the table");
        var y = new float[n * cout * g.OutPlane];
        SpikeTableConv.Forward(g, x, w, b, y, amplitude, WorkerPool.Shared);
        var expected = DirectConv3x3Tests.Naive(g, x, w, b); // summed in double, rounded once
        double scale = amplitude * Math.Sqrt(cin * k * k);
        for (int i = 0; i < y.Length; i++)
            Assert.True(Math.Abs(y[i] - expected[i]) <= 2e-6 * scale + 1e-6, $"{g}: y[{i}] = {y[i]}, reference {expected[i]}");
    }

    /// <summary>Conv2dKernels routes spikes of a given amplitude to the table (and geometries it does not support to the
    /// dense kernels), with the epilogue seeing every output image once, in step order per sequence, as the dense path does.</summary>
    [Theory]
    [InlineData(16, 16, 16)] // table
    [InlineData(16, 7, 16)]  // 7-wide rows: dense
    [InlineData(8, 16, 16)]  // 8 output channels: dense
    public void Conv2dKernelsTakesSpikesToTheTableWhereItFitsAndRunsTheEpilogueAsTheDenseKernelsDo(int cout, int size, int cin)
    {
        var (g, x, w, b) = Case(6, cin, size, cout, 3, 1, 1, 0.5f, 0.2, seed: 5);
        Assert.Equal(cout % 16 == 0 && size % 8 == 0, Conv2dKernels.RunsOnSpikes(g, x, 0.5f));
        Assert.False(Conv2dKernels.RunsOnSpikes(g, x, 0f));
        var dense = new float[6 * cout * g.OutPlane];
        var spikes = new float[dense.Length];
        var denseEpilogue = new Doubling(steps: 3);
        var spikeEpilogue = new Doubling(steps: 3);
        Conv2dKernels.Forward(g, x, w, b, dense, epilogue: denseEpilogue);
        Conv2dKernels.Forward(g, x, w, b, spikes, epilogue: spikeEpilogue, spikeAmplitude: 0.5f);
        TestUtil.AssertClose(dense, spikes, 1e-5, 1e-5, "spikes against dense, epilogue applied");
        Assert.Equal(denseEpilogue.Rows.Order(), spikeEpilogue.Rows.Order());
        Assert.Equal(Enumerable.Range(0, 6), spikeEpilogue.Rows.Order());
        foreach (var rows in new[] { spikeEpilogue.Rows, denseEpilogue.Rows })
            for (int item = 0; item < 2; item++) // rows of one sequence (row = t·2 + item) arrive in step order
                Assert.Equal([item, 2 + item, 4 + item], rows.Where(r => r % 2 == item).ToArray());
    }

    private sealed class Doubling(int steps) : IConvEpilogue
    {
        public readonly System.Collections.Concurrent.ConcurrentQueue<int> Queue = new();
        public int[] Rows => Queue.ToArray();
        public int Steps => steps;
        public string Name => "double";

        public void Apply(Span<float> image, int row, int worker)
        {
            Queue.Enqueue(row);
            foreach (ref float v in image) v *= 2;
        }
    }

    /// <summary>A value other than 0 and the amplitude is found wherever it is: in the vector part of a row, or in the
    /// packer's scalar tail (15-wide rows).</summary>
    [Theory]
    [InlineData(16, 1)]
    [InlineData(15, 2)]
    public void AnInputThatIsNotSpikesOfTheAmplitudeIsRefused(int size, int stride)
    {
        var (g, x, w, b) = Case(2, 16, size, 16, 3, stride, 1, 1f, 0.2, seed: 9);
        var y = new float[2 * 16 * g.OutPlane];
        x[size * size + size - 1] = 0.5f; // image 0, channel 1, the end of row 0
        var e = Assert.Throws<InvalidOperationException>(() => SpikeTableConv.Forward(g, x, w, b, y, 1f, WorkerPool.Shared));
        Assert.Contains("input image 0", e.Message);
        Assert.Contains("amplitude 1", e.Message);
        x[size * size + size - 1] = 0f;
        x[x.Length - 1] = 2f; // a graded spike, the last value of image 1
        e = Assert.Throws<InvalidOperationException>(() => SpikeTableConv.Forward(g, x, w, b, y, 1f, WorkerPool.Shared));
        Assert.Contains("input image 1", e.Message);
        Assert.Throws<ArgumentException>(() => SpikeTableConv.Forward(g, x, w, b, y, 0f, WorkerPool.Shared));
    }

    /// <summary>The dense kernels skip silent channels: 16→16 (b = 8) takes the table from 9 of 16 channels firing
    /// (dense 9·9 = 81 FMAs per pixel against 2·18 + 43 = 79 for the table).</summary>
    [Theory]
    [InlineData(16, true)]
    [InlineData(9, true)]
    [InlineData(8, false)]
    [InlineData(0, false)]
    public void TheTableIsTakenWhereEnoughChannelsFire(int firing, bool table)
    {
        var (g, x, _, _) = Case(40, 16, 16, 16, 3, 1, 1, 1f, 0.3, seed: 11);
        SilenceChannelsFrom(g, x, firing);
        Assert.Equal(8, SpikeTableConv.GroupBits(g));
        Assert.Equal(table, SpikeTableConv.Pays(g, x));
        Assert.Equal(table, Conv2dKernels.RunsOnSpikes(g, x, 1f));
    }

    /// <summary>1×1 convolutions have no direct kernel (im2col + GEMM, ≈ 50 + 3.4 per firing channel): 16 input
    /// channels take the table (2·2 + 43 = 47) with 16 or 4 of them firing (104, 63.6).</summary>
    [Theory]
    [InlineData(16, true)]
    [InlineData(4, true)]
    public void OneByOneConvolutionsTakeTheTable(int firing, bool table)
    {
        var (g, x, _, _) = Case(40, 16, 16, 32, 1, 2, 0, 1f, 0.3, seed: 12);
        SilenceChannelsFrom(g, x, firing);
        Assert.Equal(table, Conv2dKernels.RunsOnSpikes(g, x, 1f));
    }

    /// <summary>Clears input channels [first, C) of every image: they never fire.</summary>
    private static void SilenceChannelsFrom(Conv2dGeometry g, float[] x, int first)
    {
        for (int n = 0; n < g.N; n++)
            for (int c = first; c < g.InChannels; c++) x.AsSpan((n * g.InChannels + c) * g.InPlane, g.InPlane).Clear();
    }

    /// <summary>The widest group whose table for one 16-channel output block stays within 512 KiB.</summary>
    [Theory]
    [InlineData(16, 3, 8)]
    [InlineData(32, 3, 7)]
    [InlineData(64, 3, 6)]
    [InlineData(64, 1, 8)]
    [InlineData(512, 3, 4)]
    public void GroupsAreAsWideAsTheTableBudgetAllows(int cin, int k, int bits)
    {
        var g = new Conv2dGeometry(1, cin, 8, 8, 16, k, k, 1, 1, k / 2, k / 2);
        Assert.Equal(bits, SpikeTableConv.GroupBits(g));
    }
}
