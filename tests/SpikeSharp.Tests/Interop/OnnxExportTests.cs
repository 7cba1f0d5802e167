// export --format onnx: the file spikesharp import reads back gives the same weights (BN kept) or the same logits (BN
// folded) for every built-in architecture; the QCFS chain carries λ and L.
using SpikeSharp.Autograd;
using SpikeSharp.Interop;
using SpikeSharp.Interop.Onnx;
using SpikeSharp.Models;
using SpikeSharp.Nn;
using SpikeSharp.Tests.Cli;
using Xunit;

namespace SpikeSharp.Tests.Interop;

[Collection("cli")]
public class OnnxExportTests
{
    public static TheoryData<string, int, int, float> Models => new()
    {
        { "cnn-small", 1, 8, 0.25f },
        { "resnet20", 3, 32, 0.25f },
        { "vgg16", 3, 32, 0.0625f },
        { "resnet18", 3, 32, 0.125f },
    };

    private static (Module Model, ModelSpec Spec) Random(string name, int channels, int size, float width)
    {
        var spec = new ModelSpec(name, channels, size, size, 10, width, new ActivationSpec("qcfs", Levels: 4, LambdaInit: 2f));
        var model = ModelFactory.Create(spec, seed: 5);
        var rng = new Random(9);
        foreach (var (_, m) in model.NamedModules())
        {
            if (m is BatchNorm bn)
                for (int c = 0; c < bn.Channels; c++)
                {
                    bn.Weight.Value.Data[c] = 0.5f + rng.NextSingle();
                    bn.Bias.Value.Data[c] = rng.NextSingle() - 0.5f;
                    bn.RunningMean.Data[c] = rng.NextSingle() - 0.5f;
                    bn.RunningVar.Data[c] = 0.5f + rng.NextSingle();
                }
            if (m is Activation { Lambda: { } l }) l.Value.Data[0] = 1f + rng.NextSingle();
        }
        model.Eval();
        return (model, spec);
    }

    [Theory]
    [MemberData(nameof(Models))]
    public void ImportOfTheExport_GivesTheSameWeights_AndFoldedBnTheSameLogits(string name, int channels, int size, float width)
    {
        using var tmp = new TempDirectory();
        var (model, spec) = Random(name, channels, size, width);
        new Checkpoint(spec, new DataInfo("cifar10", [0.5f], [0.25f]), model).Save(tmp.Combine("ckpt"));
        var x = TestUtil.Random(3, 4, channels, size, size);
        var expected = model.Forward(new Variable(x.Clone())).Value;
        foreach (bool fold in new[] { false, true })
        {
            string path = tmp.Combine(fold ? "folded.onnx" : "m.onnx");
            OnnxExporter.Export(tmp.Combine("ckpt"), path, fold);
            var source = ModelImport.Read(path, spec with { Activation = null });
            var (imported, importedSpec) = ModelImport.Build(spec with { Activation = null }, source, null);
            Assert.Equal("qcfs", importedSpec.ActivationOrDefault.Kind);
            Assert.Equal(4, importedSpec.ActivationOrDefault.Levels);
            imported.Eval();
            if (!fold)
            {
                var back = imported.StateDict().ToDictionary(kv => kv.Key, kv => kv.Value);
                foreach (var (key, t) in model.StateDict())
                    Assert.True(t.Data.AsSpan().SequenceEqual(back[key].Data), $"{name}: {key} differs after export + import");
            }
            var y = imported.Forward(new Variable(x.Clone())).Value;
            TestUtil.AssertClose(expected.Data, y.Data, atol: fold ? 1e-4 : 1e-6, rtol: 0, what: $"{name} (fold {fold}) logits");
        }
    }

    /// <summary>ONNX Runtime 1.32 (bench/SpikeSharp.OrtBench's --logits mode) runs the export and gets our logits.</summary>
    [SkippableTheory]
    [InlineData("resnet20", 3, 32, 0.25f, false)]
    [InlineData("resnet20", 3, 32, 0.25f, true)]
    [InlineData("vgg16", 3, 32, 0.0625f, false)]
    [InlineData("cnn-small", 1, 8, 0.25f, true)]
    public void OnnxRuntime_GivesOurLogits(string name, int channels, int size, float width, bool fold)
    {
        OutsideTool.Require(OutsideTool.OnnxRuntime);
        using var tmp = new TempDirectory();
        var (model, spec) = Random(name, channels, size, width);
        var x = TestUtil.Random(3, 4, channels, size, size);
        var expected = model.Forward(new Variable(x.Clone())).Value;
        OnnxExporter.Export(model, spec, tmp.Combine("m.onnx"), fold);
        File.WriteAllBytes(tmp.Combine("x.f32"), System.Runtime.InteropServices.MemoryMarshal.AsBytes(x.Data.AsSpan()).ToArray());
        var psi = new System.Diagnostics.ProcessStartInfo("dotnet", [OutsideTool.OrtBenchDll!, "--logits", tmp.Combine("m.onnx"), tmp.Combine("x.f32"),
            $"4x{channels}x{size}x{size}", tmp.Combine("y.f32")]) { RedirectStandardError = true, RedirectStandardOutput = true };
        using (var p = System.Diagnostics.Process.Start(psi)!)
        {
            string err = p.StandardError.ReadToEnd();
            p.WaitForExit();
            Assert.True(p.ExitCode == 0, err);
        }
        var ort = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(File.ReadAllBytes(tmp.Combine("y.f32"))).ToArray();
        TestUtil.AssertClose(expected.Data, ort, atol: 1e-4, rtol: 0, what: $"{name} (fold {fold}): ONNX Runtime vs SpikeSharp");
    }

    [Fact]
    public void Cli_WritesOnnx_ThatImportReadsBack()
    {
        using var tmp = new TempDirectory();
        NirExportTests.SaveCheckpoint(tmp.Combine("ckpt"), "cnn-small");
        var (code, stdout, err) = CliTests.Run("export", "--checkpoint", tmp.Combine("ckpt"), "--format", "onnx", "--out", tmp.Combine("m.onnx"));
        Assert.True(code == 0, err);
        Assert.Contains("ONNX opset 13", stdout);
        (code, _, err) = CliTests.Run("import", "--from", tmp.Combine("m.onnx"), "--arch", "cnn-small", "--width", "0.25", "--input-shape", "1x8x8",
            "--dataset", "mnist", "--classes", "3", "--out", tmp.Combine("back"));
        Assert.True(code == 0, err);
        static float[] Conv0(string dir) => Checkpoint.Load(dir).Model.StateDict().Single(kv => kv.Key == "features.0.weight").Value.Data;
        Assert.Equal(Conv0(tmp.Combine("ckpt")), Conv0(tmp.Combine("back")));
    }
}
