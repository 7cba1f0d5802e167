using System.Buffers;
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace SpikeSharp.Tensors;

/// <summary>
/// Direct convolution for small feature maps and strided or 1×1 kernels, with output channels along the vector: a
/// register tile of 32 output channels × 8 output pixels of one row accumulates, for every (input channel, tap), a
/// broadcast input value times two weight vectors. Any kernel size, stride and padding works, because the input is
/// only ever read one value at a time from a zero-padded copy of the image. It replaces im2col where that wastes most:
/// 8×8 maps (ResNet-20's last stage), stride-2 and 1×1 shortcut convolutions, whose column matrices are small and
/// whose GEMMs are too narrow to keep the micro-kernel busy. Shapes as <see cref="Conv2dKernels"/>.
/// </summary>
public static unsafe class DirectConvChannelVector
{
    private const int Pixels = 8, CoBlock = 32;

    /// <summary>Output rows in multiples of 8 pixels, output channels in multiples of 32, and a reduction short enough that
    /// a 32-channel weight block (K × 32 floats) stays in L2 (measured against im2col: see docs/performance.md). Not 1×1:
    /// its padded copy of every input image outweighs the few FMAs per output (ResNet's stride-2 shortcuts ran 2× faster
    /// through im2col).</summary>
    public static bool Supports(Conv2dGeometry g) =>
        Vector512.IsHardwareAccelerated && g.OutW % Pixels == 0 && g.OutChannels % CoBlock == 0 && g.StrideW is 1 or 2
        && g.ColRows <= 1152 && g.KH * g.KW > 1;

    /// <summary>y = conv(x, w) + bias (y += that with <paramref name="accumulate"/>); with
    /// <paramref name="skipSilentChannels"/>, input channels that are all zero in an image are left out of that image's
    /// reduction. The epilogue runs on each output image right after it is written.</summary>
    public static void Forward(Conv2dGeometry g, float[] x, float[] w, float[]? bias, float[] y, WorkerPool pool, bool skipSilentChannels,
        IConvEpilogue? epilogue = null, bool accumulate = false)
    {
        int cin = g.InChannels, cout = g.OutChannels, kk = g.KH * g.KW;
        int pw = g.W + 2 * g.PadW, planeP = (g.H + 2 * g.PadH) * pw;
        int inImage = cin * g.InPlane, outImage = cout * g.OutPlane;
        // Packed weights [ci·KH·KW + tap][Cout]: one (channel, tap) row holds every output channel's weight.
        float[] packed = ArrayPool<float>.Shared.Rent(g.ColRows * cout);
        try
        {
            for (int co = 0; co < cout; co++)
                for (int k = 0; k < g.ColRows; k++) packed[k * cout + co] = w[co * g.ColRows + k];
            ConvEpilogueLoop.ForImages(pool, g.N, y, outImage, epilogue, n =>
            {
                var pad = ThreadScratch.Get(3, cin * planeP + 1);
                Span<int> offsets = g.ColRows <= 4096 ? stackalloc int[g.ColRows] : new int[g.ColRows];
                Span<int> rows = g.ColRows <= 4096 ? stackalloc int[g.ColRows] : new int[g.ColRows];
                int k = 0, active = 0;
                for (int ci = 0; ci < cin; ci++)
                {
                    var src = x.AsSpan(n * inImage + ci * g.InPlane, g.InPlane);
                    if (skipSilentChannels && src.IndexOfAnyExcept(0f) < 0) continue;
                    Im2Col.PadPlane(src, g.H, g.W, pad.AsSpan(active * planeP, planeP), pw, g.PadH, g.PadW);
                    for (int kh = 0; kh < g.KH; kh++)
                        for (int kw = 0; kw < g.KW; kw++, k++)
                        {
                            offsets[k] = active * planeP + kh * pw + kw;
                            rows[k] = ci * kk + kh * g.KW + kw;
                        }
                    active++;
                }
                float* tile = stackalloc float[Pixels * CoBlock];
                fixed (float* pp = pad, wp = packed, yp = y)
                fixed (int* op = offsets, rp = rows)
                {
                    float* yImage = yp + (long)n * outImage;
                    for (int cb = 0; cb < cout; cb += CoBlock)
                        for (int oh = 0; oh < g.OutH; oh++)
                            for (int ow = 0; ow < g.OutW; ow += Pixels)
                            {
                                float* src = pp + oh * g.StrideH * pw + ow * g.StrideW;
                                float* dst = yImage + cb * g.OutPlane + oh * g.OutW + ow;
                                if (g.StrideW == 1) Tile<Step1>(src, op, rp, k, wp + cb, cout, tile);
                                else Tile<Step2>(src, op, rp, k, wp + cb, cout, tile);
                                // [pixel][channel] → [channel][pixel] in the output.
                                if (accumulate)
                                    for (int c = 0; c < CoBlock; c++)
                                        for (int px = 0; px < Pixels; px++) dst[c * g.OutPlane + px] += tile[px * CoBlock + c];
                                else
                                    for (int c = 0; c < CoBlock; c++)
                                        for (int px = 0; px < Pixels; px++) dst[c * g.OutPlane + px] = tile[px * CoBlock + c];
                            }
                    if (bias != null)
                        for (int co = 0; co < cout; co++)
                        {
                            var plane = new Span<float>(yImage + co * g.OutPlane, g.OutPlane);
                            TensorPrimitives.Add(plane, bias[co], plane);
                        }
                }
            });
        }
        finally { ArrayPool<float>.Shared.Return(packed); }
    }

    private interface IStep { static abstract int Value { get; } }
    private struct Step1 : IStep { public static int Value => 1; }
    private struct Step2 : IStep { public static int Value => 2; }

    /// <summary>8 pixels (input step <typeparamref name="TStep"/> apart) × 32 output channels in 16 accumulators, summed over
    /// the k (channel, tap) pairs, stored [pixel][channel] to <paramref name="t"/>. (No stackalloc in here: it makes the
    /// JIT spill every accumulator on each iteration.)</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile<TStep>(float* src, int* offsets, int* rows, int k, float* weights, int ldw, float* t)
        where TStep : struct, IStep
    {
        int s = TStep.Value;
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default,
            b0 = default, b1 = default, b2 = default, b3 = default, b4 = default, b5 = default, b6 = default, b7 = default;
        for (int* end = offsets + k; offsets < end; offsets++, rows++)
        {
            float* p = src + *offsets;
            float* wr = weights + (long)*rows * ldw;
            var w0 = Vector512.Load(wr);
            var w1 = Vector512.Load(wr + 16);
            var v = Vector512.Create(p[0]); a0 = Vector512.FusedMultiplyAdd(v, w0, a0); b0 = Vector512.FusedMultiplyAdd(v, w1, b0);
            v = Vector512.Create(p[s]); a1 = Vector512.FusedMultiplyAdd(v, w0, a1); b1 = Vector512.FusedMultiplyAdd(v, w1, b1);
            v = Vector512.Create(p[2 * s]); a2 = Vector512.FusedMultiplyAdd(v, w0, a2); b2 = Vector512.FusedMultiplyAdd(v, w1, b2);
            v = Vector512.Create(p[3 * s]); a3 = Vector512.FusedMultiplyAdd(v, w0, a3); b3 = Vector512.FusedMultiplyAdd(v, w1, b3);
            v = Vector512.Create(p[4 * s]); a4 = Vector512.FusedMultiplyAdd(v, w0, a4); b4 = Vector512.FusedMultiplyAdd(v, w1, b4);
            v = Vector512.Create(p[5 * s]); a5 = Vector512.FusedMultiplyAdd(v, w0, a5); b5 = Vector512.FusedMultiplyAdd(v, w1, b5);
            v = Vector512.Create(p[6 * s]); a6 = Vector512.FusedMultiplyAdd(v, w0, a6); b6 = Vector512.FusedMultiplyAdd(v, w1, b6);
            v = Vector512.Create(p[7 * s]); a7 = Vector512.FusedMultiplyAdd(v, w0, a7); b7 = Vector512.FusedMultiplyAdd(v, w1, b7);
        }
        a0.Store(t); b0.Store(t + 16); a1.Store(t + 32); b1.Store(t + 48);
        a2.Store(t + 64); b2.Store(t + 80); a3.Store(t + 96); b3.Store(t + 112);
        a4.Store(t + 128); b4.Store(t + 144); a5.Store(t + 160); b5.Store(t + 176);
        a6.Store(t + 192); b6.Store(t + 208); a7.Store(t + 224); b7.Store(t + 240);
    }

    /// <summary>The weight gradient runs for 3×3 kernels with output channels in multiples of 16, stride 1 or 2, and output
    /// maps at least 8 wide: on VGG's 4×4 and 2×2 maps (512 channels) im2col's grouped GEMM is faster (measured 75 GFLOP/s
    /// here against ~210 for im2col at 2×2).</summary>
    public static bool SupportsWeightGradient(Conv2dGeometry g) =>
        Vector512.IsHardwareAccelerated && g.KH == 3 && g.KW == 3 && g.StrideW is 1 or 2 && g.OutChannels % 16 == 0 && g.OutW >= 8;

    /// <summary>gw += ∂L/∂w and gb += ∂L/∂b: gw[co, ci, tap] = Σ_n Σ_p gy[n, co, p] · xpad[n, ci, p·stride + tap]. For each
    /// image, gy is transposed to [pixel][channel]; then 16 output channels × 2 input channels × 9 taps accumulate in 18
    /// registers over all output pixels (one gy vector load and 18 broadcast inputs per pixel). Images are split into fixed
    /// slices summed in order, so the result does not depend on scheduling.</summary>
    public static void BackwardWeight(Conv2dGeometry g, float[] gy, float[] x, float[] gw, float[]? gb, WorkerPool pool)
    {
        int cin = g.InChannels, cout = g.OutChannels, pairs = (cin + 1) / 2;
        int pw = g.W + 2 * g.PadW, planeP = (g.H + 2 * g.PadH) * pw;
        int inImage = cin * g.InPlane, outImage = cout * g.OutPlane, wLen = pairs * 18 * cout, partLen = wLen + cout;
        int slices = Math.Min(pool.Count, g.N), perSlice = (g.N + slices - 1) / slices;
        float[] partials = ArrayPool<float>.Shared.Rent(partLen * slices);
        try
        {
            pool.For(slices, (slice, _) =>
            {
                // Per slice: dW as [pair][cout block][18 (channel, tap)][16 channels], then bias sums.
                var part = partials.AsSpan(slice * partLen, partLen);
                part.Clear();
                var pad = ThreadScratch.Get(3, pairs * 2 * planeP);
                var gyT = ThreadScratch.Get(4, g.OutPlane * cout);
                for (int n = slice * perSlice; n < Math.Min(g.N, (slice + 1) * perSlice); n++)
                {
                    for (int ci = 0; ci < cin; ci++)
                        Im2Col.PadPlane(x.AsSpan(n * inImage + ci * g.InPlane, g.InPlane), g.H, g.W, pad.AsSpan(ci * planeP, planeP), pw, g.PadH, g.PadW);
                    if (cin % 2 == 1) pad.AsSpan(cin * planeP, planeP).Clear(); // the odd channel's zero partner
                    for (int co = 0; co < cout; co++)
                    {
                        var plane = gy.AsSpan(n * outImage + co * g.OutPlane, g.OutPlane);
                        for (int p = 0; p < plane.Length; p++) gyT[p * cout + co] = plane[p];
                        part[wLen + co] += TensorPrimitives.Sum(plane);
                    }
                    fixed (float* pp = pad, gp = gyT, wp = part)
                        for (int pair = 0; pair < pairs; pair++)
                            for (int cb = 0; cb < cout; cb += 16)
                            {
                                float* acc = wp + ((long)(pair * (cout / 16) + cb / 16) * 18) * 16;
                                if (g.StrideW == 1) WeightTile<Step1>(pp + pair * 2 * planeP, planeP, pw, g.StrideH, g.OutH, g.OutW, gp + cb, cout, acc);
                                else WeightTile<Step2>(pp + pair * 2 * planeP, planeP, pw, g.StrideH, g.OutH, g.OutW, gp + cb, cout, acc);
                            }
                }
            });
            for (int sl = 0; sl < slices; sl++)
            {
                var part = partials.AsSpan(sl * partLen, partLen);
                for (int pair = 0; pair < pairs; pair++)
                    for (int cb = 0; cb < cout; cb += 16)
                        for (int r = 0; r < 18; r++)
                        {
                            int ci = pair * 2 + r / 9, tap = r % 9;
                            if (ci >= cin) continue;
                            var block = part.Slice(((pair * (cout / 16) + cb / 16) * 18 + r) * 16, 16);
                            for (int c = 0; c < 16; c++) gw[((cb + c) * cin + ci) * 9 + tap] += block[c];
                        }
                if (gb != null) TensorPrimitives.Add(gb.AsSpan(0, cout), part.Slice(wLen, cout), gb.AsSpan(0, cout));
            }
        }
        finally { ArrayPool<float>.Shared.Return(partials); }
    }

    /// <summary>acc[r][16] += Σ_pixels gyT[pixel][16 channels] · x(channel r / 9, pixel·stride + tap r % 9) for two zero-padded
    /// input planes <paramref name="planeP"/> apart.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void WeightTile<TStep>(float* pad, int planeP, int pw, int strideH, int outH, int outW, float* gyT, int ldg, float* acc)
        where TStep : struct, IStep
    {
        int s = TStep.Value;
        Vector512<float> a0 = default, a1 = default, a2 = default, a3 = default, a4 = default, a5 = default, a6 = default, a7 = default, a8 = default,
            b0 = default, b1 = default, b2 = default, b3 = default, b4 = default, b5 = default, b6 = default, b7 = default, b8 = default;
        float* gp = gyT;
        for (int oh = 0; oh < outH; oh++)
        {
            float* r0 = pad + oh * strideH * pw, r1 = r0 + pw, r2 = r1 + pw;
            for (int ow = 0; ow < outW; ow++, r0 += s, r1 += s, r2 += s, gp += ldg)
            {
                var gv = Vector512.Load(gp);
                a0 = Vector512.FusedMultiplyAdd(Vector512.Create(r0[0]), gv, a0);
                a1 = Vector512.FusedMultiplyAdd(Vector512.Create(r0[1]), gv, a1);
                a2 = Vector512.FusedMultiplyAdd(Vector512.Create(r0[2]), gv, a2);
                a3 = Vector512.FusedMultiplyAdd(Vector512.Create(r1[0]), gv, a3);
                a4 = Vector512.FusedMultiplyAdd(Vector512.Create(r1[1]), gv, a4);
                a5 = Vector512.FusedMultiplyAdd(Vector512.Create(r1[2]), gv, a5);
                a6 = Vector512.FusedMultiplyAdd(Vector512.Create(r2[0]), gv, a6);
                a7 = Vector512.FusedMultiplyAdd(Vector512.Create(r2[1]), gv, a7);
                a8 = Vector512.FusedMultiplyAdd(Vector512.Create(r2[2]), gv, a8);
                b0 = Vector512.FusedMultiplyAdd(Vector512.Create(r0[planeP]), gv, b0);
                b1 = Vector512.FusedMultiplyAdd(Vector512.Create(r0[planeP + 1]), gv, b1);
                b2 = Vector512.FusedMultiplyAdd(Vector512.Create(r0[planeP + 2]), gv, b2);
                b3 = Vector512.FusedMultiplyAdd(Vector512.Create(r1[planeP]), gv, b3);
                b4 = Vector512.FusedMultiplyAdd(Vector512.Create(r1[planeP + 1]), gv, b4);
                b5 = Vector512.FusedMultiplyAdd(Vector512.Create(r1[planeP + 2]), gv, b5);
                b6 = Vector512.FusedMultiplyAdd(Vector512.Create(r2[planeP]), gv, b6);
                b7 = Vector512.FusedMultiplyAdd(Vector512.Create(r2[planeP + 1]), gv, b7);
                b8 = Vector512.FusedMultiplyAdd(Vector512.Create(r2[planeP + 2]), gv, b8);
            }
        }
        (a0 + Vector512.Load(acc)).Store(acc); (a1 + Vector512.Load(acc + 16)).Store(acc + 16); (a2 + Vector512.Load(acc + 32)).Store(acc + 32);
        (a3 + Vector512.Load(acc + 48)).Store(acc + 48); (a4 + Vector512.Load(acc + 64)).Store(acc + 64); (a5 + Vector512.Load(acc + 80)).Store(acc + 80);
        (a6 + Vector512.Load(acc + 96)).Store(acc + 96); (a7 + Vector512.Load(acc + 112)).Store(acc + 112); (a8 + Vector512.Load(acc + 128)).Store(acc + 128);
        (b0 + Vector512.Load(acc + 144)).Store(acc + 144); (b1 + Vector512.Load(acc + 160)).Store(acc + 160); (b2 + Vector512.Load(acc + 176)).Store(acc + 176);
        (b3 + Vector512.Load(acc + 192)).Store(acc + 192); (b4 + Vector512.Load(acc + 208)).Store(acc + 208); (b5 + Vector512.Load(acc + 224)).Store(acc + 224);
        (b6 + Vector512.Load(acc + 240)).Store(acc + 240); (b7 + Vector512.Load(acc + 256)).Store(acc + 256); (b8 + Vector512.Load(acc + 272)).Store(acc + 272);
    }
}
