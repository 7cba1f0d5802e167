using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SpikeSharp.Tensors;

/// <summary>
/// im2col and its adjoint col2im for one image: column matrix rows are (c, kh, kw), columns are output pixels
/// (oh, ow). Zero padding is materialized as zeros. Stride-1 rows are copied as contiguous runs.
/// </summary>
public static class Im2Col
{
    /// <summary>Copies an H×W plane into a padded plane of row length <paramref name="pw"/> at offset (padH, padW); dst
    /// is cleared first unless the copy fills it (no border, no slack after the last row).</summary>
    public static void PadPlane(ReadOnlySpan<float> plane, int h, int w, Span<float> dst, int pw, int padH, int padW)
    {
        if (padH > 0 || padW > 0 || dst.Length > h * w) dst.Clear();
        for (int r = 0; r < h; r++) plane.Slice(r * w, w).CopyTo(dst.Slice((r + padH) * pw + padW, w));
    }

    /// <summary>col[k, colOffset + oh·OutW + ow] = x[c, oh·sh − ph + kh, ow·sw − pw + kw] (0 outside), for one image
    /// x of [Cin, H, W]; ldCol is the row length of col.</summary>
    public static void Expand(Conv2dGeometry g, ReadOnlySpan<float> x, Span<float> col, int ldCol, int colOffset)
    {
        for (int c = 0; c < g.InChannels; c++)
            ExpandChannel(g, x.Slice(c * g.InPlane, g.InPlane), col, c * g.KH * g.KW, ldCol, colOffset);
    }

    /// <summary>The KH·KW rows of one input channel's plane, written from column-matrix row <paramref name="firstRow"/> on.</summary>
    public static void ExpandChannel(Conv2dGeometry g, ReadOnlySpan<float> plane, Span<float> col, int firstRow, int ldCol, int colOffset)
    {
        int outW = g.OutW;
        {
            for (int kh = 0; kh < g.KH; kh++)
                for (int kw = 0; kw < g.KW; kw++)
                {
                    int k = firstRow + kh * g.KW + kw;
                    var row = col.Slice(k * ldCol + colOffset, g.OutPlane);
                    // Output columns ow with 0 <= ow*sw - pw + kw < W.
                    int owLo = Math.Max(0, CeilDiv(g.PadW - kw, g.StrideW));
                    int owHi = Math.Min(outW, CeilDiv(g.W + g.PadW - kw, g.StrideW));
                    for (int oh = 0; oh < g.OutH; oh++)
                    {
                        var dst = row.Slice(oh * outW, outW);
                        int ih = oh * g.StrideH - g.PadH + kh;
                        if ((uint)ih >= (uint)g.H || owLo >= owHi) { dst.Clear(); continue; }
                        var src = plane.Slice(ih * g.W);
                        dst[..owLo].Clear();
                        dst[owHi..].Clear();
                        int iw0 = owLo * g.StrideW - g.PadW + kw;
                        if (g.StrideW == 1)
                            src.Slice(iw0, owHi - owLo).CopyTo(dst[owLo..owHi]);
                        else if (g.StrideW == 2)
                            GatherEven(src[iw0..], dst[owLo..owHi]);
                        else
                            for (int ow = owLo, iw = iw0; ow < owHi; ow++, iw += g.StrideW) dst[ow] = src[iw];
                    }
                }
        }
    }

    /// <summary>Adjoint of <see cref="Expand"/>: x[c, ih, iw] += col[k, colOffset + p] over all (k, p) that read it.</summary>
    public static void Accumulate(Conv2dGeometry g, ReadOnlySpan<float> col, int ldCol, int colOffset, Span<float> x)
    {
        int outW = g.OutW;
        for (int c = 0; c < g.InChannels; c++)
        {
            var plane = x.Slice(c * g.InPlane, g.InPlane);
            for (int kh = 0; kh < g.KH; kh++)
                for (int kw = 0; kw < g.KW; kw++)
                {
                    int k = (c * g.KH + kh) * g.KW + kw;
                    var row = col.Slice(k * ldCol + colOffset, g.OutPlane);
                    int owLo = Math.Max(0, CeilDiv(g.PadW - kw, g.StrideW));
                    int owHi = Math.Min(outW, CeilDiv(g.W + g.PadW - kw, g.StrideW));
                    if (owLo >= owHi) continue;
                    for (int oh = 0; oh < g.OutH; oh++)
                    {
                        int ih = oh * g.StrideH - g.PadH + kh;
                        if ((uint)ih >= (uint)g.H) continue;
                        var src = row.Slice(oh * outW, outW);
                        var dst = plane.Slice(ih * g.W);
                        int iw0 = owLo * g.StrideW - g.PadW + kw;
                        if (g.StrideW == 1)
                            TensorPrimitives.Add(dst.Slice(iw0, owHi - owLo), src[owLo..owHi], dst.Slice(iw0, owHi - owLo));
                        else if (g.StrideW == 2)
                            ScatterAddEven(src[owLo..owHi], dst[iw0..]);
                        else
                            for (int ow = owLo, iw = iw0; ow < owHi; ow++, iw += g.StrideW) dst[iw] += src[ow];
                    }
                }
        }
    }

    // Stride-2 rows: a scalar loop here was most of a stride-2 layer's backward-data time (col2im of ResNet's downsampling
    // convolutions). Even lanes of two vectors are picked with one two-source permute, or a vector is spread over the even lanes of two.
    private static readonly Vector512<int> EvenOfTwo = Vector512.Create(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    private static readonly Vector512<int> SpreadLow = Vector512.Create(0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7);
    private static readonly Vector512<int> SpreadHigh = Vector512.Create(8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13, 14, 14, 15, 15);
    private static readonly Vector512<float> EvenLanes = Vector512.Create(-1, 0, -1, 0, -1, 0, -1, 0, -1, 0, -1, 0, -1, 0, -1, 0).AsSingle();

    /// <summary>dst[j] = src[2j].</summary>
    private static void GatherEven(ReadOnlySpan<float> src, Span<float> dst)
    {
        int j = 0;
        if (Avx512F.IsSupported)
        {
            ref float s = ref MemoryMarshal.GetReference(src);
            ref float d = ref MemoryMarshal.GetReference(dst);
            for (; j + 16 <= dst.Length && 2 * j + 32 <= src.Length; j += 16)
                Avx512F.PermuteVar16x32x2(Vector512.LoadUnsafe(ref s, (nuint)(2 * j)), EvenOfTwo, Vector512.LoadUnsafe(ref s, (nuint)(2 * j + 16)))
                    .StoreUnsafe(ref d, (nuint)j);
        }
        for (; j < dst.Length; j++) dst[j] = src[2 * j];
    }

    /// <summary>dst[2j] += src[j]; the odd elements of dst keep their bits.</summary>
    private static void ScatterAddEven(ReadOnlySpan<float> src, Span<float> dst)
    {
        int j = 0;
        if (Avx512F.IsSupported)
        {
            ref float s = ref MemoryMarshal.GetReference(src);
            ref float d = ref MemoryMarshal.GetReference(dst);
            for (; j + 16 <= src.Length && 2 * j + 32 <= dst.Length; j += 16)
            {
                var v = Vector512.LoadUnsafe(ref s, (nuint)j);
                var lo = Vector512.LoadUnsafe(ref d, (nuint)(2 * j));
                var hi = Vector512.LoadUnsafe(ref d, (nuint)(2 * j + 16));
                Vector512.ConditionalSelect(EvenLanes, lo + Avx512F.PermuteVar16x32(v, SpreadLow), lo).StoreUnsafe(ref d, (nuint)(2 * j));
                Vector512.ConditionalSelect(EvenLanes, hi + Avx512F.PermuteVar16x32(v, SpreadHigh), hi).StoreUnsafe(ref d, (nuint)(2 * j + 16));
            }
        }
        for (; j < src.Length; j++) dst[2 * j] += src[j];
    }

    private static int CeilDiv(int a, int b) => a >= 0 ? (a + b - 1) / b : -((-a) / b);
}
