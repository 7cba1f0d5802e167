// Small random networks and datasets for comparing the production simulator with ReferenceSnn. Every weight, bias, BN
// parameter, threshold and input is dyadic (a multiple of a small power of two, BN's σ a power of two), so float32 and
// float64 compute every membrane potential exactly: spikes must then agree bit for bit, ties (m = θ) included.
using SpikeSharp.Data;
using SpikeSharp.Graphs;
using SpikeSharp.Models;
using SpikeSharp.Nn;
using SpikeSharp.Tensors;

namespace SpikeSharp.Tests.Snn;

internal static class ReferenceNets
{
    /// <summary>A random conv/pool/residual/linear QCFS network for [c, size, size] inputs and k classes, as a graph (a
    /// residual block's shortcut written before or after its branch, so the planner's scheduling is exercised both ways).
    /// Layers have 2–5 channels, or with <paramref name="width"/> &gt; 0 multiples of it (16: the spike-table
    /// convolution's blocks), from the same random draws.</summary>
    public static Module Random(int seed, int c, int size, int classes, int width = 0)
    {
        var rng = new Random(seed);
        var act = ActivationSpec.Qcfs(4, 1f);
        var g = new GraphBuilder(c, size, size);
        int Channels(int narrow) => width > 0 ? width * (narrow - 1) : narrow; // 2, 3, 4 → 1, 2, 3 widths
        int ch = Channels(2 + rng.Next(3));
        var x = g.Conv("conv1", g.Input, ch, 3, 1, 1, bias: rng.Next(2) == 0);
        if (rng.Next(2) == 0) x = g.BatchNorm("bn1", x);
        x = g.Activation("act1", x, act);
        int blocks = 1 + rng.Next(3);
        for (int b = 0; b < blocks; b++)
        {
            string p = $"block{b}.";
            switch (rng.Next(4))
            {
                case 0 when size >= 4:
                    x = g.AvgPool(p + "pool", x, 2);
                    size /= 2;
                    break;
                case 1 or 2:
                {
                    int stride = size >= 4 && rng.Next(2) == 0 ? 2 : 1, outC = ch + rng.Next(2) * Math.Max(1, width);
                    string Shortcut() => stride != 1 || ch != outC
                        ? g.BatchNorm(p + "shortcut.1", g.Conv(p + "shortcut.0", x, outC, 1, stride, 0, bias: false)) : x;
                    bool shortcutFirst = rng.Next(2) == 0;
                    var sc = shortcutFirst ? Shortcut() : null;
                    var r = g.Activation(p + "act1", g.BatchNorm(p + "bn1", g.Conv(p + "conv1", x, outC, 3, stride, 1, bias: false)), act);
                    r = g.BatchNorm(p + "bn2", g.Conv(p + "conv2", r, outC, 3, 1, 1, bias: false));
                    sc ??= Shortcut();
                    x = g.Activation(p + "act2", g.AddNodes(p + "add", r, sc), act);
                    (ch, size) = (outC, stride == 2 ? size / 2 : size);
                    break;
                }
                default:
                {
                    int outC = Channels(2 + rng.Next(3)), k = rng.Next(2) == 0 ? 1 : 3;
                    x = g.Activation(p + "act", g.Conv(p + "conv", x, outC, k, 1, k / 2), act);
                    ch = outC;
                    break;
                }
            }
        }
        if (rng.Next(2) == 0) x = g.Linear("fc", g.GlobalAvgPool("pool", x), classes);
        else
        {
            int hidden = 4 + rng.Next(5);
            x = g.Linear("fc2", g.Activation("fc1.act", g.Linear("fc1", g.Flatten("flatten", x), hidden), act), classes);
        }
        var net = new GraphModel(g.Build(x), act, seed);
        MakeDyadic(net, seed, powerOfTwoThresholds: false);
        return net;
    }

    /// <summary>Replaces every parameter by a dyadic value: weights ≈ N(0, 1.6²/fan-in) on a 1/32 grid, biases on a 1/16
    /// grid, thresholds from {¼, ½, ¾, 1, 1½} (or powers of two, which COS's normalized units need to stay exact), BN with
    /// γ ∈ {½, 1, 2}, β and μ on a 1/8 grid and var + ε (in float32) ∈ {¼, 1, 4}.</summary>
    public static void MakeDyadic(Module model, int seed, bool powerOfTwoThresholds)
    {
        var rng = new Random(seed * 31 + 7);
        float[] thetas = powerOfTwoThresholds ? [0.25f, 0.5f, 1f] : [0.25f, 0.5f, 0.75f, 1f, 1.5f];
        foreach (var (name, m) in model.NamedModules())
        {
            switch (m)
            {
                case Conv2d conv: Fill(conv.Weight.Value, conv.InChannels * conv.KernelSize * conv.KernelSize, rng); if (conv.Bias is { } cb) Grid(cb.Value, 16, 0.25, rng); break;
                case Linear fc: Fill(fc.Weight.Value, fc.InFeatures, rng); if (fc.Bias is { } lb) Grid(lb.Value, 16, 0.25, rng); break;
                case BatchNorm bn:
                    for (int i = 0; i < bn.Channels; i++)
                    {
                        bn.Weight.Value.Data[i] = new[] { 0.5f, 1f, 2f }[rng.Next(3)];
                        bn.Bias.Value.Data[i] = rng.Next(-2, 3) / 8f;
                        bn.RunningMean.Data[i] = rng.Next(-2, 3) / 8f;
                        bn.RunningVar.Data[i] = VarianceFor(new[] { 0.25f, 1f, 4f }[rng.Next(3)], bn.Eps);
                    }
                    break;
                case Activation { Lambda: { } l }: l.Value.Data[0] = thetas[rng.Next(thetas.Length)]; break;
            }
        }
    }

    /// <summary>A float32 var with var + ε == target exactly, so σ is a power of two in float32 and in float64.</summary>
    private static float VarianceFor(float target, float eps)
    {
        float v = target - eps;
        while (v + eps > target) v = MathF.BitDecrement(v);
        while (v + eps < target) v = MathF.BitIncrement(v);
        return v + eps == target ? v : throw new InvalidOperationException($"no float32 var with var + {eps} = {target}");
    }

    private static void Fill(Tensor w, int fanIn, Random rng)
    {
        double std = 1.6 / Math.Sqrt(fanIn);
        for (int i = 0; i < w.Length; i++)
        {
            double g = Math.Sqrt(-2 * Math.Log(1 - rng.NextDouble())) * Math.Cos(2 * Math.PI * rng.NextDouble());
            w.Data[i] = (float)(Math.Round(g * std * 32) / 32);
        }
    }

    private static void Grid(Tensor t, int denominator, double range, Random rng)
    {
        int max = (int)(range * denominator);
        for (int i = 0; i < t.Length; i++) t.Data[i] = rng.Next(-max, max + 1) / (float)denominator;
    }

    /// <summary>Images with pixels 0 or 255, so normalization (mean ½, std ½) gives inputs of exactly −1 or +1.</summary>
    public static (ImageDataset Data, float[][] Inputs, TransformSpec Transform) Images(int seed, int count, int c, int size, int classes)
    {
        var rng = new Random(seed + 1000);
        var pixels = new byte[count * c * size * size];
        for (int i = 0; i < pixels.Length; i++) pixels[i] = rng.Next(3) == 0 ? (byte)255 : (byte)0;
        var labels = Enumerable.Range(0, count).Select(_ => rng.Next(classes)).ToArray();
        var data = new ImageDataset("dyadic", pixels, labels, c, size, size, classes);
        var inputs = Enumerable.Range(0, count)
            .Select(b => pixels.AsSpan(b * c * size * size, c * size * size).ToArray().Select(p => p == 255 ? 1f : -1f).ToArray()).ToArray();
        var norm = new Normalization(Enumerable.Repeat(0.5f, c).ToArray(), Enumerable.Repeat(0.5f, c).ToArray());
        return (data, inputs, TransformSpec.ForEval(c, size, size, norm));
    }

    /// <summary>The images of a dataset as one [N, C, H, W] batch tensor (for calling a method's Simulate directly).</summary>
    public static Tensor Batch(float[][] inputs, int c, int size)
    {
        var t = new Tensor(inputs.Length, c, size, size);
        for (int b = 0; b < inputs.Length; b++) inputs[b].CopyTo(t.Data, b * inputs[b].Length);
        return t;
    }
}
