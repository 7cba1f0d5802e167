namespace SpikeSharp.Tensors;

/// <summary>
/// Average and max pooling over x [N·C planes of H×W] with a square-or-rectangular window, stride and no padding
/// (the architectures here never pad pools); global average pooling is a window covering the whole plane.
/// Planes run in parallel.
/// </summary>
public static class PoolKernels
{
    public static int OutSize(int size, int kernel, int stride) => (size - kernel) / stride + 1;

    /// <summary>Runs <paramref name="body"/> for every plane, in parallel chunks of ≥ 16 K elements: one task per small
    /// plane would cost more in scheduling than the pooling itself (a [512, 64, 8, 8] global pool took 4 ms that way).</summary>
    private static void ForPlanes(int planes, int planeSize, Action<int> body)
    {
        int perChunk = Math.Max(1, (1 << 14) / Math.Max(1, planeSize));
        int chunks = (planes + perChunk - 1) / perChunk;
        WorkerPool.Shared.For(chunks, (c, _) =>
        {
            for (int p = c * perChunk, end = Math.Min(planes, p + perChunk); p < end; p++) body(p);
        });
    }

    /// <summary>y[p, oh, ow] = mean of the kh×kw window at (oh·s, ow·s).</summary>
    public static void AvgForward(float[] x, int planes, int h, int w, int kh, int kw, int sh, int sw, float[] y)
    {
        int oh = OutSize(h, kh, sh), ow = OutSize(w, kw, sw);
        float inv = 1f / (kh * kw);
        ForPlanes(planes, h * w, p =>
        {
            var src = x.AsSpan(p * h * w, h * w);
            var dst = y.AsSpan(p * oh * ow, oh * ow);
            if (kh == h && kw == w)
            {
                dst[0] = TensorPrimitives.Sum(src) * inv; // global average pooling
                return;
            }
            for (int i = 0; i < oh; i++)
                for (int j = 0; j < ow; j++)
                {
                    float sum = 0;
                    for (int a = 0; a < kh; a++)
                    {
                        var row = src.Slice((i * sh + a) * w + j * sw, kw);
                        for (int b = 0; b < kw; b++) sum += row[b];
                    }
                    dst[i * ow + j] = sum * inv;
                }
        });
    }

    /// <summary>gx += gy spread evenly over each window.</summary>
    public static void AvgBackward(float[] gy, int planes, int h, int w, int kh, int kw, int sh, int sw, float[] gx)
    {
        int oh = OutSize(h, kh, sh), ow = OutSize(w, kw, sw);
        float inv = 1f / (kh * kw);
        ForPlanes(planes, h * w, p =>
        {
            var src = gy.AsSpan(p * oh * ow, oh * ow);
            var dst = gx.AsSpan(p * h * w, h * w);
            for (int i = 0; i < oh; i++)
                for (int j = 0; j < ow; j++)
                {
                    float g = src[i * ow + j] * inv;
                    for (int a = 0; a < kh; a++)
                    {
                        var row = dst.Slice((i * sh + a) * w + j * sw, kw);
                        for (int b = 0; b < kw; b++) row[b] += g;
                    }
                }
        });
    }

    /// <summary>y = max over each window; argmax[p·OH·OW + o] = index within the plane (first maximum wins).</summary>
    public static void MaxForward(float[] x, int planes, int h, int w, int kh, int kw, int sh, int sw, float[] y, int[] argmax)
    {
        int oh = OutSize(h, kh, sh), ow = OutSize(w, kw, sw);
        ForPlanes(planes, h * w, p =>
        {
            var src = x.AsSpan(p * h * w, h * w);
            for (int i = 0; i < oh; i++)
                for (int j = 0; j < ow; j++)
                {
                    int best = (i * sh) * w + j * sw;
                    float m = src[best];
                    for (int a = 0; a < kh; a++)
                        for (int b = 0; b < kw; b++)
                        {
                            int idx = (i * sh + a) * w + j * sw + b;
                            if (src[idx] > m || float.IsNaN(src[idx])) { m = src[idx]; best = idx; }
                        }
                    int o = p * oh * ow + i * ow + j;
                    y[o] = m;
                    argmax[o] = best;
                }
        });
    }

    /// <summary>gx[argmax] += gy.</summary>
    public static void MaxBackward(float[] gy, int[] argmax, int planes, int h, int w, int outPlane, float[] gx)
    {
        ForPlanes(planes, h * w, p =>
        {
            int ob = p * outPlane, ib = p * h * w;
            for (int o = 0; o < outPlane; o++) gx[ib + argmax[ob + o]] += gy[ob + o];
        });
    }
}
