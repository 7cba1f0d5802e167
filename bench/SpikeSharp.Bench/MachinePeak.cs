using System.Diagnostics;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using SpikeSharp.Tensors;

namespace SpikeSharp.Bench;

/// <summary>
/// This machine's fp32 peak, measured in the run rather than assumed (Zen 4 executes 512-bit FMAs at half Zen 5's
/// rate): every worker of the pool runs independent chains of 512-bit (else 256-bit) FMAs, enough chains to cover the
/// FMA latency on two pipes; the best of several rounds counts.
/// </summary>
public static class MachinePeak
{
    private const int Chains = 12, Iterations = 20_000_000; // about 0.1 s per round on Zen 4

    /// <summary>GFLOP/s of all workers together (one FMA = 2 FLOP per lane).</summary>
    public static double Fp32Gflops(int rounds = 5)
    {
        int workers = WorkerPool.Shared.Count;
        int lanes = Avx512F.IsSupported ? 16 : Fma.IsSupported ? 8 : 0;
        if (lanes == 0) return double.NaN;
        double best = 0;
        var sink = new float[workers];
        for (int round = 0; round < rounds; round++)
        {
            var sw = Stopwatch.StartNew();
            WorkerPool.Shared.For(workers, (w, _) => sink[w] = Avx512F.IsSupported ? Loop512() : Loop256());
            double seconds = sw.Elapsed.TotalSeconds;
            best = Math.Max(best, 2.0 * lanes * Chains * Iterations * workers / seconds / 1e9);
        }
        GC.KeepAlive(sink);
        return best;
    }

    // Twelve independent accumulators: FMA latency 4 cycles × 2 pipes needs at least 8 in flight.
    private static float Loop512()
    {
        var a = Vector512.Create(0.999f);
        var b = Vector512.Create(1e-7f);
        Vector512<float> c0 = a, c1 = a, c2 = a, c3 = a, c4 = a, c5 = a, c6 = a, c7 = a, c8 = a, c9 = a, c10 = a, c11 = a;
        for (int i = 0; i < Iterations; i++)
        {
            c0 = Avx512F.FusedMultiplyAdd(c0, a, b); c1 = Avx512F.FusedMultiplyAdd(c1, a, b);
            c2 = Avx512F.FusedMultiplyAdd(c2, a, b); c3 = Avx512F.FusedMultiplyAdd(c3, a, b);
            c4 = Avx512F.FusedMultiplyAdd(c4, a, b); c5 = Avx512F.FusedMultiplyAdd(c5, a, b);
            c6 = Avx512F.FusedMultiplyAdd(c6, a, b); c7 = Avx512F.FusedMultiplyAdd(c7, a, b);
            c8 = Avx512F.FusedMultiplyAdd(c8, a, b); c9 = Avx512F.FusedMultiplyAdd(c9, a, b);
            c10 = Avx512F.FusedMultiplyAdd(c10, a, b); c11 = Avx512F.FusedMultiplyAdd(c11, a, b);
        }
        return (c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11).ToScalar();
    }

    private static float Loop256()
    {
        var a = Vector256.Create(0.999f);
        var b = Vector256.Create(1e-7f);
        Vector256<float> c0 = a, c1 = a, c2 = a, c3 = a, c4 = a, c5 = a, c6 = a, c7 = a, c8 = a, c9 = a, c10 = a, c11 = a;
        for (int i = 0; i < Iterations; i++)
        {
            c0 = Fma.MultiplyAdd(c0, a, b); c1 = Fma.MultiplyAdd(c1, a, b); c2 = Fma.MultiplyAdd(c2, a, b); c3 = Fma.MultiplyAdd(c3, a, b);
            c4 = Fma.MultiplyAdd(c4, a, b); c5 = Fma.MultiplyAdd(c5, a, b); c6 = Fma.MultiplyAdd(c6, a, b); c7 = Fma.MultiplyAdd(c7, a, b);
            c8 = Fma.MultiplyAdd(c8, a, b); c9 = Fma.MultiplyAdd(c9, a, b); c10 = Fma.MultiplyAdd(c10, a, b); c11 = Fma.MultiplyAdd(c11, a, b);
        }
        return (c0 + c1 + c2 + c3 + c4 + c5 + c6 + c7 + c8 + c9 + c10 + c11).ToScalar();
    }
}
