// Tests for CheckpointFiles: save/load round trip and the errors for unwritable, missing and malformed checkpoints.
using SpikeSharp.Interop;
using SpikeSharp.Tensors;
using Xunit;

namespace SpikeSharp.Tests.Interop;

public class CheckpointFilesTests
{
    private const string ModelJson = "{\"arch\":\"vgg16\",\"activation\":{\"kind\":\"qcfs\",\"L\":4}}";

    private static Dictionary<string, Tensor> State() => new()
    {
        ["features.0.weight"] = new Tensor([1f, 2f, 3f, 4f, 5f, 6f], 2, 3),
        ["features.0.bias"] = new Tensor([0.5f, -0.5f], 2),
        ["features.1.lam"] = new Tensor([8f], 1),
    };

    [Fact]
    public void SaveThenLoad_RoundTripsStateAndJson_AndCreatesNestedDirectories()
    {
        using var tmp = new TempDirectory();
        string dir = tmp.Combine("runs", "a", "ckpt");
        CheckpointFiles.Save(dir, State(), ModelJson);

        Assert.Equal(["model.json", "model.safetensors"], Directory.GetFiles(dir).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        var (state, json) = CheckpointFiles.Load(dir);
        Assert.Equal(ModelJson, json);
        Assert.Equal(["features.0.bias", "features.0.weight", "features.1.lam"], state.Keys);
        foreach (var (name, t) in State())
        {
            Assert.Equal(t.Shape, state[name].Shape);
            Assert.Equal(t.Data, state[name].Data);
        }
    }

    [Fact]
    public void Save_OverwritesAnExistingCheckpoint()
    {
        using var tmp = new TempDirectory();
        CheckpointFiles.Save(tmp.Path, State(), ModelJson);
        CheckpointFiles.Save(tmp.Path, [new("w", new Tensor([9f], 1))], "{\"v\":2}");
        var (state, json) = CheckpointFiles.Load(tmp.Path);
        Assert.Equal(["w"], state.Keys);
        Assert.Equal("{\"v\":2}", json);
        Assert.Equal(2, Directory.GetFiles(tmp.Path).Length); // no temp or probe files left behind
    }

    [Fact]
    public void Save_IntoAPathThatIsAFile_FailsBeforeWriting()
    {
        using var tmp = new TempDirectory();
        string file = tmp.Combine("taken");
        File.WriteAllText(file, "x");
        var e = Assert.Throws<SpikeSharpException>(() => CheckpointFiles.Save(file, State(), ModelJson));
        Assert.Contains($"'{file}' is an existing file", e.Message);

        string below = Path.Combine(file, "ckpt");
        e = Assert.Throws<SpikeSharpException>(() => CheckpointFiles.Save(below, State(), ModelJson));
        Assert.Contains($"cannot create checkpoint directory '{below}'", e.Message);
        Assert.Equal(["taken"], Directory.GetFileSystemEntries(tmp.Path).Select(Path.GetFileName));
    }

    [SkippableFact]
    public void Save_IntoAReadOnlyDirectory_FailsBeforeWriting()
    {
        using var tmp = new TempDirectory();
        string dir = tmp.Combine("ro");
        Directory.CreateDirectory(dir);
        using (OutsideTool.ReadOnlyDirectory(dir))
        {
            var e = Assert.Throws<SpikeSharpException>(() => CheckpointFiles.Save(dir, State(), ModelJson));
            Assert.Contains($"checkpoint directory '{dir}' is not writable", e.Message);
            Assert.Empty(Directory.GetFileSystemEntries(dir));
        }
    }

    [Fact]
    public void Save_WithInvalidModelJson_ThrowsAndWritesNothing()
    {
        using var tmp = new TempDirectory();
        string dir = tmp.Combine("ckpt");
        var e = Assert.Throws<ArgumentException>(() => CheckpointFiles.Save(dir, State(), "{\"arch\":"));
        Assert.Contains("not valid JSON", e.Message);
        Assert.False(Directory.Exists(dir));
    }

    [Fact]
    public void Load_MissingDirectory_NamesItAndSaysWhatACheckpointHolds()
    {
        using var tmp = new TempDirectory();
        string dir = tmp.Combine("nope");
        var e = Assert.Throws<SpikeSharpException>(() => CheckpointFiles.Load(dir));
        Assert.Contains($"checkpoint directory '{dir}' does not exist", e.Message);
        Assert.Contains("holds model.safetensors and model.json", e.Message);
    }

    [Fact]
    public void Load_GivenTheSafetensorsFileItself_AsksForTheDirectory()
    {
        using var tmp = new TempDirectory();
        CheckpointFiles.Save(tmp.Path, State(), ModelJson);
        string file = tmp.Combine("model.safetensors");
        var e = Assert.Throws<SpikeSharpException>(() => CheckpointFiles.Load(file));
        Assert.Contains($"'{file}' is a file, not a directory", e.Message);
    }

    [Theory]
    [InlineData("model.json")]
    [InlineData("model.safetensors")]
    public void Load_MissingFile_NamesItsPath(string missing)
    {
        using var tmp = new TempDirectory();
        CheckpointFiles.Save(tmp.Path, State(), ModelJson);
        File.Delete(tmp.Combine(missing));
        var e = Assert.Throws<SpikeSharpException>(() => CheckpointFiles.Load(tmp.Path));
        Assert.Contains($"'{tmp.Combine(missing)}' is missing", e.Message);
        Assert.Contains("a checkpoint directory holds model.safetensors and model.json", e.Message);
    }

    [Fact]
    public void Load_EmptyDirectory_NamesBothFiles()
    {
        using var tmp = new TempDirectory();
        var e = Assert.Throws<SpikeSharpException>(() => CheckpointFiles.Load(tmp.Path));
        Assert.Contains($"'{tmp.Combine("model.safetensors")}' and '{tmp.Combine("model.json")}' are missing", e.Message);
    }

    [Fact]
    public void Load_MalformedFiles_ThrowInvalidFileExceptionNamingThem()
    {
        using var tmp = new TempDirectory();
        CheckpointFiles.Save(tmp.Path, State(), ModelJson);
        string json = tmp.Combine("model.json"), tensors = tmp.Combine("model.safetensors");

        File.WriteAllText(json, "{\"arch\":");
        var e = Assert.Throws<InvalidFileException>(() => CheckpointFiles.Load(tmp.Path));
        Assert.Equal(json, e.FilePath);
        Assert.Contains("is not valid JSON", e.Message);

        File.WriteAllBytes(json, [(byte)'{', 0xC3, (byte)'}']);
        e = Assert.Throws<InvalidFileException>(() => CheckpointFiles.Load(tmp.Path));
        Assert.Contains("not valid UTF-8", e.Message);

        File.WriteAllText(json, ModelJson);
        File.WriteAllBytes(tensors, File.ReadAllBytes(tensors)[..20]);
        e = Assert.Throws<InvalidFileException>(() => CheckpointFiles.Load(tmp.Path));
        Assert.Equal(tensors, e.FilePath);
    }
}
