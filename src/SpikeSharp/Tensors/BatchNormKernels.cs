using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;

namespace SpikeSharp.Tensors;

/// <summary>
/// Batch normalization over x [N, C, S] (S = H·W, or 1 for BatchNorm1d), per channel c:
/// y = γ·(x − μ)/σ + β with σ = sqrt(var + eps). Channels run in parallel for the sums, images for the elementwise
/// passes. Every pass is one hand-written vector loop over a plane: ResNet-20's 8×8 planes are 64 values, too short
/// for a chain of library calls per plane to pay for itself. Sums are accumulated in float within a plane and in double
/// across planes.
/// NOTE: the variance is computed from values shifted by one of the channel's own values (one pass), not as
/// E[x²] − μ², which loses all precision when a channel's mean is large compared with its spread.
/// </summary>
public static class BatchNormKernels
{
    /// <summary>Per-channel batch mean and biased variance.</summary>
    public static void Statistics(float[] x, int n, int c, int s, float[] mean, float[] variance)
    {
        WorkerPool.Shared.For(c, (ch, _) =>
        {
            float shift = x[ch * s];
            double sum = 0, sq = 0;
            for (int i = 0; i < n; i++)
            {
                var (ps, pq) = ShiftedSums(x.AsSpan((i * c + ch) * s, s), shift);
                sum += ps;
                sq += pq;
            }
            double count = (double)n * s, d = sum / count;
            mean[ch] = (float)(shift + d);
            variance[ch] = (float)Math.Max(0, sq / count - d * d);
        });
    }

    /// <summary>y = scale[c]·x + shift[c] per channel.</summary>
    public static void Affine(float[] x, int n, int c, int s, float[] scale, float[] shift, float[] y) =>
        WorkerPool.Shared.For(n, (i, _) => AffineImage(x.AsSpan(i * c * s, c * s), default, scale, shift, y.AsSpan(i * c * s, c * s)));

    /// <summary>z = scale[c]·x + shift[c] over the channel planes of one image [C, S], then + addend unless it is empty: the
    /// current of a fused conv → BN → [+ shortcut] and the pre-activation of a fused BN → [+ shortcut] → activation, with
    /// the bits of the separate affine and add. x and z may be the same span.</summary>
    public static void AffineImage(ReadOnlySpan<float> x, ReadOnlySpan<float> addend, float[] scale, float[] shift, Span<float> z)
    {
        int s = x.Length / scale.Length;
        for (int ch = 0; ch < scale.Length; ch++) AffinePlane(x.Slice(ch * s, s), scale[ch], shift[ch], z.Slice(ch * s, s));
        if (!addend.IsEmpty) TensorPrimitives.Add(z, addend, z);
    }

    /// <summary>y = (x·scale) + shift, each operation rounded on its own (no fused multiply-add), so every caller (the
    /// training op, eval mode, the fused inference epilogue) gets the same bits. x and y may be the same span.</summary>
    private static void AffinePlane(ReadOnlySpan<float> x, float scale, float shift, Span<float> y)
    {
        ref float xr = ref MemoryMarshal.GetReference(x), yr = ref MemoryMarshal.GetReference(y);
        int i = 0;
        var vs = Vector512.Create(scale);
        var vb = Vector512.Create(shift);
        for (; i <= x.Length - 16; i += 16)
            (Vector512.LoadUnsafe(ref xr, (nuint)i) * vs + vb).StoreUnsafe(ref yr, (nuint)i);
        for (; i < x.Length; i++) y[i] = x[i] * scale + shift;
    }

    /// <summary>gx (+)= a[c]·gy + (b[c]·x + d[c]) per channel (overwrites when accumulate is false).</summary>
    public static void AffineGrad(float[] gy, float[] x, int n, int c, int s, float[] a, float[] b, float[] d, float[] gx, bool accumulate)
    {
        WorkerPool.Shared.For(n, (i, _) =>
        {
            for (int ch = 0; ch < c; ch++)
            {
                int o = (i * c + ch) * s;
                AffineGradPlane(gy.AsSpan(o, s), x.AsSpan(o, s), a[ch], b[ch], d[ch], gx.AsSpan(o, s), accumulate);
            }
        });
    }

    /// <summary>Per-channel Σ gy and Σ gy·x̂ where x̂ = (x − mean)·invStd.</summary>
    public static void GradSums(float[] x, float[] gy, int n, int c, int s, float[] mean, float[] invStd, float[] sumGy, float[] sumGyXhat)
    {
        WorkerPool.Shared.For(c, (ch, _) =>
        {
            double a = 0, b = 0;
            for (int i = 0; i < n; i++)
            {
                int o = (i * c + ch) * s;
                var (pa, pb) = GradSumsPlane(gy.AsSpan(o, s), x.AsSpan(o, s), mean[ch]);
                a += pa;
                b += pb;
            }
            sumGy[ch] = (float)a;
            sumGyXhat[ch] = (float)(b * invStd[ch]);
        });
    }

    /// <summary>(Σ (x − shift), Σ (x − shift)²) over one plane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static (float Sum, float SumSq) ShiftedSums(ReadOnlySpan<float> x, float shift)
    {
        ref float xr = ref MemoryMarshal.GetReference(x);
        var vk = Vector512.Create(shift);
        Vector512<float> s0 = default, s1 = default, q0 = default, q1 = default;
        int i = 0;
        for (; i <= x.Length - 32; i += 32)
        {
            var d0 = Vector512.LoadUnsafe(ref xr, (nuint)i) - vk;
            var d1 = Vector512.LoadUnsafe(ref xr, (nuint)(i + 16)) - vk;
            s0 += d0; s1 += d1;
            q0 = Vector512.FusedMultiplyAdd(d0, d0, q0);
            q1 = Vector512.FusedMultiplyAdd(d1, d1, q1);
        }
        for (; i <= x.Length - 16; i += 16)
        {
            var d0 = Vector512.LoadUnsafe(ref xr, (nuint)i) - vk;
            s0 += d0;
            q0 = Vector512.FusedMultiplyAdd(d0, d0, q0);
        }
        float sum = Vector512.Sum(s0 + s1), sq = Vector512.Sum(q0 + q1);
        for (; i < x.Length; i++)
        {
            float d = x[i] - shift;
            sum += d;
            sq += d * d;
        }
        return (sum, sq);
    }

    /// <summary>(Σ gy, Σ gy·(x − mean)) over one plane.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static (float SumGy, float SumGyX) GradSumsPlane(ReadOnlySpan<float> gy, ReadOnlySpan<float> x, float mean)
    {
        ref float gr = ref MemoryMarshal.GetReference(gy), xr = ref MemoryMarshal.GetReference(x);
        var vm = Vector512.Create(mean);
        Vector512<float> a0 = default, a1 = default, b0 = default, b1 = default;
        int i = 0;
        for (; i <= x.Length - 32; i += 32)
        {
            var g0 = Vector512.LoadUnsafe(ref gr, (nuint)i);
            var g1 = Vector512.LoadUnsafe(ref gr, (nuint)(i + 16));
            a0 += g0; a1 += g1;
            b0 = Vector512.FusedMultiplyAdd(g0, Vector512.LoadUnsafe(ref xr, (nuint)i) - vm, b0);
            b1 = Vector512.FusedMultiplyAdd(g1, Vector512.LoadUnsafe(ref xr, (nuint)(i + 16)) - vm, b1);
        }
        for (; i <= x.Length - 16; i += 16)
        {
            var g0 = Vector512.LoadUnsafe(ref gr, (nuint)i);
            a0 += g0;
            b0 = Vector512.FusedMultiplyAdd(g0, Vector512.LoadUnsafe(ref xr, (nuint)i) - vm, b0);
        }
        float sa = Vector512.Sum(a0 + a1), sb = Vector512.Sum(b0 + b1);
        for (; i < x.Length; i++)
        {
            sa += gy[i];
            sb += gy[i] * (x[i] - mean);
        }
        return (sa, sb);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AffineGradPlane(ReadOnlySpan<float> gy, ReadOnlySpan<float> x, float a, float b, float d, Span<float> gx, bool accumulate)
    {
        ref float gr = ref MemoryMarshal.GetReference(gy), xr = ref MemoryMarshal.GetReference(x), or = ref MemoryMarshal.GetReference(gx);
        Vector512<float> va = Vector512.Create(a), vb = Vector512.Create(b), vd = Vector512.Create(d);
        int i = 0;
        for (; i <= x.Length - 16; i += 16)
        {
            var t = Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref gr, (nuint)i), va,
                Vector512.FusedMultiplyAdd(Vector512.LoadUnsafe(ref xr, (nuint)i), vb, vd));
            if (accumulate) t += Vector512.LoadUnsafe(ref or, (nuint)i);
            t.StoreUnsafe(ref or, (nuint)i);
        }
        for (; i < x.Length; i++)
        {
            float t = MathF.FusedMultiplyAdd(gy[i], a, MathF.FusedMultiplyAdd(x[i], b, d));
            gx[i] = accumulate ? gx[i] + t : t;
        }
    }
}
