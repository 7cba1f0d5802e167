using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace SpikeSharp.Tensors;

/// <summary>Shapes of a grouped, dilated 2-D convolution: input [N, Cin, H, W], weight [Cout, Cin/G, K, K], output
/// [N, Cout, OutH, OutW]; output channel o reads input channels of group o / (Cout/G). Depthwise: G = Cin.</summary>
public sealed record GroupedConvGeometry(int N, int InChannels, int H, int W, int OutChannels, int Kernel, int Stride, int Padding, int Dilation, int Groups)
{
    public int InPerGroup => InChannels / Groups;
    public int OutPerGroup => OutChannels / Groups;
    public int OutH => (H + 2 * Padding - Dilation * (Kernel - 1) - 1) / Stride + 1;
    public int OutW => (W + 2 * Padding - Dilation * (Kernel - 1) - 1) / Stride + 1;

    /// <summary>Multiply-accumulates per output value.</summary>
    public long MacsPerOutput => (long)InPerGroup * Kernel * Kernel;

    public void Validate()
    {
        if (N < 0 || InChannels <= 0 || H <= 0 || W <= 0 || OutChannels <= 0 || Kernel <= 0 || Stride <= 0 || Padding < 0 || Dilation <= 0 || Groups <= 0)
            throw new ArgumentException($"invalid grouped conv: input [{N},{InChannels},{H},{W}], {OutChannels} outputs, kernel {Kernel}, stride {Stride}, padding {Padding}, dilation {Dilation}, groups {Groups}");
        if (InChannels % Groups != 0 || OutChannels % Groups != 0)
            throw new ArgumentException($"conv groups {Groups} must divide the input ({InChannels}) and output ({OutChannels}) channels");
        if (OutH <= 0 || OutW <= 0)
            throw new ArgumentException($"conv kernel {Kernel} with dilation {Dilation} is larger than the padded input {H + 2 * Padding}x{W + 2 * Padding}");
    }
}

/// <summary>
/// Direct loops for the convolutions the GEMM kernels do not take: groups &gt; 1 (depthwise, grouped) and dilation
/// &gt; 1. Each output (input, weight) plane is owned by one worker, so no two workers write the same value. Correct
/// first: these are checked against finite differences and PyTorch; a network's ordinary convolutions still run on
/// <see cref="Conv2dKernels"/>.
/// </summary>
public static class GroupedConvKernels
{
    /// <summary>The output columns [c0, c1) whose input column for kernel column <paramref name="kw"/> lies inside the
    /// image: the rows of one tap then run as contiguous spans (vectorized for stride 1).</summary>
    private static (int C0, int C1) Columns(GroupedConvGeometry g, int kw, int ow)
    {
        int shift = kw * g.Dilation - g.Padding; // input column = c·stride + shift
        int c0 = shift >= 0 ? 0 : (-shift + g.Stride - 1) / g.Stride;
        int c1 = Math.Min(ow, (g.W - 1 - shift) / g.Stride + 1);
        if (g.W - 1 - shift < 0) c1 = 0;
        return (c0, Math.Max(c0, c1));
    }

    /// <summary>y = conv(x, w) + b.</summary>
    public static void Forward(GroupedConvGeometry g, float[] x, float[] w, float[]? b, float[] y)
    {
        if (g.Stride == 1 && Vector512.IsHardwareAccelerated)
        {
            ForwardStride1(g, x, w, b, y);
            return;
        }
        int oh = g.OutH, ow = g.OutW, k = g.Kernel;
        WorkerPool.Shared.For(g.N * g.OutChannels, (item, _) =>
        {
            int n = item / g.OutChannels, o = item % g.OutChannels, group = o / g.OutPerGroup;
            var plane = y.AsSpan(item * oh * ow, oh * ow);
            plane.Fill(b?[o] ?? 0f);
            for (int i = 0; i < g.InPerGroup; i++)
            {
                var input = x.AsSpan(((n * g.InChannels) + group * g.InPerGroup + i) * g.H * g.W, g.H * g.W);
                for (int kh = 0; kh < k; kh++)
                    for (int kw = 0; kw < k; kw++)
                    {
                        float wv = w[((o * g.InPerGroup + i) * k + kh) * k + kw];
                        var (c0, c1) = Columns(g, kw, ow);
                        for (int r = 0; r < oh; r++)
                        {
                            int ih = r * g.Stride - g.Padding + kh * g.Dilation;
                            if ((uint)ih >= (uint)g.H || c0 >= c1) continue;
                            int iw0 = c0 * g.Stride - g.Padding + kw * g.Dilation;
                            var outRow = plane.Slice(r * ow + c0, c1 - c0);
                            if (g.Stride == 1) TensorPrimitives.MultiplyAdd(input.Slice(ih * g.W + iw0, c1 - c0), wv, outRow, outRow);
                            else
                                for (int c = 0; c < outRow.Length; c++) outRow[c] += wv * input[ih * g.W + iw0 + c * g.Stride];
                        }
                    }
            }
        });
    }

    /// <summary>Stride 1, one output plane per work item: each input plane is copied once into a zero-padded scratch plane
    /// (16 columns of slack), then every output row is 16-wide vectors that add w·x over the taps without bounds checks.
    /// Per output value the sum runs in the same order as the row-by-row loop (input channel, then tap), with the same
    /// unfused multiply then add, so both give the same bits. (The row loop called a span kernel per tap and row: on
    /// 7–28-wide rows the calls, not the arithmetic, took the time.)</summary>
    private static void ForwardStride1(GroupedConvGeometry g, float[] x, float[] w, float[]? b, float[] y)
    {
        int oh = g.OutH, ow = g.OutW, k = g.Kernel, d = g.Dilation, p = g.Padding;
        int hp = g.H + 2 * p, wp = g.W + 2 * p + 16, rowStride = (ow + 15) / 16 * 16;
        WorkerPool.Shared.For(g.N * g.OutChannels, (item, _) =>
        {
            int n = item / g.OutChannels, o = item % g.OutChannels, group = o / g.OutPerGroup;
            var padded = ThreadScratch.Get(0, hp * wp);
            var acc = ThreadScratch.Get(1, oh * rowStride);
            acc.AsSpan(0, oh * rowStride).Fill(b?[o] ?? 0f);
            padded.AsSpan(0, hp * wp).Clear();
            for (int i = 0; i < g.InPerGroup; i++)
            {
                var input = x.AsSpan(((n * g.InChannels) + group * g.InPerGroup + i) * g.H * g.W, g.H * g.W);
                for (int r = 0; r < g.H; r++) input.Slice(r * g.W, g.W).CopyTo(padded.AsSpan((r + p) * wp + p, g.W));
                var taps = w.AsSpan((o * g.InPerGroup + i) * k * k, k * k);
                ref float pr = ref MemoryMarshal.GetArrayDataReference(padded);
                ref float ar = ref MemoryMarshal.GetArrayDataReference(acc);
                for (int r = 0; r < oh; r++)
                    for (int c0 = 0; c0 < ow; c0 += 16)
                    {
                        nuint at = (nuint)(r * rowStride + c0);
                        var sum = Vector512.LoadUnsafe(ref ar, at);
                        for (int kh = 0; kh < k; kh++)
                        {
                            nuint row = (nuint)((r + kh * d) * wp + c0);
                            for (int kw = 0; kw < k; kw++)
                                sum += Vector512.LoadUnsafe(ref pr, row + (nuint)(kw * d)) * taps[kh * k + kw];
                        }
                        sum.StoreUnsafe(ref ar, at);
                    }
            }
            var plane = y.AsSpan(item * oh * ow, oh * ow);
            for (int r = 0; r < oh; r++) acc.AsSpan(r * rowStride, ow).CopyTo(plane.Slice(r * ow, ow));
        });
    }

    /// <summary>∂x from ∂y: written, or added to <paramref name="gx"/> when <paramref name="accumulate"/>.</summary>
    public static void BackwardData(GroupedConvGeometry g, float[] gy, float[] w, float[] gx, bool accumulate)
    {
        int oh = g.OutH, ow = g.OutW, k = g.Kernel;
        WorkerPool.Shared.For(g.N * g.InChannels, (item, _) =>
        {
            int n = item / g.InChannels, c = item % g.InChannels, group = c / g.InPerGroup, i = c % g.InPerGroup;
            var plane = gx.AsSpan(item * g.H * g.W, g.H * g.W);
            if (!accumulate) plane.Clear();
            for (int oo = 0; oo < g.OutPerGroup; oo++)
            {
                int o = group * g.OutPerGroup + oo;
                var grad = gy.AsSpan((n * g.OutChannels + o) * oh * ow, oh * ow);
                for (int kh = 0; kh < k; kh++)
                    for (int kw = 0; kw < k; kw++)
                    {
                        float wv = w[((o * g.InPerGroup + i) * k + kh) * k + kw];
                        var (c0, c1) = Columns(g, kw, ow);
                        for (int r = 0; r < oh; r++)
                        {
                            int ih = r * g.Stride - g.Padding + kh * g.Dilation;
                            if ((uint)ih >= (uint)g.H || c0 >= c1) continue;
                            int iw0 = c0 * g.Stride - g.Padding + kw * g.Dilation;
                            var gradRow = grad.Slice(r * ow + c0, c1 - c0);
                            if (g.Stride == 1)
                            {
                                var inRow = plane.Slice(ih * g.W + iw0, c1 - c0);
                                TensorPrimitives.MultiplyAdd(gradRow, wv, inRow, inRow);
                            }
                            else
                                for (int col = 0; col < gradRow.Length; col++) plane[ih * g.W + iw0 + col * g.Stride] += wv * gradRow[col];
                        }
                    }
            }
        });
    }

    /// <summary>∂w (and ∂b) from ∂y, added to <paramref name="gw"/> and <paramref name="gb"/>.</summary>
    public static void BackwardWeight(GroupedConvGeometry g, float[] gy, float[] x, float[] gw, float[]? gb)
    {
        int oh = g.OutH, ow = g.OutW, k = g.Kernel;
        WorkerPool.Shared.For(g.OutChannels, (o, _) =>
        {
            int group = o / g.OutPerGroup;
            for (int n = 0; n < g.N; n++)
            {
                var grad = gy.AsSpan((n * g.OutChannels + o) * oh * ow, oh * ow);
                if (gb != null) gb[o] += TensorPrimitives.Sum(grad);
                for (int i = 0; i < g.InPerGroup; i++)
                {
                    var input = x.AsSpan(((n * g.InChannels) + group * g.InPerGroup + i) * g.H * g.W, g.H * g.W);
                    for (int kh = 0; kh < k; kh++)
                        for (int kw = 0; kw < k; kw++)
                        {
                            double sum = 0;
                            var (c0, c1) = Columns(g, kw, ow);
                            for (int r = 0; r < oh; r++)
                            {
                                int ih = r * g.Stride - g.Padding + kh * g.Dilation;
                                if ((uint)ih >= (uint)g.H || c0 >= c1) continue;
                                int iw0 = c0 * g.Stride - g.Padding + kw * g.Dilation;
                                var gradRow = grad.Slice(r * ow + c0, c1 - c0);
                                if (g.Stride == 1) sum += TensorPrimitives.Dot(gradRow, input.Slice(ih * g.W + iw0, c1 - c0));
                                else
                                    for (int col = 0; col < gradRow.Length; col++) sum += gradRow[col] * input[ih * g.W + iw0 + col * g.Stride];
                            }
                            gw[((o * g.InPerGroup + i) * k + kh) * k + kw] += (float)sum;
                        }
                }
            }
        });
    }
}
