using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace SpikeSharp.Tensors;

/// <summary>
/// Single-precision matrix multiply C = op(A)·op(B) (or C += …), row-major, packed and register-blocked
/// (BLIS loop order: NC → KC → MC → NR → MR). The micro-kernel computes an MR×NR = 8×32 tile in sixteen
/// Vector512 accumulators; Vector256 and scalar kernels use the same packed layout. The kernel path is chosen
/// once at start-up. <see cref="Multiply"/> is single-threaded (callers parallelize over images);
/// <see cref="MultiplyParallel"/> splits the output over the worker pool.
/// </summary>
public static unsafe class Gemm
{
    public const int MR = 8, NR = 32, KC = 256, MC = 256, NC = 4096;

    /// <summary>A leading dimension of at least n that avoids multiples of 1 KiB, which make consecutive
    /// rows alias in the cache (measured: 120 vs 180 GFLOP/s for a 1024-wide B).</summary>
    public static int PaddedLeadingDimension(int n)
    {
        int ld = (n + 15) & ~15;
        return ld % 256 == 0 ? ld + 16 : ld;
    }

    /// <summary>Which micro-kernel runs; tests force each path.</summary>
    public enum KernelPath { Vector512, Vector256, Scalar }

    internal static readonly KernelPath DefaultPath =
        Vector512.IsHardwareAccelerated ? KernelPath.Vector512 :
        Vector256.IsHardwareAccelerated ? KernelPath.Vector256 : KernelPath.Scalar;

    [ThreadStatic] private static float[]? t_packA, t_packB;

    /// <summary>C[M×N] (=|+=) op(A)[M×K] · op(B)[K×N]. op(A) is A or Aᵀ as stored row-major with leading
    /// dimension lda (A is M×K, or K×M when transposed); likewise B. accumulate=false overwrites C.</summary>
    public static void Multiply(bool transA, bool transB, int M, int N, int K,
        ReadOnlySpan<float> a, int lda, ReadOnlySpan<float> b, int ldb, Span<float> c, int ldc, bool accumulate = false)
    {
        if (M <= 0 || N <= 0) return;
        CheckExtent(a.Length, transA ? K : M, transA ? M : K, lda, "A");
        CheckExtent(b.Length, transB ? N : K, transB ? K : N, ldb, "B");
        CheckExtent(c.Length, M, N, ldc, "C");
        fixed (float* pa = a, pb = b, pc = c)
            Run(transA, transB, M, N, K, pa, lda, pb, ldb, pc, ldc, accumulate, DefaultPath);
    }

    /// <summary>As <see cref="Multiply"/>, with the output split into column (or row) blocks over the workers.</summary>
    public static void MultiplyParallel(bool transA, bool transB, int M, int N, int K,
        float[] a, int lda, float[] b, int ldb, float[] c, int ldc, bool accumulate = false, WorkerPool? pool = null)
    {
        pool ??= WorkerPool.Shared;
        if (M <= 0 || N <= 0) return;
        CheckExtent(a.Length, transA ? K : M, transA ? M : K, lda, "A");
        CheckExtent(b.Length, transB ? N : K, transB ? K : N, ldb, "B");
        CheckExtent(c.Length, M, N, ldc, "C");
        long flops = 2L * M * N * K;
        int workers = flops < 2_000_000 ? 1 : pool.Count;
        if (workers == 1) { Multiply(transA, transB, M, N, K, a, lda, b, ldb, c, ldc, accumulate); return; }
        // Split the larger output dimension in multiples of the tile size.
        bool splitN = N >= M || N >= workers * NR * 2;
        int tile = splitN ? NR : MR;
        int extent = splitN ? N : M;
        // One chunk per worker: each chunk packs its own copy of the shared operand.
        int chunks = Math.Min(workers, Math.Max(1, extent / tile));
        int per = (extent + chunks - 1) / chunks;
        per = (per + tile - 1) / tile * tile;
        chunks = (extent + per - 1) / per;
        pool.For(chunks, (i, _) =>
        {
            int s = i * per, e = Math.Min(extent, s + per);
            fixed (float* pa = a, pb = b, pc = c)
            {
                if (splitN)
                    Run(transA, transB, M, e - s, K, pa, lda, pb + (transB ? (long)s * ldb : s), ldb, pc + s, ldc, accumulate, DefaultPath);
                else
                    Run(transA, transB, e - s, N, K, pa + (transA ? s : (long)s * lda), lda, pb, ldb, pc + (long)s * ldc, ldc, accumulate, DefaultPath);
            }
        });
    }

    private static void CheckExtent(int length, int rows, int cols, int ld, string name)
    {
        if (rows == 0 || cols == 0) return;
        if (ld < cols) throw new ArgumentException($"leading dimension of {name} ({ld}) < its column count ({cols})");
        if ((long)(rows - 1) * ld + cols > length) throw new ArgumentException($"{name} has {length} elements, needs {(long)(rows - 1) * ld + cols}");
    }

    internal static void Run(bool transA, bool transB, int M, int N, int K, float* a, int lda, float* b, int ldb,
        float* c, int ldc, bool accumulate, KernelPath path)
    {
        if (K <= 0)
        {
            if (!accumulate)
                for (int i = 0; i < M; i++) new Span<float>(c + (long)i * ldc, N).Clear();
            return;
        }
        t_packA ??= GC.AllocateUninitializedArray<float>(MC * KC + 16, pinned: true);
        t_packB ??= GC.AllocateUninitializedArray<float>(KC * NC + 16, pinned: true);
        fixed (float* packA0 = t_packA, packB0 = t_packB)
        {
            float* packA = Align64(packA0), packB = Align64(packB0);
            for (int jc = 0; jc < N; jc += NC)
            {
                int nc = Math.Min(NC, N - jc);
                for (int pc = 0; pc < K; pc += KC)
                {
                    int kc = Math.Min(KC, K - pc);
                    bool acc = accumulate || pc > 0;
                    PackB(transB, b, ldb, pc, kc, jc, nc, packB);
                    for (int ic = 0; ic < M; ic += MC)
                    {
                        int mc = Math.Min(MC, M - ic);
                        PackA(transA, a, lda, ic, mc, pc, kc, packA);
                        for (int jr = 0; jr < nc; jr += NR)
                        {
                            int cols = Math.Min(NR, nc - jr);
                            float* bp = packB + (long)jr * kc;
                            for (int ir = 0; ir < mc; ir += MR)
                            {
                                int rows = Math.Min(MR, mc - ir);
                                float* ap = packA + (long)ir * kc;
                                float* cp = c + (long)(ic + ir) * ldc + jc + jr;
                                switch (path)
                                {
                                    case KernelPath.Vector512: Kernel512(kc, ap, bp, cp, ldc, rows, cols, acc); break;
                                    case KernelPath.Vector256: Kernel256(kc, ap, bp, cp, ldc, rows, cols, acc); break;
                                    default: KernelScalar(kc, ap, bp, cp, ldc, rows, cols, acc); break;
                                }
                            }
                        }
                    }
                }
            }
        }
    }

    private static float* Align64(float* p) => (float*)(((nint)p + 63) & ~(nint)63);

    /// <summary>Packs op(A)[ic..ic+mc, pc..pc+kc] into MR-row panels: panel r holds kc groups of MR floats
    /// (one per row), zero-padded past mc.</summary>
    private static void PackA(bool trans, float* a, int lda, int ic, int mc, int pc, int kc, float* dst)
    {
        for (int ir = 0; ir < mc; ir += MR)
        {
            int rows = Math.Min(MR, mc - ir);
            float* d = dst + (long)ir * kc;
            if (trans)
            {
                // op(A)[i,p] = a[p*lda + i]: MR consecutive rows are contiguous in memory.
                float* s = a + (long)pc * lda + ic + ir;
                if (rows == MR)
                    for (int p = 0; p < kc; p++, s += lda, d += MR) Vector256.Store(Vector256.Load(s), d);
                else
                    for (int p = 0; p < kc; p++, s += lda, d += MR)
                        for (int r = 0; r < MR; r++) d[r] = r < rows ? s[r] : 0f;
            }
            else
            {
                float* s = a + (long)(ic + ir) * lda + pc;
                for (int r = 0; r < MR; r++)
                {
                    float* row = s + (long)r * lda;
                    if (r < rows) for (int p = 0; p < kc; p++) d[p * MR + r] = row[p];
                    else for (int p = 0; p < kc; p++) d[p * MR + r] = 0f;
                }
            }
        }
    }

    /// <summary>Packs op(B)[pc..pc+kc, jc..jc+nc] into NR-column panels: panel j holds kc rows of NR floats,
    /// zero-padded past nc.</summary>
    private static void PackB(bool trans, float* b, int ldb, int pc, int kc, int jc, int nc, float* dst)
    {
        for (int jr = 0; jr < nc; jr += NR)
        {
            int cols = Math.Min(NR, nc - jr);
            float* d = dst + (long)jr * kc;
            if (!trans)
            {
                float* s = b + (long)pc * ldb + jc + jr;
                if (cols == NR && Vector512.IsHardwareAccelerated)
                    for (int p = 0; p < kc; p++, s += ldb, d += NR)
                    {
                        Vector512.Store(Vector512.Load(s), d);
                        Vector512.Store(Vector512.Load(s + 16), d + 16);
                    }
                else
                    for (int p = 0; p < kc; p++, s += ldb, d += NR)
                    {
                        int q = 0;
                        for (; q < cols; q++) d[q] = s[q];
                        for (; q < NR; q++) d[q] = 0f;
                    }
            }
            else
            {
                // op(B)[p,j] = b[j*ldb + p]: each output column is a contiguous source row.
                for (int q = 0; q < NR; q++)
                {
                    if (q < cols)
                    {
                        float* s = b + (long)(jc + jr + q) * ldb + pc;
                        for (int p = 0; p < kc; p++) d[p * NR + q] = s[p];
                    }
                    else for (int p = 0; p < kc; p++) d[p * NR + q] = 0f;
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Kernel512(int kc, float* a, float* b, float* c, int ldc, int rows, int cols, bool accumulate)
    {
        Vector512<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default,
            c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default,
            c60 = default, c61 = default, c70 = default, c71 = default;
        for (int p = 0; p < kc; p++)
        {
            var b0 = Vector512.Load(b);
            var b1 = Vector512.Load(b + 16);
            var av = Vector512.Create(a[0]); c00 = Vector512.FusedMultiplyAdd(av, b0, c00); c01 = Vector512.FusedMultiplyAdd(av, b1, c01);
            av = Vector512.Create(a[1]); c10 = Vector512.FusedMultiplyAdd(av, b0, c10); c11 = Vector512.FusedMultiplyAdd(av, b1, c11);
            av = Vector512.Create(a[2]); c20 = Vector512.FusedMultiplyAdd(av, b0, c20); c21 = Vector512.FusedMultiplyAdd(av, b1, c21);
            av = Vector512.Create(a[3]); c30 = Vector512.FusedMultiplyAdd(av, b0, c30); c31 = Vector512.FusedMultiplyAdd(av, b1, c31);
            av = Vector512.Create(a[4]); c40 = Vector512.FusedMultiplyAdd(av, b0, c40); c41 = Vector512.FusedMultiplyAdd(av, b1, c41);
            av = Vector512.Create(a[5]); c50 = Vector512.FusedMultiplyAdd(av, b0, c50); c51 = Vector512.FusedMultiplyAdd(av, b1, c51);
            av = Vector512.Create(a[6]); c60 = Vector512.FusedMultiplyAdd(av, b0, c60); c61 = Vector512.FusedMultiplyAdd(av, b1, c61);
            av = Vector512.Create(a[7]); c70 = Vector512.FusedMultiplyAdd(av, b0, c70); c71 = Vector512.FusedMultiplyAdd(av, b1, c71);
            a += MR;
            b += NR;
        }
        if (rows == MR && cols == NR)
        {
            Store512(c, c00, c01, accumulate); Store512(c + ldc, c10, c11, accumulate);
            Store512(c + 2 * ldc, c20, c21, accumulate); Store512(c + 3 * ldc, c30, c31, accumulate);
            Store512(c + 4 * ldc, c40, c41, accumulate); Store512(c + 5 * ldc, c50, c51, accumulate);
            Store512(c + 6 * ldc, c60, c61, accumulate); Store512(c + 7 * ldc, c70, c71, accumulate);
            return;
        }
        float* tile = stackalloc float[MR * NR];
        c00.Store(tile); c01.Store(tile + 16); c10.Store(tile + 32); c11.Store(tile + 48);
        c20.Store(tile + 64); c21.Store(tile + 80); c30.Store(tile + 96); c31.Store(tile + 112);
        c40.Store(tile + 128); c41.Store(tile + 144); c50.Store(tile + 160); c51.Store(tile + 176);
        c60.Store(tile + 192); c61.Store(tile + 208); c70.Store(tile + 224); c71.Store(tile + 240);
        StoreTile(tile, c, ldc, rows, cols, accumulate);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void Store512(float* c, Vector512<float> lo, Vector512<float> hi, bool accumulate)
    {
        if (accumulate) { lo += Vector512.Load(c); hi += Vector512.Load(c + 16); }
        lo.Store(c);
        hi.Store(c + 16);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static void Kernel256(int kc, float* a, float* b, float* c, int ldc, int rows, int cols, bool accumulate)
    {
        // Two passes over the packed panels, 16 columns each, to stay within sixteen 256-bit registers.
        float* tile = stackalloc float[MR * NR];
        for (int half = 0; half < 2; half++)
        {
            Vector256<float> c00 = default, c01 = default, c10 = default, c11 = default, c20 = default, c21 = default,
                c30 = default, c31 = default, c40 = default, c41 = default, c50 = default, c51 = default,
                c60 = default, c61 = default, c70 = default, c71 = default;
            float* ap = a, bp = b + half * 16;
            for (int p = 0; p < kc; p++, ap += MR, bp += NR)
            {
                var b0 = Vector256.Load(bp);
                var b1 = Vector256.Load(bp + 8);
                var av = Vector256.Create(ap[0]); c00 = Vector256.FusedMultiplyAdd(av, b0, c00); c01 = Vector256.FusedMultiplyAdd(av, b1, c01);
                av = Vector256.Create(ap[1]); c10 = Vector256.FusedMultiplyAdd(av, b0, c10); c11 = Vector256.FusedMultiplyAdd(av, b1, c11);
                av = Vector256.Create(ap[2]); c20 = Vector256.FusedMultiplyAdd(av, b0, c20); c21 = Vector256.FusedMultiplyAdd(av, b1, c21);
                av = Vector256.Create(ap[3]); c30 = Vector256.FusedMultiplyAdd(av, b0, c30); c31 = Vector256.FusedMultiplyAdd(av, b1, c31);
                av = Vector256.Create(ap[4]); c40 = Vector256.FusedMultiplyAdd(av, b0, c40); c41 = Vector256.FusedMultiplyAdd(av, b1, c41);
                av = Vector256.Create(ap[5]); c50 = Vector256.FusedMultiplyAdd(av, b0, c50); c51 = Vector256.FusedMultiplyAdd(av, b1, c51);
                av = Vector256.Create(ap[6]); c60 = Vector256.FusedMultiplyAdd(av, b0, c60); c61 = Vector256.FusedMultiplyAdd(av, b1, c61);
                av = Vector256.Create(ap[7]); c70 = Vector256.FusedMultiplyAdd(av, b0, c70); c71 = Vector256.FusedMultiplyAdd(av, b1, c71);
            }
            float* t = tile + half * 16;
            c00.Store(t); c01.Store(t + 8); c10.Store(t + 32); c11.Store(t + 40);
            c20.Store(t + 64); c21.Store(t + 72); c30.Store(t + 96); c31.Store(t + 104);
            c40.Store(t + 128); c41.Store(t + 136); c50.Store(t + 160); c51.Store(t + 168);
            c60.Store(t + 192); c61.Store(t + 200); c70.Store(t + 224); c71.Store(t + 232);
        }
        StoreTile(tile, c, ldc, rows, cols, accumulate);
    }

    internal static void KernelScalar(int kc, float* a, float* b, float* c, int ldc, int rows, int cols, bool accumulate)
    {
        float* tile = stackalloc float[MR * NR];
        new Span<float>(tile, MR * NR).Clear();
        for (int p = 0; p < kc; p++, a += MR, b += NR)
            for (int r = 0; r < MR; r++)
            {
                float ar = a[r];
                float* trow = tile + r * NR;
                for (int q = 0; q < NR; q++) trow[q] = MathF.FusedMultiplyAdd(ar, b[q], trow[q]);
            }
        StoreTile(tile, c, ldc, rows, cols, accumulate);
    }

    private static void StoreTile(float* tile, float* c, int ldc, int rows, int cols, bool accumulate)
    {
        for (int r = 0; r < rows; r++)
        {
            float* crow = c + (long)r * ldc, trow = tile + r * NR;
            if (accumulate) for (int q = 0; q < cols; q++) crow[q] += trow[q];
            else for (int q = 0; q < cols; q++) crow[q] = trow[q];
        }
    }
}
