using System.Buffers;

namespace SpikeSharp.Tensors;

/// <summary>
/// Convolution forward and backward on the CPU: im2col over a group of images, one packed GEMM per group,
/// groups spread over the worker pool. Small feature maps are grouped so every GEMM has at least
/// <see cref="MinColumns"/> columns (a 2×2 map alone would waste 7/8 of the 32-wide micro-kernel).
/// Shapes: x [N,Cin,H,W], w [Cout,Cin,KH,KW], y [N,Cout,OutH,OutW].
/// </summary>
public static class Conv2dKernels
{
    private const int MinColumns = 256;

    private static int GroupSize(Conv2dGeometry g, int workers)
    {
        int byColumns = Math.Max(1, (MinColumns + g.OutPlane - 1) / g.OutPlane);
        int byWorkers = Math.Max(1, (g.N + workers - 1) / workers);
        return Math.Min(byColumns, byWorkers);
    }

    /// <summary>y = conv(x, w) + bias (bias may be null), or y += that with <paramref name="accumulate"/>. With
    /// <paramref name="skipSilentChannels"/> (inference on spikes), input channels that are zero in every image of a group are left out of the im2col matrix
    /// and of the GEMM's K dimension: an analog input only pays for the zero scan, a spiking one skips its dead channels.
    /// An <paramref name="epilogue"/> runs on each output image right after it is written (direct kernels) or after the
    /// whole output (im2col, which works on groups of images). A <paramref name="spikeAmplitude"/> &gt; 0 says every input
    /// is 0 or that value: <see cref="SpikeTableConv"/> takes the geometries it supports (callers ask
    /// <see cref="RunsOnSpikes"/> first whether it pays).</summary>
    public static void Forward(Conv2dGeometry g, float[] x, float[] w, float[]? bias, float[] y, WorkerPool? pool = null,
        bool skipSilentChannels = false, IConvEpilogue? epilogue = null, bool accumulate = false, float spikeAmplitude = 0)
    {
        pool ??= WorkerPool.Shared;
        if (accumulate && epilogue != null) throw new ArgumentException("conv2d: an epilogue works on the convolution alone, not on an accumulated output");
        if (!accumulate && spikeAmplitude > 0 && SpikeTableConv.Supports(g))
        {
            SpikeTableConv.Forward(g, x, w, bias, y, spikeAmplitude, pool, epilogue);
            return;
        }
        if (DirectConv3x3.Supports(g))
        {
            DirectConv3x3.Forward(g, x, w, bias, y, pool, skipSilentChannels, epilogue, accumulate);
            return;
        }
        if (DirectConvChannelVector.Supports(g))
        {
            DirectConvChannelVector.Forward(g, x, w, bias, y, pool, skipSilentChannels, epilogue, accumulate);
            return;
        }
        int G = GroupSize(g, pool.Count);
        int groups = (g.N + G - 1) / G;
        int inImage = g.InChannels * g.InPlane, outImage = g.OutChannels * g.OutPlane, kk = g.KH * g.KW;
        pool.For(groups, (gi, _) =>
        {
            int n0 = gi * G, count = Math.Min(G, g.N - n0), cols = count * g.OutPlane;
            int ld = Gemm.PaddedLeadingDimension(cols);
            var col = ThreadScratch.Get(0, g.ColRows * ld);
            var tmp = ThreadScratch.Get(1, g.OutChannels * ld);
            int active = g.InChannels;
            Span<int> channels = active <= 4096 ? stackalloc int[active] : new int[active];
            if (skipSilentChannels)
            {
                active = 0;
                for (int c = 0; c < g.InChannels; c++)
                    for (int i = 0; i < count; i++)
                        if (x.AsSpan((n0 + i) * inImage + c * g.InPlane, g.InPlane).IndexOfAnyExcept(0f) >= 0) { channels[active++] = c; break; }
            }
            if (active == g.InChannels)
            {
                for (int i = 0; i < count; i++)
                    Im2Col.Expand(g, x.AsSpan((n0 + i) * inImage, inImage), col, ld, i * g.OutPlane);
                Gemm.Multiply(false, false, g.OutChannels, cols, g.ColRows, w, g.ColRows, col, ld, tmp, ld);
            }
            else
            {
                // Only the active channels' rows of the column matrix and columns of the weights take part.
                int k = active * kk;
                var wsub = ThreadScratch.Get(2, Math.Max(1, g.OutChannels * k));
                for (int j = 0; j < active; j++)
                {
                    int c = channels[j];
                    for (int i = 0; i < count; i++)
                        Im2Col.ExpandChannel(g, x.AsSpan((n0 + i) * inImage + c * g.InPlane, g.InPlane), col, j * kk, ld, i * g.OutPlane);
                    for (int co = 0; co < g.OutChannels; co++)
                        w.AsSpan(co * g.ColRows + c * kk, kk).CopyTo(wsub.AsSpan(co * k + j * kk, kk));
                }
                Gemm.Multiply(false, false, g.OutChannels, cols, k, wsub, Math.Max(1, k), col, ld, tmp, ld);
            }
            for (int i = 0; i < count; i++)
                for (int co = 0; co < g.OutChannels; co++)
                {
                    var src = tmp.AsSpan(co * ld + i * g.OutPlane, g.OutPlane);
                    var dst = y.AsSpan((n0 + i) * outImage + co * g.OutPlane, g.OutPlane);
                    if (accumulate) TensorPrimitives.Add(dst, src, dst);
                    else src.CopyTo(dst);
                    if (bias != null) TensorPrimitives.Add(dst, bias[co], dst);
                }
        });
        if (epilogue != null) ConvEpilogueLoop.Apply(pool, g.N, y, outImage, epilogue);
    }

    /// <summary>Whether input x, spikes of this amplitude (0: not spikes), should run on <see cref="SpikeTableConv"/>: a
    /// geometry it supports, with enough channels firing (<see cref="SpikeTableConv.Pays"/>). <see cref="Forward"/> itself
    /// takes the table whenever it is given an amplitude and supports the geometry.</summary>
    public static bool RunsOnSpikes(Conv2dGeometry g, float[] x, float spikeAmplitude) =>
        spikeAmplitude > 0 && SpikeTableConv.Supports(g) && SpikeTableConv.Pays(g, x);

    /// <summary>gx = ∂L/∂x given gy = ∂L/∂y (gx overwritten, or added into with <paramref name="accumulate"/>). Stride-1
    /// convolutions run as a forward convolution of gy with the flipped, transposed kernel; others go through col2im.</summary>
    public static void BackwardData(Conv2dGeometry g, float[] gy, float[] w, float[] gx, WorkerPool? pool = null, bool accumulate = false)
    {
        pool ??= WorkerPool.Shared;
        if (g.StrideH == 1 && g.StrideW == 1 && g.PadH <= g.KH - 1 && g.PadW <= g.KW - 1)
        {
            var gt = new Conv2dGeometry(g.N, g.OutChannels, g.OutH, g.OutW, g.InChannels, g.KH, g.KW, 1, 1,
                g.KH - 1 - g.PadH, g.KW - 1 - g.PadW);
            if (gt.OutH == g.H && gt.OutW == g.W)
            {
                float[] wt = ArrayPool<float>.Shared.Rent(w.Length);
                try
                {
                    FlipTranspose(g, w, wt);
                    Forward(gt, gy, wt, null, gx, pool, accumulate: accumulate);
                }
                finally { ArrayPool<float>.Shared.Return(wt); }
                return;
            }
        }
        int G = GroupSize(g, pool.Count);
        int groups = (g.N + G - 1) / G;
        int inImage = g.InChannels * g.InPlane;
        pool.For(groups, (gi, _) =>
        {
            int n0 = gi * G, count = Math.Min(G, g.N - n0), cols = count * g.OutPlane;
            int ld = Gemm.PaddedLeadingDimension(cols);
            var gyMat = ThreadScratch.Get(1, g.OutChannels * ld);
            GatherOutputs(g, gy, n0, count, gyMat, ld);
            var col = ThreadScratch.Get(0, g.ColRows * ld);
            Gemm.Multiply(true, false, g.ColRows, cols, g.OutChannels, w, g.ColRows, gyMat, ld, col, ld);
            for (int i = 0; i < count; i++)
            {
                var dst = gx.AsSpan((n0 + i) * inImage, inImage);
                if (!accumulate) dst.Clear();
                Im2Col.Accumulate(g, col, ld, i * g.OutPlane, dst);
            }
        });
    }

    /// <summary>gw += ∂L/∂w and gb += ∂L/∂b (gb may be null) given gy and the forward input x.</summary>
    public static void BackwardWeight(Conv2dGeometry g, float[] gy, float[] x, float[] gw, float[]? gb, WorkerPool? pool = null)
    {
        pool ??= WorkerPool.Shared;
        if (DirectConvChannelVector.SupportsWeightGradient(g))
        {
            DirectConvChannelVector.BackwardWeight(g, gy, x, gw, gb, pool);
            return;
        }
        int G = GroupSize(g, pool.Count);
        int groups = (g.N + G - 1) / G;
        int inImage = g.InChannels * g.InPlane;
        int wLen = g.OutChannels * g.ColRows, partLen = wLen + g.OutChannels;
        // One partial sum per fixed slice of groups (not per thread), reduced in slice order: the result does not
        // depend on which thread ran which slice, so runs are bit-reproducible for a given thread count.
        int slices = Math.Min(pool.Count, groups), perSlice = (groups + slices - 1) / slices;
        float[] partials = ArrayPool<float>.Shared.Rent(partLen * slices);
        try
        {
            partials.AsSpan(0, partLen * slices).Clear();
            pool.For(slices, (slice, _) =>
            {
                var part = partials.AsSpan(slice * partLen, partLen);
                for (int gi = slice * perSlice; gi < Math.Min(groups, (slice + 1) * perSlice); gi++)
                {
                    int n0 = gi * G, count = Math.Min(G, g.N - n0), cols = count * g.OutPlane;
                    int ld = Gemm.PaddedLeadingDimension(cols);
                    var col = ThreadScratch.Get(0, g.ColRows * ld);
                    var gyMat = ThreadScratch.Get(1, g.OutChannels * ld);
                    for (int i = 0; i < count; i++)
                        Im2Col.Expand(g, x.AsSpan((n0 + i) * inImage, inImage), col, ld, i * g.OutPlane);
                    GatherOutputs(g, gy, n0, count, gyMat, ld);
                    Gemm.Multiply(false, true, g.OutChannels, g.ColRows, cols, gyMat, ld, col, ld, part, g.ColRows, accumulate: true);
                    for (int co = 0; co < g.OutChannels; co++)
                        part[wLen + co] += TensorPrimitives.Sum(gyMat.AsSpan(co * ld, cols));
                }
            });
            for (int sl = 0; sl < slices; sl++)
            {
                var part = partials.AsSpan(sl * partLen, partLen);
                TensorPrimitives.Add(gw.AsSpan(0, wLen), part[..wLen], gw.AsSpan(0, wLen));
                if (gb != null) TensorPrimitives.Add(gb.AsSpan(0, g.OutChannels), part[wLen..], gb.AsSpan(0, g.OutChannels));
            }
        }
        finally { ArrayPool<float>.Shared.Return(partials); }
    }

    /// <summary>Copies gy of images n0..n0+count into a [Cout, count·OutPlane] matrix with row length ld.</summary>
    private static void GatherOutputs(Conv2dGeometry g, float[] gy, int n0, int count, float[] dst, int ld)
    {
        int outImage = g.OutChannels * g.OutPlane;
        for (int i = 0; i < count; i++)
            for (int co = 0; co < g.OutChannels; co++)
                gy.AsSpan((n0 + i) * outImage + co * g.OutPlane, g.OutPlane).CopyTo(dst.AsSpan(co * ld + i * g.OutPlane));
    }

    /// <summary>wt[ci, co, kh, kw] = w[co, ci, KH−1−kh, KW−1−kw].</summary>
    private static void FlipTranspose(Conv2dGeometry g, float[] w, float[] wt)
    {
        int kk = g.KH * g.KW;
        for (int co = 0; co < g.OutChannels; co++)
            for (int ci = 0; ci < g.InChannels; ci++)
            {
                int src = (co * g.InChannels + ci) * kk, dst = (ci * g.OutChannels + co) * kk;
                for (int k = 0; k < kk; k++) wt[dst + k] = w[src + kk - 1 - k];
            }
    }
}
