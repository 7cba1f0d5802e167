using SpikeSharp.Tensors;

namespace SpikeSharp.Nn;

/// <summary>Weight initializers (PyTorch semantics), driven by an explicit seeded generator.</summary>
public static class Init
{
    /// <summary>Kaiming-normal with fan_out and ReLU gain: N(0, 2/fan_out), fan_out = shape[0]·receptive field.</summary>
    public static void KaimingNormalFanOut(Tensor w, Random rng)
    {
        int receptive = w.Rank > 2 ? w.SizeFrom(2) : 1;
        double std = Math.Sqrt(2.0 / (w.Shape[0] * receptive));
        Normal(w, rng, std);
    }

    /// <summary>PyTorch's default for Linear/Conv weights: kaiming_uniform(a=√5) = U(−1/√fan_in, 1/√fan_in).</summary>
    public static void DefaultUniform(Tensor w, Random rng)
    {
        int fanIn = w.SizeFrom(1);
        Uniform(w, rng, 1.0 / Math.Sqrt(fanIn));
    }

    public static void Uniform(Tensor t, Random rng, double bound)
    {
        var d = t.Data;
        for (int i = 0; i < d.Length; i++) d[i] = (float)((rng.NextDouble() * 2 - 1) * bound);
    }

    public static void Normal(Tensor t, Random rng, double std)
    {
        var d = t.Data;
        for (int i = 0; i < d.Length; i++)
        {
            // Box–Muller; one sample per pair keeps the sequence simple to reproduce.
            double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
            d[i] = (float)(std * Math.Sqrt(-2.0 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
        }
    }
}
