// ONNX import against PyTorch (tools/make_import_fixtures.py): QCFS ResNet-20 (clip-first QCFS, opset 13) and VGG-16
// (floor-first, opset 11) exported by torch.onnx with BN folded into the convs, imported into the built-in models; the
// ANN must give PyTorch's logits and the converted SNN PyTorch's spike counts per neuron, except for neurons whose
// membrane potential came within 1e-4·θ of θ (recorded in the fixture), where rounding may decide. Then the CLI path,
// the errors, and a fuzz test of the reader on mutated files.
using Google.Protobuf;
using SpikeSharp.Autograd;
using SpikeSharp.Conversion;
using SpikeSharp.Interop;
using SpikeSharp.Interop.Onnx;
using SpikeSharp.Interop.Onnx.Proto;
using SpikeSharp.Models;
using SpikeSharp.Nn;
using SpikeSharp.Tensors;
using Xunit;
using Xunit.Abstractions;

namespace SpikeSharp.Tests.Interop;

public class OnnxImportTests(ITestOutputHelper output)
{
    private static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "import", name);

    private const string ResNetOnnx = "resnet20_w0.5_clipfirst.onnx";
    private const string VggOnnx = "vgg16_w0.03125_floorfirst.onnx";

    private static readonly ModelSpec ResNetSpec = new("resnet20", WidthMultiplier: 0.5f);
    private static readonly ModelSpec VggSpec = new("vgg16", WidthMultiplier: 0.03125f);

    // The same PyTorch models saved as state dicts (λ named `up` and `thresh`): the round trips below run on both formats.
    private const string ResNetPth = "resnet20_w0.5_up.pth";
    private const string VggPth = "vgg16_w0.03125_thresh.pth";

    private static (ModelSpec Spec, string Expected) Case(string file) => file.StartsWith("resnet20", StringComparison.Ordinal)
        ? (ResNetSpec, "resnet20_w0.5_expected.safetensors")
        : (VggSpec, "vgg16_w0.03125_expected.safetensors");

    private static (Module Model, ImportedTensors Source, SafetensorsFile Expected) Import(string onnx)
    {
        var (spec, expected) = Case(onnx);
        var source = ModelImport.Read(Fixture(onnx), spec);
        var (model, _) = ModelImport.Build(spec, source, onnx.EndsWith(".pth", StringComparison.Ordinal) ? 4 : null);
        model.Eval();
        return (model, source, Safetensors.Read(Fixture(expected)));
    }

    [Theory]
    [InlineData(ResNetOnnx, "clip-first")]
    [InlineData(VggOnnx, "floor-first")]
    public void Import_RecoversLevelsThresholdsAndFoldedBatchNorm(string onnx, string order)
    {
        var (_, source, expected) = Import(onnx);
        Assert.Equal(4, source.Levels);
        Assert.Equal(order, expected.Metadata["qcfs_order"]);
        var layers = expected.Metadata["neuron_layers"].Split(',');
        var lambdas = expected.Metadata["lambdas"].Split(',').Select(s => float.Parse(s, System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        for (int k = 0; k < layers.Length; k++)
            Assert.Equal(lambdas[k], source.Tensors[layers[k] + ".lambda"].Data[0]);
        Assert.Contains(source.Notes!, n => n.Contains("recovered QCFS L = 4") && n.Contains(order));
        Assert.Contains(source.Notes!, n => n.Contains("folded BatchNormalization"));
        // Folded BN is an exact identity: var + eps rounds to exactly 1 in float32.
        var bnVar = source.Tensors.First(kv => kv.Key.EndsWith(".running_var", StringComparison.Ordinal)).Value;
        Assert.All(bnVar.Data, v => Assert.Equal(1f, MathF.Sqrt(v + 1e-5f)));
        foreach (var n in source.Notes!) output.WriteLine("note: " + n);
    }

    [Theory]
    [InlineData(ResNetOnnx)]
    [InlineData(VggOnnx)]
    [InlineData(ResNetPth)]
    [InlineData(VggPth)]
    public void Ann_MatchesTorchLogits(string onnx)
    {
        var (model, _, f) = Import(onnx);
        var x = f.Get("x");
        var y = model.Forward(new Variable(x.Clone())).Value;
        var expected = f.Get("ann_logits");
        Assert.Equal(expected.Shape, y.Shape);
        double worst = 0;
        for (int i = 0; i < y.Length; i++) worst = Math.Max(worst, Math.Abs(y.Data[i] - expected.Data[i]));
        output.WriteLine($"{onnx}: max |logit - torch| = {worst:G3}");
        TestUtil.AssertClose(expected.Data, y.Data, atol: 1e-4, rtol: 0, what: $"{onnx} ANN logits");
    }

    [Theory]
    [InlineData(ResNetOnnx)]
    [InlineData(VggOnnx)]
    [InlineData(ResNetPth)]
    [InlineData(VggPth)]
    public void Snn_MatchesTorchSpikeCounts(string onnx)
    {
        var (model, _, f) = Import(onnx);
        int steps = int.Parse(f.Metadata["steps"]), batch = int.Parse(f.Metadata["batch"]);
        var layers = f.Metadata["neuron_layers"].Split(',');
        var snn = Converter.Convert(model);
        Assert.Equal(layers, snn.Neurons.Select(n => n.LayerName));
        snn.Configure(batch, steps);
        var outputs = new Tensor?[layers.Length];
        for (int k = 0; k < layers.Length; k++)
        {
            int layer = k;
            snn.Neurons[k].Attach((_, _, o) => outputs[layer] = o.Clone()); // scratch memory: copy
        }
        var y = snn.Run(f.Get("x").Clone(), steps);

        int excluded = 0, tiesFlipped = 0, total = 0;
        for (int k = 0; k < layers.Length; k++)
        {
            var o = outputs[k] ?? throw new Xunit.Sdk.XunitException($"layer {layers[k]}: the observer was not called");
            int n = o.Length / steps;
            total += n;
            float theta = snn.Neurons[k].Threshold;
            var packed = f.Get($"counts_layer{k}").Data;
            var ties = f.Get($"ties_layer{k}").Data.Select(v => (int)v).ToHashSet();
            Assert.Equal((n + 1) / 2, packed.Length);
            int mismatches = 0, first = -1;
            for (int i = 0; i < n; i++)
            {
                int count = 0;
                for (int t = 0; t < steps; t++)
                {
                    float v = o.Data[t * n + i];
                    Assert.True(v == 0f || v == theta, $"{layers[k]}: output {v} is neither 0 nor θ = {theta}");
                    if (v != 0f) count++;
                }
                int expected = ((int)packed[i / 2] >> (4 * (i % 2))) & 15;
                if (ties.Contains(i)) { if (count != expected) tiesFlipped++; continue; }
                if (count != expected) { mismatches++; if (first < 0) first = i; }
            }
            excluded += ties.Count;
            Assert.True(mismatches == 0, $"{onnx} layer {k} ({layers[k]}): {mismatches} of {n} neurons differ from PyTorch; " +
                $"first: flat index {first}, {ties.Count} near-threshold neurons excluded");
        }
        output.WriteLine($"{onnx}: {total} neurons × T={steps}, {total - excluded} compared exactly, {excluded} near-threshold excluded " +
            $"({tiesFlipped} of them differ)");
        Assert.True(excluded <= total / 1000, $"{excluded} of {total} neurons excluded as near-threshold ties; expected at most 0.1 %");
        Assert.Equal(int.Parse(f.Metadata["ties"]), excluded);

        if (tiesFlipped == 0)
        {
            var mean = new float[y.Length / steps];
            for (int t = 0; t < steps; t++)
                for (int i = 0; i < mean.Length; i++) mean[i] += y.Data[t * mean.Length + i] / steps;
            TestUtil.AssertClose(f.Get($"snn_logits_T{steps}").Data, mean, atol: 1e-4, rtol: 1e-4, what: $"{onnx} SNN mean logits");
        }
    }

    [Fact]
    public void Cli_ImportWritesACheckpointThatLoadsAndRuns()
    {
        using var dir = new TempDirectory();
        string outDir = dir.Combine("imported");
        var (code, stdout, err) = Cli.CliTests.Run("import", "--from", Fixture(ResNetOnnx), "--arch", "resnet20", "--width", "0.5", "--out", outDir);
        Assert.True(code == 0, err);
        output.WriteLine(stdout);
        Assert.Contains("activation qcfs L=4", stdout);
        Assert.Contains("folded BatchNormalization", stdout);
        var ckpt = Checkpoint.Load(outDir);
        Assert.Equal("resnet20", ckpt.Spec.Name);
        Assert.Equal("qcfs", ckpt.Spec.ActivationOrDefault.Kind);
        Assert.Equal(4, ckpt.Spec.ActivationOrDefault.Levels);
        ckpt.Model.Eval();
        var f = Safetensors.Read(Fixture("resnet20_w0.5_expected.safetensors"));
        var y = ckpt.Model.Forward(new Variable(f.Get("x").Clone())).Value;
        TestUtil.AssertClose(f.Get("ann_logits").Data, y.Data, atol: 1e-4, rtol: 0, what: "logits after import + Checkpoint.Load");
    }

    [Fact]
    public void UnfoldedBatchNorm_Opset9_MatchesTorchLogits()
    {
        // BatchNormalization nodes (training=PRESERVE export), Clip min/max attributes, Pad/Unsqueeze of opset 9.
        var spec = new ModelSpec("resnet20", WidthMultiplier: 0.125f);
        var source = ModelImport.Read(Fixture("resnet20_w0.125_opset9_bn.onnx"), spec);
        Assert.DoesNotContain(source.Notes!, n => n.Contains("folded"));
        Assert.Contains(source.Notes!, n => n.Contains("floor-first"));
        var (model, _) = ModelImport.Build(spec, source, null);
        model.Eval();
        var f = Safetensors.Read(Fixture("resnet20_w0.125_opset9_bn_expected.safetensors"));
        var y = model.Forward(new Variable(f.Get("x").Clone())).Value;
        TestUtil.AssertClose(f.Get("ann_logits").Data, y.Data, atol: 1e-4, rtol: 0, what: "opset-9 ResNet-20 with BN nodes");
    }

    [Fact]
    public void BatchNormEpsilon_IsKeptByShiftingTheVariance()
    {
        var spec = new ModelSpec("resnet20", WidthMultiplier: 0.125f);
        const string File = "resnet20_w0.125_opset9_bn.onnx";
        var bytes = Edit(File, m => m.Graph.Node.First(n => n.OpType == "BatchNormalization").Attribute.First(a => a.Name == "epsilon").F = 1e-3f);
        var original = ModelImport.Read(Fixture(File), spec);
        var edited = OnnxImporter.Read(bytes, "eps.onnx", spec);
        Assert.Contains(edited.Notes!, n => n.Contains("1 BatchNormalization layer(s) use another epsilon") && n.Contains("conv1.1"));
        var before = original.Tensors["conv1.1.running_var"].Data;
        var after = edited.Tensors["conv1.1.running_var"].Data;
        for (int i = 0; i < before.Length; i++) Assert.Equal(before[i] + (1e-3f - 1e-5f), after[i], 6);
    }

    private static void AssertSameTensors(ImportedTensors expected, ImportedTensors actual)
    {
        Assert.Equal(expected.Tensors.Keys, actual.Tensors.Keys);
        foreach (var (key, t) in expected.Tensors)
        {
            Assert.Equal(t.Shape, actual.Tensors[key].Shape);
            Assert.True(t.Data.AsSpan().SequenceEqual(actual.Tensors[key].Data), $"{key} differs");
        }
        Assert.Equal(expected.Levels, actual.Levels);
    }

    [Fact]
    public void MatMulPlusAdd_ImportsLikeGemm()
    {
        var bytes = Edit(VggOnnx, m =>
        {
            var g = m.Graph;
            for (int i = 0; i < g.Node.Count; i++)
            {
                var gemm = g.Node[i];
                if (gemm.OpType != "Gemm") continue;
                Assert.Equal(1, gemm.Attribute.First(a => a.Name == "transB").I);
                var w = g.Initializer.First(t => t.Name == gemm.Input[1]);
                int rows = (int)w.Dims[0], cols = (int)w.Dims[1];
                var data = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(w.RawData.Span).ToArray();
                var wt = new TensorProto { Name = gemm.Input[1] + "_T", DataType = w.DataType, Dims = { cols, rows } };
                for (int c = 0; c < cols; c++)
                    for (int r = 0; r < rows; r++) wt.FloatData.Add(data[r * cols + c]);
                g.Initializer.Add(wt);
                var matmul = new NodeProto { Name = gemm.Name + "_matmul", OpType = "MatMul", Input = { gemm.Input[0], wt.Name }, Output = { gemm.Name + "_mm" } };
                var add = new NodeProto { Name = gemm.Name + "_add", OpType = "Add", Input = { gemm.Input[2], matmul.Output[0] }, Output = { gemm.Output[0] } };
                g.Node[i] = matmul;
                g.Node.Insert(i + 1, add);
            }
        });
        AssertSameTensors(ModelImport.Read(Fixture(VggOnnx), VggSpec), OnnxImporter.Read(bytes, "matmul.onnx", VggSpec));
    }

    [Fact]
    public void WeightsAsConstantNodesFloatDataAndDoubles_ImportTheSame()
    {
        var bytes = Edit(ResNetOnnx, m =>
        {
            var g = m.Graph;
            // Initializers become Constant nodes (float_data instead of raw_data), placed before every other node.
            for (int i = g.Initializer.Count - 1; i >= 0; i--)
            {
                var t = g.Initializer[i];
                var copy = new TensorProto { Name = t.Name, DataType = t.DataType, Dims = { t.Dims } };
                copy.FloatData.AddRange(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(t.RawData.Span).ToArray());
                g.Node.Insert(0, new NodeProto { Name = "const_" + t.Name, OpType = "Constant", Output = { t.Name },
                    Attribute = { new AttributeProto { Name = "value", Type = AttributeProto.Types.AttributeType.Tensor, T = copy } } });
            }
            g.Initializer.Clear();
            // Scalar float constants (L, ½, clip bounds) as float64, int64 constants as int64_data.
            foreach (var n in g.Node.Where(n => n.OpType == "Constant" && n.Attribute[0].T is { RawData.Length: > 0 }))
            {
                var t = n.Attribute[0].T;
                if (t.DataType == (int)TensorProto.Types.DataType.Float && t.Dims.Count == 0)
                    n.Attribute[0].T = new TensorProto { DataType = (int)TensorProto.Types.DataType.Double, DoubleData = { BitConverter.ToSingle(t.RawData.Span) } };
                else if (t.DataType == (int)TensorProto.Types.DataType.Int64)
                    n.Attribute[0].T = new TensorProto { DataType = t.DataType, Dims = { t.Dims },
                        Int64Data = { System.Runtime.InteropServices.MemoryMarshal.Cast<byte, long>(t.RawData.Span).ToArray() } };
            }
        });
        AssertSameTensors(ModelImport.Read(Fixture(ResNetOnnx), ResNetSpec), OnnxImporter.Read(bytes, "constants.onnx", ResNetSpec));
    }

    [Fact]
    public void MaxPool_ImportsAsAveragePoolingWithANote()
    {
        var bytes = Edit(VggOnnx, m => { foreach (var n in m.Graph.Node.Where(n => n.OpType == "AveragePool")) n.OpType = "MaxPool"; });
        var source = OnnxImporter.Read(bytes, "maxpool.onnx", VggSpec);
        var note = Assert.Single(source.Notes!, n => n.Contains("MaxPool"));
        output.WriteLine(note);
        Assert.Contains("5 MaxPool node(s)", note);
        Assert.Contains("refuses max pooling", note);
    }

    [Fact]
    public void Cli_BadInputExitsWith2AndNoStackTrace()
    {
        using var dir = new TempDirectory();
        var (code, _, err) = Cli.CliTests.Run("import", "--from", Fixture(VggOnnx), "--arch", "resnet20", "--out", dir.Combine("x"));
        output.WriteLine(err);
        Assert.Equal(2, code);
        Assert.Contains("does not fit resnet20", err);
        Assert.DoesNotContain("   at ", err);
        Assert.False(Directory.Exists(dir.Combine("x", "model.safetensors")));
    }

    /// <summary>Replaces every seven-node QCFS chain (Div … Mul) by one Relu, optionally followed by an inference Dropout.</summary>
    private static void QcfsToRelu(ModelProto m, bool dropout)
    {
        var nodes = m.Graph.Node;
        NodeProto Consumer(NodeProto n) => nodes.Single(c => c.Input.Contains(n.Output[0]));
        foreach (var div in nodes.Where(n => n.OpType == "Div" && n.Input[1].EndsWith(".up", StringComparison.Ordinal)).ToList())
        {
            var chain = new List<NodeProto> { div };
            while (chain.Count < 7) chain.Add(Consumer(chain[^1]));
            Assert.Equal("Mul", chain[^1].OpType);
            string output = chain[^1].Output[0];
            int at = nodes.IndexOf(div);
            foreach (var n in chain) nodes.Remove(n);
            var relu = new NodeProto { Name = div.Name + "_relu", OpType = "Relu", Input = { div.Input[0] }, Output = { dropout ? output + "_pre" : output } };
            nodes.Insert(at, relu);
            if (dropout)
                nodes.Insert(at + 1, new NodeProto { Name = div.Name + "_dropout", OpType = "Dropout", Input = { relu.Output[0] }, Output = { output } });
        }
    }

    [Fact]
    public void ReluNetwork_ImportsWithoutThresholds_AndDropoutIsAPassThrough()
    {
        var spec = new ModelSpec("cnn-small", 1, 8, 8, 10, 0.25f);
        var plain = OnnxImporter.Read(Edit("cnn_small_fuzz.onnx", m => QcfsToRelu(m, false)), "relu.onnx", spec);
        Assert.Null(plain.Levels);
        Assert.DoesNotContain(plain.Tensors.Keys, k => k.EndsWith(".lambda", StringComparison.Ordinal));
        var (model, full) = ModelImport.Build(spec with { Classes = 10 }, plain, null);
        Assert.Equal("relu", full.ActivationOrDefault.Kind);
        var withDropout = OnnxImporter.Read(Edit("cnn_small_fuzz.onnx", m => QcfsToRelu(m, true)), "dropout.onnx", spec);
        AssertSameTensors(plain, withDropout);
        // A ReLU file cannot be given levels: it has no thresholds to run QCFS with.
        Assert.Throws<SpikeSharpException>(() => ModelImport.Build(spec, plain, 4));
    }

    private static byte[] Edit(string onnx, Action<ModelProto> edit)
    {
        var model = ModelProto.Parser.ParseFrom(File.ReadAllBytes(Fixture(onnx)));
        edit(model);
        return model.ToByteArray();
    }

    [Fact]
    public void UnsupportedOps_AreListedWithNodeNameAndOpType()
    {
        var bytes = Edit(ResNetOnnx, m =>
        {
            m.Graph.Node.First(n => n.OpType == "Floor").OpType = "Round";
            m.Graph.Node.Last(n => n.OpType == "Conv").OpType = "ConvTranspose";
        });
        var e = Assert.Throws<InvalidFileException>(() => OnnxImporter.Read(bytes, "bad.onnx", ResNetSpec));
        output.WriteLine(e.Message);
        Assert.Contains("2 node(s)", e.Message);
        Assert.Contains("'/conv1/conv1.2/Floor' (Round)", e.Message);
        Assert.Contains("(ConvTranspose)", e.Message);
    }

    [Fact]
    public void WrongArchitectureOrWidth_NamesTheLayer()
    {
        var e = Assert.Throws<InvalidFileException>(() => ModelImport.Read(Fixture(ResNetOnnx), VggSpec));
        output.WriteLine(e.Message);
        Assert.Contains("layer1.0", e.Message);
        Assert.Contains("/conv1/conv1.0/Conv", e.Message);

        e = Assert.Throws<InvalidFileException>(() => ModelImport.Read(Fixture(ResNetOnnx), ResNetSpec with { WidthMultiplier = 1f }));
        output.WriteLine(e.Message);
        Assert.Contains("'conv1.0'", e.Message);
        Assert.Contains("weight [8,3,3,3], expected [16,3,3,3]", e.Message);

        e = Assert.Throws<InvalidFileException>(() => ModelImport.Read(Fixture(VggOnnx), ResNetSpec with { WidthMultiplier = 0.03125f }));
        output.WriteLine(e.Message);
    }

    [Fact]
    public void BrokenQcfsPattern_SaysWhereItBreaks()
    {
        var bytes = Edit(VggOnnx, m =>
        {
            // Change L in the floor's divisor: the Mul and Div constants disagree.
            var floor = m.Graph.Node.First(n => n.OpType == "Floor");
            var div = m.Graph.Node.First(n => n.OpType == "Div" && n.Input[0] == floor.Output[0]);
            var constant = m.Graph.Node.First(n => n.OpType == "Constant" && n.Output[0] == div.Input[1]);
            constant.Attribute[0].T = new TensorProto { DataType = (int)TensorProto.Types.DataType.Float, FloatData = { 8f } };
        });
        var e = Assert.Throws<InvalidFileException>(() => OnnxImporter.Read(bytes, "bad.onnx", VggSpec));
        output.WriteLine(e.Message);
        Assert.Contains("multiplies by 4 and divides by 8", e.Message);
    }

    [Fact]
    public void TruncatedOrForeignFile_GivesACleanError()
    {
        var bytes = File.ReadAllBytes(Fixture(ResNetOnnx));
        var e = Assert.Throws<InvalidFileException>(() => OnnxImporter.Read(bytes[..(bytes.Length / 2)], "half.onnx", ResNetSpec));
        output.WriteLine(e.Message);
        Assert.StartsWith("half.onnx: ", e.Message);
        Assert.ThrowsAny<SpikeSharpException>(() => OnnxImporter.Read("not a model at all"u8.ToArray(), "text.onnx", ResNetSpec));
        Assert.ThrowsAny<SpikeSharpException>(() => OnnxImporter.Read([], "empty.onnx", ResNetSpec));
    }

    /// <summary>Random bit flips, truncations, forged varints and byte runs on a small valid file: each must import or
    /// throw <see cref="SpikeSharpException"/>, never another exception, and quickly (no hang, no huge allocation).
    /// Seeds: cnn-small (opset 13, BN folded, Flatten) and ResNet-20 at width 1/8 (opset 9, BN nodes, residual adds,
    /// the Shape→Gather→Unsqueeze→Concat→Reshape chain).</summary>
    [Theory]
    // Found by tools/fuzz.sh (AFL++): truncated unknown fields made Google.Protobuf throw its own bugs out of the importer.
    [InlineData("080742FFFFFFFFF70670798042FFFFFFFF42424274", "cnn-small", 1, 8, 0.25f)] // length past the end: ArgumentOutOfRangeException
    [InlineData("080411077A7993D07263681A06312E31212E303AF9E1042204436F6E762AFFFFFFFF07707908636811212E30", "resnet20", 3, 32, 0.125f)] // fixed64 cut short: IndexOutOfRangeException
    public void TruncatedUnknownFieldIsAnInvalidFileError(string hex, string arch, int channels, int size, float width)
    {
        var spec = new ModelSpec(arch, channels, size, size, 10, width);
        var e = Assert.Throws<InvalidFileException>(() => OnnxImporter.Read(Convert.FromHexString(hex), "crash.onnx", spec));
        Assert.Equal("crash.onnx", e.FilePath);
        Assert.Contains("not a valid ONNX file", e.Message);
    }

    [Theory]
    [InlineData("cnn_small_fuzz.onnx", "cnn-small", 1, 8, 0.25f, 10_000)]
    [InlineData("resnet20_w0.125_opset9_bn.onnx", "resnet20", 3, 32, 0.125f, 600)]
    public void Fuzz_MutatedFilesImportOrFailCleanly(string file, string arch, int channels, int size, float width, int cases)
    {
        var spec = new ModelSpec(arch, channels, size, size, 10, width);
        var valid = File.ReadAllBytes(Fixture(file));
        OnnxImporter.Read(valid, "seed.onnx", spec);
        var rng = new Random(1234);
        int imported = 0, rejected = 0;
        var sw = System.Diagnostics.Stopwatch.StartNew();
        for (int c = 0; c < cases; c++)
        {
            var bytes = Mutate(valid, rng, out string how);
            try
            {
                var source = OnnxImporter.Read(bytes, "fuzz.onnx", spec);
                ModelImport.Build(spec with { Classes = source.Tensors.Last(kv => kv.Value.Rank == 2).Value.Shape[0] }, source, null);
                imported++;
            }
            catch (SpikeSharpException) { rejected++; }
            catch (Exception e)
            {
                throw new Xunit.Sdk.XunitException($"{file} case {c} ({how}): {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
            }
        }
        sw.Stop();
        output.WriteLine($"{file}: {cases} mutations in {sw.Elapsed.TotalSeconds:F2} s: {imported} imported, {rejected} rejected with SpikeSharpException");
        Assert.True(rejected > cases / 10, $"{file}: only {rejected} of {cases} mutations rejected; are they reaching the importer?");
    }

    internal static byte[] Mutate(byte[] valid, Random rng, out string how)
    {
        var b = (byte[])valid.Clone();
        int kind = rng.Next(5), at = rng.Next(b.Length);
        switch (kind)
        {
            case 0:
                int flips = 1 + rng.Next(4);
                for (int i = 0; i < flips; i++) { int p = rng.Next(b.Length); b[p] ^= (byte)(1 << rng.Next(8)); }
                how = $"{flips} bit flip(s)";
                return b;
            case 1:
                how = $"truncated at {at}";
                return b[..at];
            case 2:
            {
                // A forged varint (length or count): huge, negative-looking or just off by a little.
                ulong value = rng.Next(3) switch { 0 => (ulong)rng.NextInt64(), 1 => uint.MaxValue - (ulong)rng.Next(16), _ => (ulong)rng.Next(1 << 20) };
                var varint = new List<byte>();
                do { byte x = (byte)(value & 0x7F); value >>= 7; varint.Add(value != 0 ? (byte)(x | 0x80) : x); } while (value != 0);
                for (int i = 0; i < varint.Count && at + i < b.Length; i++) b[at + i] = varint[i];
                how = $"varint {string.Join(" ", varint.Select(x => x.ToString("X2")))} written at {at}";
                return b;
            }
            case 3:
            {
                int len = 1 + rng.Next(16);
                for (int i = 0; i < len && at + i < b.Length; i++) b[at + i] = (byte)rng.Next(256);
                how = $"{len} random bytes at {at}";
                return b;
            }
            default:
            {
                int len = 1 + rng.Next(64), from = rng.Next(b.Length);
                var run = b.AsSpan(from, Math.Min(len, b.Length - from)).ToArray();
                how = $"{run.Length} bytes from {from} inserted at {at}";
                return [.. b[..at], .. run, .. b[at..]];
            }
        }
    }
}
