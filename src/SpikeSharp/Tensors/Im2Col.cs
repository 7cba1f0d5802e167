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
                            System.Numerics.Tensors.TensorPrimitives.Add(dst.Slice(iw0, owHi - owLo), src[owLo..owHi], dst.Slice(iw0, owHi - owLo));
                        else
                            for (int ow = owLo, iw = iw0; ow < owHi; ow++, iw += g.StrideW) dst[iw] += src[ow];
                    }
                }
        }
    }

    private static int CeilDiv(int a, int b) => a >= 0 ? (a + b - 1) / b : -((-a) / b);
}
