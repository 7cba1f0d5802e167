
namespace SpikeSharp.Tensors;

/// <summary>
/// Batch normalization over x [N, C, S] (S = H·W, or 1 for BatchNorm1d), per channel c:
/// y = γ·(x − μ)/σ + β with σ = sqrt(var + eps). Channels run in parallel; sums are accumulated in double.
/// NOTE: variance and Σgy·(x − μ) are computed on centred values (two passes), not as E[x²] − μ², which loses
/// all precision when a channel's mean is large compared with its spread.
/// </summary>
public static class BatchNormKernels
{
    /// <summary>Per-channel batch mean and biased variance.</summary>
    public static void Statistics(float[] x, int n, int c, int s, float[] mean, float[] variance)
    {
        WorkerPool.Shared.For(c, (ch, _) =>
        {
            double sum = 0;
            for (int i = 0; i < n; i++) sum += TensorPrimitives.Sum(x.AsSpan((i * c + ch) * s, s));
            double count = (double)n * s;
            float m = (float)(sum / count);
            double sq = 0;
            Span<float> tmp = stackalloc float[Math.Min(s, 1024)];
            for (int i = 0; i < n; i++)
                for (int k = 0; k < s; k += tmp.Length)
                {
                    int len = Math.Min(tmp.Length, s - k);
                    TensorPrimitives.Subtract(x.AsSpan((i * c + ch) * s + k, len), m, tmp[..len]);
                    sq += TensorPrimitives.SumOfSquares(tmp[..len]);
                }
            mean[ch] = m;
            variance[ch] = (float)(sq / count);
        });
    }

    /// <summary>y = scale[c]·x + shift[c] per channel.</summary>
    public static void Affine(float[] x, int n, int c, int s, float[] scale, float[] shift, float[] y)
    {
        WorkerPool.Shared.For(n, (i, _) =>
        {
            for (int ch = 0; ch < c; ch++)
            {
                int o = (i * c + ch) * s;
                TensorPrimitives.Multiply(x.AsSpan(o, s), scale[ch], y.AsSpan(o, s));
                TensorPrimitives.Add(y.AsSpan(o, s), shift[ch], y.AsSpan(o, s));
            }
        });
    }

    /// <summary>gx (+)= a[c]·gy + b[c]·x + d[c] per channel (overwrites when accumulate is false).</summary>
    public static void AffineGrad(float[] gy, float[] x, int n, int c, int s, float[] a, float[] b, float[] d, float[] gx, bool accumulate)
    {
        WorkerPool.Shared.For(n, (i, _) =>
        {
            Span<float> tmp = stackalloc float[Math.Min(s, 1024)];
            for (int ch = 0; ch < c; ch++)
            {
                int o = (i * c + ch) * s;
                for (int k = 0; k < s; k += tmp.Length)
                {
                    int len = Math.Min(tmp.Length, s - k);
                    var t = tmp[..len];
                    TensorPrimitives.Multiply(x.AsSpan(o + k, len), b[ch], t);
                    TensorPrimitives.Add(t, d[ch], t);
                    TensorPrimitives.MultiplyAdd(gy.AsSpan(o + k, len), a[ch], t, t);
                    var dst = gx.AsSpan(o + k, len);
                    if (accumulate) TensorPrimitives.Add(dst, t, dst);
                    else t.CopyTo(dst);
                }
            }
        });
    }

    /// <summary>Per-channel Σ gy and Σ gy·x̂ where x̂ = (x − mean)·invStd.</summary>
    public static void GradSums(float[] x, float[] gy, int n, int c, int s, float[] mean, float[] invStd, float[] sumGy, float[] sumGyXhat)
    {
        WorkerPool.Shared.For(c, (ch, _) =>
        {
            double a = 0, b = 0;
            Span<float> tmp = stackalloc float[Math.Min(s, 1024)];
            for (int i = 0; i < n; i++)
                for (int k = 0; k < s; k += tmp.Length)
                {
                    int o = (i * c + ch) * s + k, len = Math.Min(tmp.Length, s - k);
                    var gp = gy.AsSpan(o, len);
                    a += TensorPrimitives.Sum(gp);
                    TensorPrimitives.Subtract(x.AsSpan(o, len), mean[ch], tmp[..len]);
                    b += TensorPrimitives.Dot(gp, tmp[..len]);
                }
            sumGy[ch] = (float)a;
            sumGyXhat[ch] = (float)(b * invStd[ch]);
        });
    }
}
