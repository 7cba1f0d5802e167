using SpikeSharp.Tensors;
using Xunit;

namespace SpikeSharp.Tests.Tensors;

public unsafe class GemmTests
{
    private static float[] Naive(bool ta, bool tb, int m, int n, int k, float[] a, int lda, float[] b, int ldb)
    {
        var c = new float[m * n];
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double s = 0;
                for (int p = 0; p < k; p++) s += (double)(ta ? a[p * lda + i] : a[i * lda + p]) * (tb ? b[j * ldb + p] : b[p * ldb + j]);
                c[i * n + j] = (float)s;
            }
        return c;
    }

    public static IEnumerable<object[]> Cases()
    {
        foreach (var path in new[] { Gemm.KernelPath.Vector512, Gemm.KernelPath.Vector256, Gemm.KernelPath.Scalar })
            foreach (var (m, n, k) in new[] { (1, 1, 1), (7, 33, 5), (8, 32, 256), (9, 65, 257), (17, 31, 300), (40, 70, 3) })
                foreach (bool ta in new[] { false, true })
                    foreach (bool tb in new[] { false, true })
                        yield return new object[] { path, m, n, k, ta, tb };
    }

    [SkippableTheory]
    [MemberData(nameof(Cases))]
    public void MatchesNaiveOnEveryPath(Gemm.KernelPath path, int m, int n, int k, bool ta, bool tb)
    {
        Skip.If(path == Gemm.KernelPath.Vector512 && !System.Runtime.Intrinsics.Vector512.IsHardwareAccelerated, "no AVX-512 on this CPU");
        int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 1;
        var a = TestUtil.Random(1, (ta ? k : m) * lda).Data;
        var b = TestUtil.Random(2, (tb ? n : k) * ldb).Data;
        var expected = Naive(ta, tb, m, n, k, a, lda, b, ldb);
        var c = TestUtil.Random(3, m * n).Data;
        var initial = (float[])c.Clone();
        fixed (float* pa = a, pb = b, pc = c)
            Gemm.Run(ta, tb, m, n, k, pa, lda, pb, ldb, pc, n, accumulate: true, path);
        for (int i = 0; i < expected.Length; i++) expected[i] += initial[i];
        TestUtil.AssertClose(expected, c, 1e-4, 1e-4, $"{path} {m}x{n}x{k}");
        fixed (float* pa = a, pb = b, pc = c)
            Gemm.Run(ta, tb, m, n, k, pa, lda, pb, ldb, pc, n, accumulate: false, path);
        TestUtil.AssertClose(Naive(ta, tb, m, n, k, a, lda, b, ldb), c, 1e-4, 1e-4, $"{path} overwrite");
    }

    [Fact]
    public void ParallelMatchesSerial()
    {
        int m = 70, n = 300, k = 129;
        var a = TestUtil.Random(1, m * k).Data;
        var b = TestUtil.Random(2, n * k).Data;
        var c1 = new float[m * n];
        var c2 = new float[m * n];
        Gemm.Multiply(false, true, m, n, k, a, k, b, k, c1, n);
        Gemm.MultiplyParallel(false, true, m, n, k, a, k, b, k, c2, n);
        Assert.Equal(c1, c2);
    }

    [Fact]
    public void RejectsTooShortBuffers()
    {
        Assert.Throws<ArgumentException>(() => Gemm.Multiply(false, false, 4, 4, 4, new float[15], 4, new float[16], 4, new float[16], 4));
    }
}
