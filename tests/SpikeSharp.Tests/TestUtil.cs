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

    /// <summary>How many neurons' unit-spike counts over <paramref name="steps"/> steps (Σ_t round(|output|/unit), a
    /// signed spike counting one) differ from <paramref name="expected"/>; the output is [T·B, …], step-major.</summary>
    public static int SpikeCountMismatches(Tensor expected, Tensor output, int steps, float unit)
    {
        int per = expected.Length, mismatches = 0;
        if ((long)per * steps != output.Length) throw new Xunit.Sdk.XunitException($"{output.Length} outputs over {steps} steps, expected {per} neurons");
        for (int i = 0; i < per; i++)
        {
            float count = 0;
            for (int t = 0; t < steps; t++) count += MathF.Round(MathF.Abs(output.Data[t * per + i]) / unit);
            if (count != expected.Data[i]) mismatches++;
        }
        return mismatches;
    }

    /// <summary>The SNN's output [T·B, K] averaged over the steps: [B, K].</summary>
    public static float[] MeanOverSteps(Tensor output, int steps)
    {
        int n = output.Length / steps;
        var mean = new float[n];
        for (int t = 0; t < steps; t++) TensorPrimitives.Add(mean, output.Data.AsSpan(t * n, n), mean);
        TensorPrimitives.Multiply(mean, 1f / steps, mean);
        return mean;
    }

    /// <summary>Gives every BN of <paramref name="model"/> non-trivial statistics: γ in [0.5, 1.5), β in
    /// [−<paramref name="betaShift"/>, 1 − betaShift), μ in [−0.5, 0.5), var in [0.5, 1.5), drawn per channel in module order.</summary>
    public static void RandomizeBatchNorm(SpikeSharp.Nn.Module model, int seed, float betaShift = 0.5f)
    {
        var rng = new Random(seed);
        foreach (var bn in model.NamedModules().Select(m => m.Value).OfType<SpikeSharp.Nn.BatchNorm>())
            for (int c = 0; c < bn.Channels; c++)
            {
                bn.Weight.Value.Data[c] = 0.5f + rng.NextSingle();
                bn.Bias.Value.Data[c] = rng.NextSingle() - betaShift;
                bn.RunningMean.Data[c] = rng.NextSingle() - 0.5f;
                bn.RunningVar.Data[c] = 0.5f + rng.NextSingle();
            }
    }

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
