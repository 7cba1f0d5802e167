using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace SpikeSharp.Tensors;

/// <summary>
/// Direct 3×3, stride-1, pad-1 convolution for feature maps 16 or 32 pixels wide and output channels in multiples of 8:
/// no im2col. Each image's channels are copied once into zero-padded planes; a register tile of 8 output channels ×
/// 32 output pixels (one 32-wide row, or two 16-wide rows) accumulates over input channels and the 9 taps with vector
/// loads along the padded rows. im2col would copy every input value nine times, which dominates when the layer has
/// few output channels (ResNet-20's 16–64) to reuse it. Shapes as <see cref="Conv2dKernels"/>.
/// </summary>
public static unsafe class DirectConv3x3
{
    private const int CoBlock = 8;

    public static bool Supports(Conv2dGeometry g) =>
        Vector512.IsHardwareAccelerated && g.KH == 3 && g.KW == 3 && g.StrideH == 1 && g.StrideW == 1 && g.PadH == 1 && g.PadW == 1
        && (g.W == 32 || g.W == 16) && g.H % (g.W == 16 ? 2 : 1) == 0 && g.OutChannels % CoBlock == 0;

    /// <summary>y = conv(x, w) + bias (y += that with <paramref name="accumulate"/>); with
    /// <paramref name="skipSilentChannels"/>, input channels that are all zero in an image are skipped for that image.
    /// The epilogue runs on each output image right after it is written.</summary>
    public static void Forward(Conv2dGeometry g, float[] x, float[] w, float[]? bias, float[] y, WorkerPool pool, bool skipSilentChannels,
        IConvEpilogue? epilogue = null, bool accumulate = false)
    {
        int cin = g.InChannels, cout = g.OutChannels, h = g.H, width = g.W;
        int pw = width + 2, planeP = (h + 2) * pw + 16; // +16: the last row's vector loads may read past the padding
        // Packed weights: [co block][ci][tap][8 output channels], so one tap's 8 weights are adjacent.
        var packed = new float[cout * cin * 9];
        for (int cb = 0; cb < cout / CoBlock; cb++)
            for (int ci = 0; ci < cin; ci++)
                for (int tap = 0; tap < 9; tap++)
                    for (int c = 0; c < CoBlock; c++)
                        packed[((cb * cin + ci) * 9 + tap) * CoBlock + c] = w[((cb * CoBlock + c) * cin + ci) * 9 + tap];
        int inImage = cin * h * width, outImage = cout * h * width;
        ConvEpilogueLoop.ForImages(pool, g.N, y, outImage, epilogue, n =>
        {
            var pad = ThreadScratch.Get(3, cin * planeP);
            Span<int> active = cin <= 4096 ? stackalloc int[cin] : new int[cin];
            int count = 0;
            for (int ci = 0; ci < cin; ci++)
            {
                var src = x.AsSpan(n * inImage + ci * h * width, h * width);
                if (skipSilentChannels && src.IndexOfAnyExcept(0f) < 0) continue;
                Im2Col.PadPlane(src, h, width, pad.AsSpan(count * planeP, planeP), pw, 1, 1);
                active[count++] = ci;
            }
            fixed (float* pp = pad, wp = packed, yp = y)
            {
                for (int cb = 0; cb < cout / CoBlock; cb++)
                {
                    float* outBase = yp + n * outImage + cb * CoBlock * h * width;
                    int second = width == 32 ? 16 : pw;
                    for (int oh = 0; oh < h; oh += width == 32 ? 1 : 2)
                        Tile(pp, planeP, pw, wp, cin, cb, active[..count], oh, second, outBase + oh * width, h * width, accumulate);
                    if (bias != null)
                        for (int c = 0; c < CoBlock; c++)
                            TensorPrimitives.Add(new Span<float>(outBase + c * h * width, h * width), bias[cb * CoBlock + c], new Span<float>(outBase + c * h * width, h * width));
                }
            }
        });
    }

    /// <summary>32 output pixels for 8 output channels in 16 accumulators: one 32-wide row (second vector 16 floats on)
    /// or two 16-wide rows (second vector one padded row down). The 32 outputs are contiguous in both cases.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void Tile(float* pad, int planeP, int pw, float* wp, int cin, int cb, ReadOnlySpan<int> active, int oh, int secondOffset,
        float* outRow, int outPlane, bool accumulate)
    {
        Vector512<float> a0 = default, a1 = default, b0 = default, b1 = default, c0 = default, c1 = default, d0 = default, d1 = default,
            e0 = default, e1 = default, f0 = default, f1 = default, g0 = default, g1 = default, h0 = default, h1 = default;
        for (int j = 0; j < active.Length; j++)
        {
            float* plane = pad + j * planeP;
            float* wt = wp + ((long)(cb * cin + active[j]) * 9) * CoBlock;
            for (int kh = 0; kh < 3; kh++)
            {
                float* row = plane + (oh + kh) * pw;
                for (int kw = 0; kw < 3; kw++, wt += CoBlock)
                {
                    var x0 = Vector512.Load(row + kw);
                    var x1 = Vector512.Load(row + secondOffset + kw);
                    var w = Vector512.Create(wt[0]); a0 = Vector512.FusedMultiplyAdd(w, x0, a0); a1 = Vector512.FusedMultiplyAdd(w, x1, a1);
                    w = Vector512.Create(wt[1]); b0 = Vector512.FusedMultiplyAdd(w, x0, b0); b1 = Vector512.FusedMultiplyAdd(w, x1, b1);
                    w = Vector512.Create(wt[2]); c0 = Vector512.FusedMultiplyAdd(w, x0, c0); c1 = Vector512.FusedMultiplyAdd(w, x1, c1);
                    w = Vector512.Create(wt[3]); d0 = Vector512.FusedMultiplyAdd(w, x0, d0); d1 = Vector512.FusedMultiplyAdd(w, x1, d1);
                    w = Vector512.Create(wt[4]); e0 = Vector512.FusedMultiplyAdd(w, x0, e0); e1 = Vector512.FusedMultiplyAdd(w, x1, e1);
                    w = Vector512.Create(wt[5]); f0 = Vector512.FusedMultiplyAdd(w, x0, f0); f1 = Vector512.FusedMultiplyAdd(w, x1, f1);
                    w = Vector512.Create(wt[6]); g0 = Vector512.FusedMultiplyAdd(w, x0, g0); g1 = Vector512.FusedMultiplyAdd(w, x1, g1);
                    w = Vector512.Create(wt[7]); h0 = Vector512.FusedMultiplyAdd(w, x0, h0); h1 = Vector512.FusedMultiplyAdd(w, x1, h1);
                }
            }
        }
        float* o = outRow;
        if (accumulate)
        {
            a0 += Vector512.Load(o); a1 += Vector512.Load(o + 16); o += outPlane;
            b0 += Vector512.Load(o); b1 += Vector512.Load(o + 16); o += outPlane;
            c0 += Vector512.Load(o); c1 += Vector512.Load(o + 16); o += outPlane;
            d0 += Vector512.Load(o); d1 += Vector512.Load(o + 16); o += outPlane;
            e0 += Vector512.Load(o); e1 += Vector512.Load(o + 16); o += outPlane;
            f0 += Vector512.Load(o); f1 += Vector512.Load(o + 16); o += outPlane;
            g0 += Vector512.Load(o); g1 += Vector512.Load(o + 16); o += outPlane;
            h0 += Vector512.Load(o); h1 += Vector512.Load(o + 16);
            o = outRow;
        }
        a0.Store(o); a1.Store(o + 16); o += outPlane;
        b0.Store(o); b1.Store(o + 16); o += outPlane;
        c0.Store(o); c1.Store(o + 16); o += outPlane;
        d0.Store(o); d1.Store(o + 16); o += outPlane;
        e0.Store(o); e1.Store(o + 16); o += outPlane;
        f0.Store(o); f1.Store(o + 16); o += outPlane;
        g0.Store(o); g1.Store(o + 16); o += outPlane;
        h0.Store(o); h1.Store(o + 16);
    }
}
