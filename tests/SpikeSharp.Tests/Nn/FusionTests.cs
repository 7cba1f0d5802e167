using SpikeSharp.Autograd;
using SpikeSharp.Autograd.Ops;
using SpikeSharp.Conversion;
using SpikeSharp.Models;
using SpikeSharp.Nn;
using SpikeSharp.Snn;
using SpikeSharp.Tensors;
using Xunit;

namespace SpikeSharp.Tests.Nn;

/// <summary>conv → [BN] → [+ shortcut] → IF fused into the convolution must give the same bits as the modules run one by one.</summary>
public class FusionTests
{
    private sealed record Result(float[] Output, List<long[]> Counts, List<float[]> Potentials, List<bool> Fused);

    private static Result Run(SpikingNetwork snn, Tensor x, int steps, bool fuse, bool release)
    {
        var counts = new List<long[]>();
        var monitors = snn.Neurons.Select(n => n.Attach((_, c, _) => counts.Add((long[])c.Clone()))).ToList();
        var arena = new TensorArena { ReleaseIntermediates = release };
        using var scope = arena.Activate();
        snn.Configure(x.Shape[0], steps);
        using var off = fuse ? default(Fusion.Scope?) : Fusion.Off();
        var y = (float[])snn.Run(x, steps).Data.Clone();
        var potentials = snn.IfNeurons.Select(n => (float[])n.Potential!.Clone()).ToList();
        foreach (var m in monitors) m.Dispose();
        return new Result(y, counts, potentials, snn.IfNeurons.Select(n => n.LastCallFused).ToList());
    }

    [Theory]
    [InlineData("resnet20", false)]
    [InlineData("resnet20", true)]
    [InlineData("vgg16", false)]
    [InlineData("vgg16", true)]
    public void FusedConvolutionsGiveTheSameSpikesAsLayerByLayer(string model, bool foldBatchNorm)
    {
        // 16×16 ResNet-20 maps reach 4×4 (the im2col path) and VGG's 32×32 reach 2×2: every kernel's epilogue runs.
        int size = model == "vgg16" ? 32 : 16, steps = 3, batch = 5;
        var net = ModelFactory.Create(new ModelSpec(model, 3, size, size, 10, 0.25f, ActivationSpec.Qcfs(4, 1f)), seed: 4);
        TestUtil.RandomizeBatchNorm(net, 9, betaShift: 0.3f);
        var snn = Converter.Convert(net, new ConversionOptions(FoldBatchNorm: foldBatchNorm));
        var x = new Tensor(TestUtil.Random(2, batch * 3 * size * size).Data, batch, 3, size, size);
        int k = 0;
        foreach (var n in snn.IfNeurons)
        {
            // Vary what the fused path must honour: thresholds, the fire rule, an initial offset and an SRP mask.
            n.Threshold = 0.5f + 0.1f * (k % 5);
            n.Rule = k % 2 == 0 ? FireRule.GreaterOrEqual : FireRule.Greater;
            k++;
        }
        var probe = Run(snn, x, steps, fuse: false, release: false);
        var neurons = snn.IfNeurons.ToList();
        for (int i = 0; i < neurons.Count; i += 3)
        {
            int len = probe.Potentials[i].Length;
            neurons[i].OutputMask = Enumerable.Range(0, len).Select(j => (j * 7 + i) % 5 == 0 ? 0f : 1f).ToArray();
            neurons[i].InitialOffset = Enumerable.Range(0, len).Select(j => 0.01f * ((j * 13) % 17 - 8)).ToArray();
        }

        var plain = Run(snn, x, steps, fuse: false, release: false);
        var fused = Run(snn, x, steps, fuse: true, release: true);

        Assert.All(plain.Fused, f => Assert.False(f));
        // Every neuron after a convolution ran inside it, except the first (its input, the image, is constant over time);
        // VGG's two classifier neurons follow linear layers.
        int classifier = model == "vgg16" ? 2 : 0;
        var expected = fused.Fused.Select((_, i) => i > 0 && i < fused.Fused.Count - classifier).ToList();
        Assert.Equal(expected, fused.Fused);
        Assert.Equal(plain.Output, fused.Output);
        Assert.Equal(plain.Counts.Count, fused.Counts.Count);
        for (int i = 0; i < plain.Counts.Count; i++) Assert.Equal(plain.Counts[i], fused.Counts[i]);
        for (int i = 0; i < plain.Potentials.Count; i++) Assert.Equal(plain.Potentials[i], fused.Potentials[i]);
        Assert.True(plain.Counts.Skip(1).Sum(c => c.Sum()) > 0, "no spikes after the first layer: the test would prove nothing");
    }

    [Theory]
    [InlineData("resnet20")]
    [InlineData("vgg16")]
    public void BatchNormFusedWithActivationTrainsLikeSeparateOps(string model)
    {
        int size = model == "vgg16" ? 32 : 16, batch = 4;
        var x = new Tensor(TestUtil.Random(2, batch * 3 * size * size).Data, batch, 3, size, size);
        int[] labels = [1, 7, 3, 3];
        (Module Net, float[] Output, long Spikes) Step(bool fuse)
        {
            var net = ModelFactory.Create(new ModelSpec(model, 3, size, size, 10, 0.25f, ActivationSpec.Qcfs(4, 1f)), seed: 4);
            using var off = fuse ? default(Fusion.Scope?) : Fusion.Off();
            using var reg = SpikeCountRegularizer.Start(1e-3f);
            using var tape = Tape.Start();
            var y = net.Forward(x);
            tape.Backward(CrossEntropyOp.Forward(y, labels));
            return (net, (float[])y.Value.Data.Clone(), reg.SpikeCount);
        }
        var plain = Step(fuse: false);
        var fused = Step(fuse: true);

        Assert.Equal(plain.Output, fused.Output);
        Assert.Equal(plain.Spikes, fused.Spikes);
        Assert.True(plain.Spikes > 0);
        var fusedParams = fused.Net.NamedParameters().ToDictionary(kv => kv.Key, kv => kv.Value);
        foreach (var (name, p) in plain.Net.NamedParameters())
        {
            float[] expected = p.Grad!.Data, actual = fusedParams[name].Grad!.Data;
            // λ's gradient is summed per image when fused and per chunk otherwise: equal up to rounding. The rest keep their bits.
            if (name.EndsWith("lambda", StringComparison.Ordinal)) Assert.Equal(expected[0], actual[0], 1e-5f * Math.Max(1, Math.Abs(expected[0])));
            else Assert.True(expected.AsSpan().SequenceEqual(actual), $"gradient of {name} differs");
        }
        var fusedState = fused.Net.StateDict().ToDictionary(kv => kv.Key, kv => kv.Value);
        foreach (var (name, t) in plain.Net.StateDict()) Assert.True(t.Data.AsSpan().SequenceEqual(fusedState[name].Data), $"{name} differs");

        // Eval mode (running statistics) gives the same bits too.
        plain.Net.Eval();
        fused.Net.Eval();
        float[] evalPlain;
        using (Fusion.Off()) evalPlain = (float[])plain.Net.Forward(x).Value.Data.Clone();
        Assert.Equal(evalPlain, fused.Net.Forward(x).Value.Data);
    }

    [Theory]
    [InlineData("resnet20", "qcfs", false)]
    [InlineData("resnet20", "qcfs", true)]
    [InlineData("vgg16", "clip", false)]
    [InlineData("cnn-small", "relu", false)]
    [InlineData("resnet18", "qcfs", false)]
    public void AnnInference_ActivationsInsideTheConvolution_GiveTheSameBitsAndRecordings(string model, string activation, bool foldBatchNorm)
    {
        int channels = model == "cnn-small" ? 1 : 3, size = model == "vgg16" ? 32 : 16;
        var net = ModelFactory.Create(new ModelSpec(model, channels, size, size, 10, 0.25f, new ActivationSpec(activation, 4, 1.5f)), seed: 6);
        var rng = new Random(2);
        foreach (var (_, m) in net.NamedModules())
            if (m is BatchNorm bn)
                for (int c = 0; c < bn.Channels; c++) { bn.RunningMean.Data[c] = rng.NextSingle() - 0.5f; bn.RunningVar.Data[c] = 0.5f + rng.NextSingle(); }
        net.Eval();
        if (foldBatchNorm) BatchNormFolding.Fold(net);
        var x = TestUtil.Random(8, 5, channels, size, size);
        (float[] Logits, List<float[]> Recorded) Forward(bool fuse)
        {
            using var off = fuse ? default(Fusion.Scope?) : Fusion.Off();
            using var rec = ActivationRecorder.Start();
            var y = (float[])net.Forward(new Variable(x.Clone())).Value.Data.Clone();
            return (y, net.NamedModules().Where(m => m.Value is Activation).SelectMany(m => rec.Outputs(m.Value)).Select(t => t.Data).ToList());
        }
        var (fused, fusedActs) = Forward(true);
        var (plain, plainActs) = Forward(false);
        Assert.Equal(plain, fused);
        Assert.Equal(plainActs.Count, fusedActs.Count);
        for (int i = 0; i < plainActs.Count; i++) Assert.Equal(plainActs[i], fusedActs[i]);
    }
}
