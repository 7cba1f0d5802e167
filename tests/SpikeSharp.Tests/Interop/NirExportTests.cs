// Tests for NIR export: the HDF5 file read back with our reader (layout, BN-folded weights, thresholds, residual
// edges), cross-checked with h5py through tools/check_nir.py where python3-h5py is installed (CI installs it), and the
// errors (unsupported layers, bad format, unwritable output) leaving no partial file behind.
using System.Diagnostics;
using SpikeSharp.Conversion;
using SpikeSharp.Conversion.Methods;
using SpikeSharp.Interop;
using SpikeSharp.Interop.Nir;
using SpikeSharp.Models;
using SpikeSharp.Nn;
using SpikeSharp.Snn;
using SpikeSharp.Tests.Cli;
using Xunit;

namespace SpikeSharp.Tests.Interop;

public class NirExportTests
{
    internal static readonly ActivationSpec Qcfs = new("qcfs", Levels: 3, LambdaInit: 2f);

    /// <summary>Saves a small model with non-trivial BN statistics and λ per layer, and returns it.</summary>
    internal static Module SaveCheckpoint(string dir, string name, int size = 8)
    {
        var spec = new ModelSpec(name, 1, size, size, 3, 0.25f, Qcfs);
        var model = ModelFactory.Create(spec, seed: 3);
        var rng = new Random(5);
        foreach (var (_, m) in model.NamedModules())
        {
            if (m is BatchNorm bn)
                for (int c = 0; c < bn.Channels; c++)
                {
                    bn.Weight.Value.Data[c] = 0.5f + (float)rng.NextDouble();
                    bn.Bias.Value.Data[c] = (float)rng.NextDouble() - 0.5f;
                    bn.RunningMean.Data[c] = (float)rng.NextDouble() - 0.5f;
                    bn.RunningVar.Data[c] = 0.5f + (float)rng.NextDouble();
                }
            if (m is Activation { Lambda: { } l }) l.Value.Data[0] = 1f + (float)rng.NextDouble();
        }
        new Checkpoint(spec, new DataInfo("mnist", [0.1307f], [0.3081f]), model).Save(dir);
        return model;
    }

    private static Dictionary<string, string> Types(Hdf5File f) =>
        f.Children("node/nodes").ToDictionary(n => n, n => f.ReadString($"node/nodes/{n}/type"));

    private static List<(string, string)> Edges(Hdf5File f)
    {
        var (v, shape) = f.ReadStrings("node/edges");
        Assert.Equal(2, shape[1]);
        return Enumerable.Range(0, shape[0]).Select(i => (v[2 * i], v[2 * i + 1])).ToList();
    }

    [Fact]
    public void Hdf5File_RoundTripsArraysScalarsAndUtf8Strings_AndRejectsNonHdf5()
    {
        using var tmp = new TempDirectory();
        string path = tmp.Combine("t.h5");
        var w = new Hdf5Writer();
        w.CreateGroup("g");
        w.WriteFloats("g/a", [1f, 2f, 3f, 4f, 5f, 6f], 2, 3);
        w.WriteInt64s("g/n", [-1L], []);
        w.WriteStrings("g/s", ["θ", "b", "", "dd"], 2, 2);
        w.Save(path);
        using (var r = Hdf5File.Open(path))
        {
            Assert.Equal(["g"], r.Children(""));
            Assert.Equal(["a", "n", "s"], r.Children("g"));
            var (a, aShape) = r.ReadFloats("g/a");
            Assert.Equal([1f, 2f, 3f, 4f, 5f, 6f], a);
            Assert.Equal([2, 3], aShape);
            var (n, nShape) = r.ReadInt64s("g/n");
            Assert.Equal([-1L], n);
            Assert.Empty(nShape);
            Assert.Equal(["θ", "b", "", "dd"], r.ReadStrings("g/s").Values);
            Assert.True(r.Exists("g/a"));
            Assert.False(r.Exists("g/x/y"));
            Assert.Throws<IOException>(() => r.ReadFloats("g/missing"));
        }
        File.WriteAllText(tmp.Combine("not.h5"), "hello");
        Assert.Throws<InvalidFileException>(() => Hdf5File.Open(tmp.Combine("not.h5")));
    }

    [Fact]
    public void CnnSmall_Qcfs_WritesNirLayoutWithFoldedWeightsThresholdsAndChainEdges()
    {
        using var tmp = new TempDirectory();
        var ann = SaveCheckpoint(tmp.Combine("ckpt"), "cnn-small");
        string path = tmp.Combine("out", "cnn.nir");
        var result = NirExporter.Export(tmp.Combine("ckpt"), new QcfsConversion(), 4, path);

        using var f = Hdf5File.Open(path);
        Assert.Equal(NirGraph.Version, f.ReadString("version"));
        Assert.Equal("NIRGraph", f.ReadString("node/type"));
        var types = Types(f);
        Assert.Equal(result.Nodes, types.Count);
        // input, 2 conv, 2 pool, flatten, 2 affine, 3 IF + 3 Scale, output
        Assert.Equal(new Dictionary<string, int> { ["Affine"] = 2, ["AvgPool2d"] = 2, ["Conv2d"] = 2, ["Flatten"] = 1, ["IF"] = 3, ["Input"] = 1, ["Output"] = 1, ["Scale"] = 3 },
            types.Values.GroupBy(t => t).OrderBy(g => g.Key, StringComparer.Ordinal).ToDictionary(g => g.Key, g => g.Count()));
        Assert.Equal([1L, 8, 8], f.ReadInt64s("node/nodes/input/shape").Data);
        Assert.Equal([3L], f.ReadInt64s("node/nodes/output/shape").Data);

        // Conv weights are the BN-folded ones: W·γ/sqrt(var + eps), bias β − μ·γ/sqrt(var + eps).
        Module Layer(string name) => ann.NamedModules().First(m => m.Key == name).Value;
        var conv = (Conv2d)Layer("features.0");
        var bn = (BatchNorm)Layer("features.1");
        var (w, wShape) = f.ReadFloats("node/nodes/features_0/weight");
        Assert.Equal([8, 1, 3, 3], wShape);
        var expected = new float[w.Length];
        for (int o = 0; o < 8; o++)
            for (int k = 0; k < 9; k++)
                expected[o * 9 + k] = conv.Weight.Value.Data[o * 9 + k] * bn.Weight.Value.Data[o] / MathF.Sqrt(bn.RunningVar.Data[o] + bn.Eps);
        TestUtil.AssertClose(expected, w, 1e-6, 1e-5, "folded conv weight");
        var (b, _) = f.ReadFloats("node/nodes/features_0/bias");
        float s0 = bn.Weight.Value.Data[0] / MathF.Sqrt(bn.RunningVar.Data[0] + bn.Eps);
        Assert.Equal(bn.Bias.Value.Data[0] - bn.RunningMean.Data[0] * s0, b[0], 5);
        Assert.Equal([1L, 1], f.ReadInt64s("node/nodes/features_0/stride").Data);
        Assert.Equal([1L, 1], f.ReadInt64s("node/nodes/features_0/padding").Data);
        Assert.Equal([8L, 8], f.ReadInt64s("node/nodes/features_0/input_shape").Data);

        // IF: θ = λ broadcast to the layer shape, r = 1, v_reset = 0; v(0) = θ/2 and the soft reset in metadata.
        float lambda = ((Activation)Layer("features.2")).Lambda!.Value.Data[0];
        var (thr, thrShape) = f.ReadFloats("node/nodes/features_2/v_threshold");
        Assert.Equal([8, 8, 8], thrShape);
        Assert.All(thr, t => Assert.Equal(lambda, t));
        Assert.All(f.ReadFloats("node/nodes/features_2/r").Data, r => Assert.Equal(1f, r));
        Assert.All(f.ReadFloats("node/nodes/features_2/v_reset").Data, v => Assert.Equal(0f, v));
        Assert.All(f.ReadFloats("node/nodes/features_2/metadata/v_initial").Data, v => Assert.Equal(lambda / 2, v, 6));
        Assert.Equal("subtract", f.ReadString("node/nodes/features_2/metadata/reset"));
        Assert.All(f.ReadFloats("node/nodes/features_2_scale/scale").Data, v => Assert.Equal(lambda, v));
        Assert.Equal([2L, 2], f.ReadInt64s("node/nodes/features_3/kernel_size").Data);
        Assert.Equal([16L, 2, 2], f.ReadInt64s("node/nodes/classifier_0/input_type").Data);
        Assert.Equal([32, 64], f.ReadFloats("node/nodes/classifier_1/weight").Shape);

        string[] chain = ["input", "features_0", "features_2", "features_2_scale", "features_3", "features_4", "features_6", "features_6_scale",
            "features_7", "classifier_0", "classifier_1", "classifier_2", "classifier_2_scale", "classifier_3", "output"];
        Assert.Equal(chain.Zip(chain.Skip(1)).ToList(), Edges(f));
        Assert.Equal(4, f.ReadInt64s("node/metadata/timesteps").Data[0]);
        Assert.Equal("qcfs", f.ReadString("node/metadata/method"));
        Assert.Contains(result.Lost, l => l.StartsWith("reset by subtraction", StringComparison.Ordinal));
        Assert.Contains(result.Lost, l => l.StartsWith("initial membrane potential", StringComparison.Ordinal));
        Assert.Contains(result.Lost, l => l.StartsWith("direct encoding", StringComparison.Ordinal));
        Assert.Equal(["cnn.nir"], Directory.GetFiles(tmp.Combine("out")).Select(Path.GetFileName)); // no temp file left
    }

    [Fact]
    public void ResNet20_ResidualAddIsTwoEdgesIntoTheBlockOutputNeuron()
    {
        using var tmp = new TempDirectory();
        SaveCheckpoint(tmp.Combine("ckpt"), "resnet20");
        string path = tmp.Combine("r20.nir");
        var result = NirExporter.Export(tmp.Combine("ckpt"), new QcfsConversion(), 8, path);

        using var f = Hdf5File.Open(path);
        var types = Types(f);
        Assert.Equal(19, types.Values.Count(t => t == "IF"));
        Assert.Equal(19, types.Values.Count(t => t == "Scale"));
        Assert.Equal(19 + 2, types.Values.Count(t => t == "Conv2d")); // 19 3×3 convs + 2 downsampling shortcuts
        var edges = Edges(f);
        Assert.Equal(result.Edges, edges.Count);
        // Identity shortcut: block 1 of stage 1 sums its conv path and the stem's output.
        Assert.Equal(["conv2_x_0_residual_function_3", "conv1_2_scale"],
            edges.Where(e => e.Item2 == "conv2_x_0_relu").Select(e => e.Item1).ToList());
        // Downsampling block: conv path + 1×1 shortcut conv (BN folded into both: its Identity adds no node).
        Assert.Equal(["conv3_x_0_residual_function_3", "conv3_x_0_shortcut_0"],
            edges.Where(e => e.Item2 == "conv3_x_0_relu").Select(e => e.Item1).ToList());
        Assert.Equal([8, 4, 1, 1], f.ReadFloats("node/nodes/conv3_x_0_shortcut_0/weight").Shape);
        Assert.Equal([2L, 2], f.ReadInt64s("node/nodes/conv3_x_0_shortcut_0/stride").Data);
        // Global average pooling of the 2×2 maps, then Flatten (fc flattens itself), Affine 16 → 3.
        Assert.Equal([2L, 2], f.ReadInt64s("node/nodes/avg_pool/kernel_size").Data);
        Assert.Equal([16L, 1, 1], f.ReadInt64s("node/nodes/fc_flatten/input_type").Data);
        Assert.Equal([3, 16], f.ReadFloats("node/nodes/fc/weight").Shape);
        Assert.Equal([("fc", "output")], edges.Where(e => e.Item2 == "output").ToList());
        Assert.Equal(edges.Count, edges.Distinct().Count());
    }

    [Fact]
    public void OtherMethods_ExportTheGraphAndSayWhatIsLost()
    {
        using var tmp = new TempDirectory();
        SaveCheckpoint(tmp.Combine("ckpt"), "cnn-small");
        var srp = NirExporter.Export(tmp.Combine("ckpt"), ConversionMethods.Create("srp", new MethodOptions(Presim: 3)), 4, tmp.Combine("srp.nir"));
        Assert.Contains(srp.Lost, l => l.StartsWith("SRP's per-sample output masks", StringComparison.Ordinal));
        var cos = NirExporter.Export(tmp.Combine("ckpt"), ConversionMethods.Create("cos", new MethodOptions(Presim: 2)), 4, tmp.Combine("cos.nir"));
        Assert.Contains(cos.Lost, l => l.StartsWith("COS's per-sample", StringComparison.Ordinal));
        var bits = NirExporter.Export(tmp.Combine("ckpt"), ConversionMethods.Create("bit-serial"), 2, tmp.Combine("bits.nir")); // L = 3 → T = 2
        Assert.Contains(bits.Lost, l => l.Contains("will NOT reproduce", StringComparison.Ordinal));
        using (var f = Hdf5File.Open(tmp.Combine("cos.nir")))
            Assert.Equal(2, f.ReadInt64s("node/metadata/cos_presim_steps").Data[0]);
        using (var f = Hdf5File.Open(tmp.Combine("bits.nir")))
            Assert.Equal([2, 1], f.ReadFloats("node/nodes/features_2/metadata/threshold_schedule").Data.Select(v => MathF.Round(v * 3 / f.ReadFloats("node/nodes/features_2/v_threshold").Data[0])).ToArray());

        var e = Assert.Throws<SpikeSharpException>(() => NirExporter.Export(tmp.Combine("ckpt"), ConversionMethods.Create("dual-phase"), 4, tmp.Combine("dp.nir")));
        Assert.Contains("--data", e.Message);
        Assert.False(File.Exists(tmp.Combine("dp.nir")));
    }

    [Fact]
    public void MaxPool_HasNoNirEquivalent()
    {
        var model = new Sequential(new Conv2d(1, 2, 3, 1, 1), new QcfsActivation(), new MaxPool2d(2), new Flatten(), new Linear(8, 2));
        Assert.Contains("max pool", Assert.Throws<SpikeSharpException>(() => Converter.Convert(model)).Message);
        // Even if a network got past the converter, the graph builder refuses the layer by name.
        var neuron = new IfNeuron("1", 1f);
        var raw = new Sequential(new Conv2d(1, 2, 3, 1, 1), neuron, new MaxPool2d(2), new Flatten(), new Linear(8, 2));
        var snn = new SpikingNetwork(raw, [neuron], []);
        var spec = new ModelSpec("cnn-small", 1, 4, 4, 2);
        var e = Assert.Throws<SpikeSharpException>(() => NirExporter.Build(snn, spec, new DataInfo("mnist", [0f], [1f]), new QcfsConversion(), 4));
        Assert.Equal("layer '2' (MaxPool2d) has no NIR equivalent", e.Message);
    }

    [Fact]
    public void UnwritableOutput_ClearErrorAndNoFileLeft()
    {
        using var tmp = new TempDirectory();
        SaveCheckpoint(tmp.Combine("ckpt"), "cnn-small");
        File.WriteAllText(tmp.Combine("afile"), "x");
        var e = Assert.Throws<SpikeSharpException>(() => NirExporter.Export(tmp.Combine("ckpt"), new QcfsConversion(), 4, tmp.Combine("afile", "x.nir")));
        Assert.StartsWith($"cannot write '{tmp.Combine("afile", "x.nir")}'", e.Message);
        Assert.Equal(["afile", "ckpt"], Directory.GetFileSystemEntries(tmp.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    /// <summary>The h5py cross-check: tools/check_nir.py opens the file as nir.read would, chains the shapes along the
    /// edges, and re-simulates the graph in numpy against SpikeSharp's simulation (so the IF + Scale(θ) encoding, the
    /// residual edge sums and the metadata v_initial/reset/fire_rule really describe this SNN). Skipped, with the reason, where /usr/bin/python3 has no h5py; under CI (which installs python3-h5py) a skip fails.</summary>
    [SkippableFact]
    public void H5py_ReadsTheLayoutNirExpects()
    {
        OutsideTool.Require(OutsideTool.H5py);
        using var tmp = new TempDirectory();
        foreach (var model in new[] { "cnn-small", "resnet20" })
        {
            SaveCheckpoint(tmp.Combine(model), model);
            string path = tmp.Combine(model + ".nir");
            NirExporter.Export(tmp.Combine(model), new QcfsConversion(), 4, path);
            // SpikeSharp's own simulation of the same converted network, for check_nir.py to re-simulate the NIR graph against.
            var snn = Converter.Convert(Checkpoint.Load(tmp.Combine(model)).Model, new ConversionOptions(FoldBatchNorm: true));
            var x = TestUtil.Random(7, 6, 1, 8, 8);
            snn.Configure(6, 4);
            var y = snn.Run(x, 4);
            WriteFloats(tmp.Combine("x.f32"), x.Data);
            WriteFloats(tmp.Combine("y.f32"), y.Data);
            var (code, output) = Python(Path.Combine(RepoRoot(), "tools", "check_nir.py"), path, "--simulate", tmp.Combine("x.f32"), tmp.Combine("y.f32"));
            Assert.True(code == 0, output);
            Assert.Contains("check_nir: OK version " + NirGraph.Version, output);
            Assert.Contains("re-simulated 4 steps x 6 inputs", output);
        }
    }

    private static void WriteFloats(string path, float[] data) => File.WriteAllBytes(path, System.Runtime.InteropServices.MemoryMarshal.AsBytes(data.AsSpan()).ToArray());

    internal static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "tools", "check_nir.py"))) return d.FullName;
        throw new InvalidOperationException("tools/check_nir.py not found above " + AppContext.BaseDirectory);
    }

    private static (int Code, string Output) Python(params string[] args) => TestUtil.Python(args);
}

/// <summary>The <c>spikesharp export</c> command in-process (the "cli" collection: tests that redirect the console).</summary>
[Collection("cli")]
public sealed class NirExportCliTests
{
    [Fact]
    public void Export_PrintsNodesEdgesAndLostList_AndRejectsBadInput()
    {
        using var tmp = new TempDirectory();
        string ckpt = tmp.Combine("ckpt");
        NirExportTests.SaveCheckpoint(ckpt, "cnn-small");
        var (code, output, err) = CliTests.Run("export", "--checkpoint", ckpt, "--format", "nir", "--out", tmp.Combine("m.nir"), "--timesteps", "8");
        Assert.True(code == 0, err);
        Assert.Contains("15 nodes, 14 edges (method qcfs, T = 8)", output);
        Assert.Contains("lost in export", output);
        Assert.Contains("reset by subtraction", output);
        Assert.True(File.Exists(tmp.Combine("m.nir")));

        (code, _, err) = CliTests.Run("export", "--checkpoint", ckpt, "--format", "pb", "--out", tmp.Combine("m.onnx"));
        Assert.Equal(2, code);
        Assert.Contains("unknown --format 'pb'; expected one of nir, onnx", err);
        (code, _, err) = CliTests.Run("export", "--checkpoint", tmp.Combine("missing"), "--format", "nir", "--out", tmp.Combine("x.nir"));
        Assert.Equal(2, code);
        Assert.Contains(tmp.Combine("missing"), err);
        (code, _, err) = CliTests.Run("export", "--checkpoint", ckpt, "--format", "nir", "--out", tmp.Combine("y.nir"), "--method", "coss");
        Assert.Equal(2, code);
        Assert.Contains("unknown method 'coss'", err);
        Assert.False(File.Exists(tmp.Combine("x.nir")) || File.Exists(tmp.Combine("y.nir")) || File.Exists(tmp.Combine("m.onnx")));
    }
}
