// Networks that are not built-ins (tools/make_graph_fixtures.py: VGG-style with max pools and a dropout classifier,
// ResNet-32, an Inception-style net with a Concat of four branches including a pooling one, a depthwise-separable net)
// imported from ONNX with no architecture: the ANN gives PyTorch's logits and the SNN at T = 4, layer-major, PyTorch's
// spike count for every neuron (weights are dyadic, so every current is exact and no spike is left to rounding).
using SpikeSharp.Autograd;
using SpikeSharp.Conversion;
using SpikeSharp.Graphs;
using SpikeSharp.Interop;
using SpikeSharp.Interop.Onnx;
using SpikeSharp.Models;
using SpikeSharp.Tensors;
using Xunit;

namespace SpikeSharp.Tests.Graphs;

public class GraphImportTests
{
    private static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "torch", "graphs", name);

    private static readonly SafetensorsFile Expected = Safetensors.Read(Fixture("graphs.safetensors"));

    private static (GraphModel Model, ModelSpec Spec, ImportedTensors Source) Import(string name, int c, int h, int w)
    {
        var (spec, source) = ModelImport.ReadGraph(Fixture(name + ".onnx"), c, h, w);
        var (model, full) = ModelImport.Build(spec, source, null);
        return ((GraphModel)model, full, source);
    }

    [Theory]
    [InlineData("vgg_maxpool", 1, 28, 28, "maxpool2d", 2)]
    [InlineData("resnet32", 3, 32, 32, "add", 15)]
    [InlineData("inception", 3, 32, 32, "concat", 2)]
    [InlineData("dwsep", 1, 28, 28, "conv2d", 9)]
    public void ImportsWithoutArch_GivesPyTorchsLogitsAndSpikeCounts(string name, int c, int h, int w, string op, int count)
    {
        var (model, spec, source) = Import(name, c, h, w);
        Assert.Equal(count, model.Graph.Nodes.Count(n => n.Op == op));
        Assert.Equal("qcfs", spec.ActivationOrDefault.Kind);
        Assert.Equal(4, source.Levels);
        if (name == "dwsep") Assert.Contains(model.Graph.Nodes, n => n.Op == "conv2d" && n.Int("groups", 1) == 16);
        var x = Expected.Get($"x_{name}");
        model.Eval();
        var logits = model.Forward(new Variable(x)).Value;
        TestUtil.AssertClose(Expected.Get($"logits_{name}").Data, logits.Data, atol: 1e-4, what: $"{name} ANN logits");

        var snn = Converter.Convert(model);
        var paths = Expected.Metadata[name].Split(',');
        Assert.Equal(paths.Order(), snn.Neurons.Select(n => n.LayerName).Order()); // node names are PyTorch's module paths
        var outputs = new Dictionary<string, Tensor>();
        foreach (var n in snn.Neurons) n.Attach((neuron, _, y) => outputs[neuron.LayerName] = y.Clone());
        int batch = x.Shape[0], steps = 4;
        snn.Configure(batch, steps);
        var y = snn.Run(x.Clone(), steps);
        for (int k = 0; k < paths.Length; k++)
        {
            var expected = Expected.Get($"counts_{name}_{k}");
            float theta = snn.Neurons.First(n => n.LayerName == paths[k]).Threshold;
            int mismatches = TestUtil.SpikeCountMismatches(expected, outputs[paths[k]], steps, theta);
            Assert.True(mismatches == 0, $"{name}: neuron layer '{paths[k]}': {mismatches} of {expected.Length} spike counts differ from PyTorch");
        }
        var mean = TestUtil.MeanOverSteps(y, steps);
        TestUtil.AssertClose(Expected.Get($"snn_logits_{name}").Data, mean, atol: 1e-4, what: $"{name} SNN logits");
    }

    [Fact]
    public void ImportedGraphSavesAndLoadsAsACheckpoint_AndExportsBackToOnnx()
    {
        var (model, spec, _) = Import("inception", 3, 32, 32);
        using var tmp = new Interop.TempDirectory();
        new Checkpoint(spec, new DataInfo("cifar10", [0.5f], [0.25f]), model).Save(tmp.Combine("ckpt"));
        var loaded = Checkpoint.Load(tmp.Combine("ckpt"));
        var x = new Variable(Expected.Get("x_inception"));
        model.Eval();
        loaded.Model.Eval();
        Assert.Equal(model.Forward(x).Value.Data, loaded.Model.Forward(x).Value.Data);
    }

    [Theory]
    [InlineData("inception", 3, 32, 32)]
    [InlineData("resnet32", 3, 32, 32)]
    public void ExportedToOnnxAndImportedAgainGivesTheSameLogits(string name, int c, int h, int w)
    {
        var (model, spec, _) = Import(name, c, h, w);
        using var tmp = new Interop.TempDirectory();
        OnnxExporter.Export(model, spec, tmp.Combine("again.onnx"));
        var (again, _) = ModelImport.ReadGraph(tmp.Combine("again.onnx"), c, h, w) is var (s2, src2) ? (ModelImport.Build(s2, src2, null).Model, s2) : default;
        var x = new Variable(Expected.Get($"x_{name}"));
        model.Eval();
        again.Eval();
        TestUtil.AssertClose(model.Forward(x).Value.Data, again.Forward(x).Value.Data, atol: 1e-5, what: $"{name} after export and import");
    }

    [Fact]
    public void EachActivationNodeKeepsItsKind_AReluHeadOnQcfsFeaturesRoundTrips()
    {
        var g = new GraphBuilder(1, 8, 8);
        var x = g.Activation("act1", g.Conv("conv1", g.Input, 4, 3, padding: 1), "qcfs", 8, 2f);
        x = g.Activation("act2", g.Linear("fc1", g.Flatten("flat", x), 16), "relu");
        var model = new GraphModel(g.Build(g.Linear("fc2", x, 3)));
        using var tmp = new Interop.TempDirectory();
        OnnxExporter.Export(model, ModelSpec.For(model.Graph), tmp.Combine("mixed.onnx"));
        var (spec, source) = ModelImport.ReadGraph(tmp.Combine("mixed.onnx"), 1, 8, 8);
        var (again, full) = ModelImport.Build(spec, source, null);
        Assert.Null(full.Activation); // no override: the nodes say their kinds
        Assert.Equal(["qcfs", "relu"], ((GraphModel)again).Graph.Nodes.Where(n => GraphOps.Get(n).IsActivation).Select(n => n.Op));
        Assert.Equal(8, ((GraphModel)again).Graph.Nodes.First(n => n.Op == "qcfs").Int("levels", 0));
        var input = new Variable(TestUtil.Random(3, 2, 1, 8, 8));
        model.Eval();
        again.Eval();
        TestUtil.AssertClose(model.Forward(input).Value.Data, again.Forward(input).Value.Data, atol: 1e-5, what: "mixed activations");
    }

    [Fact]
    public void NirExportsAGraphOrNamesTheNodeNirCannotExpress()
    {
        var (dwsep, dwSpec, _) = Import("dwsep", 1, 28, 28);
        var data = new DataInfo("mnist", [0.5f], [0.25f]);
        var (nir, _) = SpikeSharp.Interop.Nir.NirExporter.Build(Converter.Convert(dwsep, new ConversionOptions(FoldBatchNorm: true)), dwSpec, data,
            new SpikeSharp.Conversion.Methods.QcfsConversion(), 4);
        Assert.Equal(9, nir.Nodes.Count(n => n.Type == "IF"));
        Assert.Contains(nir.Nodes, n => n.Type == "Conv2d");

        var (inception, inSpec, _) = Import("inception", 3, 32, 32);
        var e = Assert.Throws<SpikeSharpException>(() => SpikeSharp.Interop.Nir.NirExporter.Build(Converter.Convert(inception, new ConversionOptions(FoldBatchNorm: true)),
            inSpec, data, new SpikeSharp.Conversion.Methods.QcfsConversion(), 4));
        Assert.Contains("(concat) has no NIR equivalent", e.Message);
        Assert.Contains("graph node 'block1.cat'", e.Message);
    }

    [Fact]
    public void AStateDictWithoutTopologyNeedsArchOrGraph()
    {
        using var tmp = new Interop.TempDirectory();
        var pth = tmp.Combine("m.pth");
        File.WriteAllBytes(pth, [0x80, 0x02]);
        var e = Assert.Throws<SpikeSharpException>(() => ModelImport.ReadGraph(pth, 1, 28, 28));
        Assert.Contains("--arch NAME", e.Message);
        Assert.Contains("--graph FILE", e.Message);
    }

    [Theory]
    [InlineData("dwsep", 1, 28, 28, 800)]
    [InlineData("inception", 3, 32, 32, 300)]
    public void Fuzz_MutatedFilesImportAsGraphsOrFailCleanly(string name, int c, int h, int w, int cases)
    {
        var valid = File.ReadAllBytes(Fixture(name + ".onnx"));
        var rng = new Random(99);
        int rejected = 0;
        for (int k = 0; k < cases; k++)
        {
            var bytes = SpikeSharp.Tests.Interop.OnnxImportTests.Mutate(valid, rng, out string how);
            try
            {
                var (graph, source) = OnnxGraphImport.Read(bytes, "fuzz.onnx", c, h, w);
                var (model, _) = ModelImport.Build(ModelSpec.For(graph), source, null);
                model.Eval();
                model.Forward(new Variable(new Tensor(1, c, h, w)));
            }
            catch (SpikeSharpException) { rejected++; }
            catch (Exception e)
            {
                throw new Xunit.Sdk.XunitException($"{name} case {k} ({how}): {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
            }
        }
        Assert.True(rejected > cases / 10, $"{name}: only {rejected} of {cases} mutations rejected; are they reaching the importer?");
    }

    [Fact]
    public void UnsupportedOpsAreListedTogether()
    {
        // Rename two nodes' ops in a valid file: one error names both.
        var bytes = File.ReadAllBytes(Fixture("dwsep.onnx"));
        var proto = SpikeSharp.Interop.Onnx.Proto.ModelProto.Parser.ParseFrom(bytes);
        proto.Graph.Node.First(n => n.OpType == "GlobalAveragePool").OpType = "LpPool";
        proto.Graph.Node.First(n => n.OpType == "Gemm").OpType = "Einsum";
        var e = Assert.Throws<InvalidFileException>(() => OnnxGraphImport.Read(Google.Protobuf.MessageExtensions.ToByteArray(proto), "x.onnx", 1, 28, 28));
        Assert.Contains("LpPool", e.Message);
        Assert.Contains("Einsum", e.Message);
        Assert.Contains("2 node(s)", e.Message);
    }
}
