using SpikeSharp.Tensors;
using Xunit;

namespace SpikeSharp.Tests;

/// <summary>Shared helpers: seeded random tensors and one closeness assertion that reports the worst element.</summary>
public static class TestUtil
{
    /// <summary>Runs /usr/bin/python3 (Debian's, as the tools/ scripts expect) and returns its exit code and output.</summary>
    public static (int Code, string Output) Python(params string[] args)
    {
        var psi = new System.Diagnostics.ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = System.Diagnostics.Process.Start(psi)!;
        var err = p.StandardError.ReadToEndAsync();
        string output = p.StandardOutput.ReadToEnd();
        p.WaitForExit();
        return (p.ExitCode, output + err.Result);
    }

    public static Tensor Random(int seed, params int[] shape) => RandomRange(seed, -1f, 1f, shape);

    public static Tensor RandomRange(int seed, float lo, float hi, params int[] shape)
    {
        var rng = new Random(seed);
        var t = new Tensor(shape);
        for (int i = 0; i < t.Length; i++) t.Data[i] = lo + (hi - lo) * rng.NextSingle();
        return t;
    }

    public static void AssertClose(ReadOnlySpan<float> expected, ReadOnlySpan<float> actual, double atol = 1e-5, double rtol = 1e-4, string what = "")
    {
        Assert.True(expected.Length == actual.Length, $"{what}: length {actual.Length}, expected {expected.Length}");
        double worst = 0;
        int at = -1;
        for (int i = 0; i < expected.Length; i++)
        {
            double diff = Math.Abs(expected[i] - actual[i]);
            double excess = diff - (atol + rtol * Math.Abs(expected[i]));
            if (excess > worst || double.IsNaN(diff)) { worst = double.IsNaN(diff) ? double.PositiveInfinity : excess; at = i; }
        }
        Assert.True(at < 0, at < 0 ? "" : $"{what}: element {at} is {actual[at]}, expected {expected[at]} (atol {atol}, rtol {rtol})");
    }
}
