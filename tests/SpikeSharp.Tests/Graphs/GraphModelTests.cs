// The graph model: the built-in architectures as graphs start from the weights the old module classes gave, graphs are
// checked when built, serialize, carry through checkpoints, and the planner's max-pool rule holds.
using SpikeSharp.Autograd;
using SpikeSharp.Autograd.Ops;
using SpikeSharp.Conversion;
using SpikeSharp.Graphs;
using SpikeSharp.Interop;
using SpikeSharp.Models;
using SpikeSharp.Nn;
using SpikeSharp.Snn;
using SpikeSharp.Tensors;
using Xunit;

namespace SpikeSharp.Tests.Graphs;

public class GraphModelTests
{
    private static void RandomizeBatchNorm(Module net, int seed) => TestUtil.RandomizeBatchNorm(net, seed, betaShift: 0.3f);

    /// <summary>The built-ins became graphs in session 8; before, module classes built them. Same seed, same initial
    /// weights under the same keys in the same order (SHA-256 of keys and float bits, recorded from the module classes),
    /// so a training run started with a seed before the change starts from the same weights after it.</summary>
    [Theory]
    [InlineData("cnn-small", 1, 28, 0.5f, "69CA22A097E99558809FAE293B50CA4168302E29A816565CA948AC0C8332A4F0")]
    [InlineData("resnet20", 3, 32, 0.5f, "BB94A912FA6BBEB277FDC7CBA97ACF25B0F665A7E5A3956D68163DB6E11FF73D")]
    [InlineData("vgg16", 3, 32, 0.125f, "0BD441CF357D16011B84415A66383A0A3EC8E3A6652BE65AD187A622449F8DAC")]
    [InlineData("resnet18", 3, 32, 0.125f, "5FB04870CD1C5B140A6724F12EE10A7E4A8EF2743DE3690951DA9CDAA29C9AD6")]
    [InlineData("resnet34", 3, 32, 0.125f, "E0A25ABA86D3C898272A8202BFE6FBA54A6D391EF28ED4E1309463B2A460E981")]
    public void BuiltInsStartFromTheWeightsTheModuleClassesGave(string name, int channels, int size, float width, string sha256)
    {
        var model = ModelFactory.Create(new ModelSpec(name, channels, size, size, 10, width, ActivationSpec.Qcfs(4, 8f)), seed: 7);
        var bytes = new List<byte>();
        foreach (var (key, t) in model.StateDict())
        {
            bytes.AddRange(System.Text.Encoding.UTF8.GetBytes(key));
            foreach (var v in t.Data) bytes.AddRange(BitConverter.GetBytes(v));
        }
        Assert.Equal(sha256, Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(bytes.ToArray())));
    }

    /// <summary>The weight-size limit is checked from the built-in's graph before any weight exists: the count is the
    /// largest conv/linear weight (ResNet-20: the 64→64 3×3 convolutions; VGG-16: the 4096→4096 classifier layer).</summary>
    [Fact]
    public void BuiltInsLargestWeightComesFromTheirGraphAndTheLimitHolds()
    {
        Assert.Equal(64L * 64 * 9, new ModelSpec("resnet20", 3, 32, 32, 10).LargestWeightCount());
        Assert.Equal(4096L * 4096, new ModelSpec("vgg16", 3, 32, 32, 10).LargestWeightCount());
        Assert.Equal(64L * 7 * 7 * 128, new ModelSpec("cnn-small", 1, 28, 28, 10).LargestWeightCount());
        var huge = new ModelSpec("vgg16", 3, 4096, 4096, 10, 16f);
        var e = Assert.Throws<SpikeSharpException>(huge.Validate);
        Assert.Contains($"weight tensor of {huge.LargestWeightCount()} elements; expected at most {ModelSpec.MaxWeightCount}", e.Message);
        // Too small for VGG's five halvings: that message, not a graph shape error.
        Assert.Contains("at least 32x32", Assert.Throws<SpikeSharpException>(new ModelSpec("vgg16", 1, 28, 28, 10).Validate).Message);
    }

    [Fact]
    public void GraphJsonRoundTripsAndCheckpointsCarryTheGraph()
    {
        var spec = new ModelSpec("resnet20", 1, 16, 16, 10, 0.25f, ActivationSpec.Qcfs(4, 1f));
        var graph = BuiltinGraphs.Create(spec);
        var again = Graph.Parse(graph.ToJson(), "g.json");
        Assert.Equal(graph.ToJson().ToJsonString(), again.ToJson().ToJsonString());

        using var tmp = new Interop.TempDirectory();
        var model = new GraphModel(graph);
        RandomizeBatchNorm(model, 3);
        new Checkpoint(ModelSpec.For(graph), new DataInfo("mnist", [0.1f], [0.3f]), model).Save(tmp.Combine("ckpt"));
        var loaded = Checkpoint.Load(tmp.Combine("ckpt"));
        Assert.Equal(ModelSpec.GraphName, loaded.Spec.Name);
        Assert.IsType<GraphModel>(loaded.Model);
        Assert.Null(loaded.Spec.Activation); // the nodes keep their own activations
        Assert.Equal("qcfs", loaded.Spec.ActivationOrDefault.Kind);
        var x = new Variable(TestUtil.Random(5, 2, 1, 16, 16));
        model.Eval();
        loaded.Model.Eval();
        Assert.Equal(model.Forward(x).Value.Data, loaded.Model.Forward(x).Value.Data);
        Assert.Contains("\"graph\"", File.ReadAllText(tmp.Combine("ckpt", "model.json")));
    }

    [Theory]
    [InlineData("unknown op", "input", "frobnicate")]
    [InlineData("input 'nowhere' is not the graph input or an earlier node", "nowhere", "conv2d")]
    public void BadNodesNameTheNode(string expected, string input, string op)
    {
        var nodes = new List<GraphNode>
        {
            new GraphNode("c", op, input).With("out_channels", 4).With("kernel", 3),
            new GraphNode("f", "flatten", "c"),
            new GraphNode("fc", "linear", "f").With("out_features", 3),
        };
        var e = Assert.Throws<SpikeSharpException>(() => Graph.Create([1, 8, 8], nodes));
        Assert.Contains(expected, e.Message);
        Assert.Contains("'c'", e.Message);
    }

    [Fact]
    public void ShapesAreCheckedWhenTheGraphIsBuilt()
    {
        var g = new GraphBuilder(1, 8, 8);
        var a = g.Conv("a", g.Input, 4, 3, padding: 1);
        var b = g.Conv("b", g.Input, 4, 3);
        var e = Assert.Throws<SpikeSharpException>(() => g.Build(g.Linear("fc", g.Flatten("f", g.AddNodes("sum", a, b)), 3)));
        Assert.Contains("node 'sum' (add)", e.Message);
        Assert.Contains("[4, 8, 8] and [4, 6, 6]", e.Message);

        var dead = new GraphBuilder(1, 8, 8);
        dead.Conv("unused", dead.Input, 2, 1);
        var ex = Assert.Throws<SpikeSharpException>(() => dead.Build(dead.Linear("fc", dead.Flatten("f", dead.Input), 3)));
        Assert.Contains("'unused' feed nothing", ex.Message);

        var bad = new GraphBuilder(1, 8, 8);
        Assert.Contains("groups 3 must divide", Assert.Throws<SpikeSharpException>(() =>
            bad.Build(bad.Linear("fc", bad.Flatten("f", bad.Conv("c", bad.Input, 6, 3, groups: 3)), 3))).Message);
    }

    [Fact]
    public void SpikingMaxPoolPassesTheUnitWithTheLargestAccumulatedOutput()
    {
        // One 2×2 window, T = 4, θ = 1: a fires at t1, b at t2..t4, c and d never.
        // t1: totals a1 b0 → a: 1. t2: a1 b1, a tie → the first (a): 0. t3: b2 → b: 1. t4: b3 → b: 1. Three spikes,
        // the window's highest rate (b's 3/4).
        float[][] trains = [[1, 0, 0, 0], [0, 1, 1, 1], [0, 0, 0, 0], [0, 0, 0, 0]];
        var x = new Tensor(4, 1, 2, 2);
        for (int t = 0; t < 4; t++)
            for (int u = 0; u < 4; u++) x.Data[t * 4 + u] = trains[u][t];
        var pool = new SpikingMaxPool("p", 2, 2);
        pool.Configure(1, 4);
        Assert.Equal([1f, 0f, 1f, 1f], pool.Forward(new Variable(x)).Value.Data);
    }

    [Fact]
    public void MaxPoolsOfSpikesAreGated_MaxPoolsOfCurrentsStayMaxPools_AndTheAnnRunsAsWritten()
    {
        var g = new GraphBuilder(2, 8, 8);
        var spikes = g.MaxPool("pool.spikes", g.Activation("act", g.BatchNorm("bn", g.Conv("conv", g.Input, 6, 3, padding: 1)), "qcfs", 4, 1f), 2);
        var current = g.MaxPool("pool.current", g.Conv("conv2", spikes, 4, 3, padding: 1), 2);
        var x = g.Activation("act2", g.Linear("fc1", g.Flatten("flat", g.Activation("act3", current, "qcfs", 4, 1f)), 12), "qcfs", 4, 1f);
        var model = new GraphModel(g.Build(g.Linear("fc2", x, 3)));
        RandomizeBatchNorm(model, 2);
        model.Eval();
        var m = model.NamedModules().ToDictionary(kv => kv.Key, kv => kv.Value);
        Assert.Equal(PoolInput.Spikes, ((MaxPool2d)m["pool.spikes"]).Input);
        Assert.Equal(PoolInput.Current, ((MaxPool2d)m["pool.current"]).Input);
        var input = new Variable(TestUtil.Random(7, 3, 2, 8, 8));
        Variable written;
        using (Fusion.Off())
        {
            var h = m["pool.current"].Forward(m["conv2"].Forward(m["pool.spikes"].Forward(m["act"].Forward(m["bn"].Forward(m["conv"].Forward(input))))));
            written = m["fc2"].Forward(m["act2"].Forward(m["fc1"].Forward(m["flat"].Forward(m["act3"].Forward(h)))));
        }
        Assert.Equal(written.Value.Data, model.Forward(input).Value.Data);

        var snn = Converter.Convert(model);
        var converted = model.NamedModules().ToDictionary(kv => kv.Key, kv => kv.Value);
        Assert.IsType<SpikingMaxPool>(converted["pool.spikes"]);
        Assert.IsType<MaxPool2d>(converted["pool.current"]);
        snn.Configure(3, 4);
        Assert.Equal([12, 3], snn.Run(input.Value, 4).Shape);
        snn.RestoreAnn();
        Assert.IsType<MaxPool2d>(model.NamedModules().First(kv => kv.Key == "pool.spikes").Value);
    }

    [Fact]
    public void BatchNormFoldsOnlyIntoTheLayerThatFeedsIt()
    {
        // Two branches interleaved: node order conv a, conv b, BN of b, BN of a. Folding must follow the data.
        var g = new GraphBuilder(1, 6, 6);
        var ca = g.Conv("a", g.Input, 2, 3, padding: 1);
        var cb = g.Conv("b", g.Input, 2, 3, padding: 1);
        var bb = g.BatchNorm("bnb", cb);
        var ba = g.BatchNorm("bna", ca);
        var x = g.Concat("cat", g.Activation("acta", ba, "qcfs", 4, 1f), g.Activation("actb", bb, "qcfs", 4, 1f));
        var model = new GraphModel(g.Build(g.Linear("fc", g.Flatten("f", x), 3)));
        RandomizeBatchNorm(model, 5);
        model.Eval();
        var input = new Variable(TestUtil.Random(3, 2, 1, 6, 6));
        var before = (float[])model.Forward(input).Value.Data.Clone();
        var swaps = BatchNormFolding.Fold(model);
        Assert.Equal(2, swaps.Count); // b and its BN (adjacent and exclusive); 'a' is two nodes away from its BN
        TestUtil.AssertClose(before, model.Forward(input).Value.Data, atol: 1e-5, what: "folded");
        foreach (var s in Enumerable.Reverse(swaps)) s.Undo();
    }

    [Fact]
    public void GroupedConvAndConcatGraphTrainsAndConverts()
    {
        var g = new GraphBuilder(3, 8, 8);
        var stem = g.Activation("stem.act", g.BatchNorm("stem.bn", g.Conv("stem", g.Input, 8, 3, padding: 1, bias: false)), "qcfs", 4, 1f);
        var dw = g.Activation("dw.act", g.BatchNorm("dw.bn", g.Conv("dw", stem, 8, 3, padding: 1, bias: false, groups: 8)), "qcfs", 4, 1f);
        var pw = g.Activation("pw.act", g.BatchNorm("pw.bn", g.Conv("pw", dw, 8, 1, bias: false)), "qcfs", 4, 1f);
        var dil = g.Activation("dil.act", g.Conv("dil", stem, 4, 3, padding: 2, dilation: 2), "qcfs", 4, 1f);
        var pool = g.AvgPool("branch.pool", stem, 3, 1);
        var cat = g.Concat("cat", g.AvgPool("p1", pw, 2), g.AvgPool("p2", dil, 2), g.MaxPool("p3", g.Conv("pool.proj", pool, 4, 1, padding: 1), 2));
        var graph = g.Build(g.Linear("fc", g.GlobalAvgPool("gap", cat), 5));
        var model = new GraphModel(graph);
        Assert.Equal([16, 4, 4], graph.Shapes["cat"]);
        var x = new Variable(TestUtil.Random(1, 2, 3, 8, 8));
        var labels = new[] { 0, 4 };
        using (var tape = Tape.Start())
            tape.Backward(CrossEntropyOp.Forward(model.Forward(x), labels));
        Assert.All(model.NamedParameters(), p => Assert.True(p.Value.Grad != null && p.Value.Grad.Data.Any(v => v != 0), $"{p.Key} got no gradient"));
        model.Eval();
        var snn = Converter.Convert(model);
        Assert.Equal(["stem.act", "dw.act", "pw.act", "dil.act"], snn.Neurons.Select(n => n.LayerName));
        snn.Configure(2, 3);
        Assert.Equal([6, 5], snn.Run(x.Value, 3).Shape);
    }
}
