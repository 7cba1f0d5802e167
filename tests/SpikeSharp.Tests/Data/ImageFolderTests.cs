// Image folders against torchvision + Pillow (fixtures from tools/make_imagefolder_fixtures.py): the listing order,
// the decode (exact for PNG, within 1/255 mean absolute difference for JPEG), Resize + CenterCrop, convert("L"), the
// corrupt-file handling, the random-resized crop's geometry and the parallel loader's determinism.
using System.Text.Json;
using SpikeSharp.Data;
using SpikeSharp.Tests.Interop;
using Xunit;
using Xunit.Abstractions;

namespace SpikeSharp.Tests.Data;

public class ImageFolderTests(ITestOutputHelper output)
{
    private static readonly string Root = Path.Combine(AppContext.BaseDirectory, "Fixtures", "imagefolder");
    private static readonly JsonElement Expected = JsonDocument.Parse(File.ReadAllText(Path.Combine(Root, "expected.json"))).RootElement;

    private static readonly ImageFolderOptions Small = new(Height: 32, Width: 32, Resize: 36, SkipBadImages: true);

    private static IEnumerable<JsonElement> Images => Expected.GetProperty("images").EnumerateArray();

    private static byte[] ExpectedBytes(JsonElement image, string suffix) =>
        File.ReadAllBytes(Path.Combine(Root, "expected", image.GetProperty("name").GetString() + suffix));

    private static bool IsPng(JsonElement image) => image.GetProperty("format").GetString() == "png";

    /// <summary>PNG must be exact; JPEG decoders (libjpeg-turbo in both, but built apart) may differ by rounding.</summary>
    private void AssertPixels(JsonElement image, byte[] expected, ReadOnlySpan<byte> actual, string what)
    {
        Assert.Equal(expected.Length, actual.Length);
        long sum = 0;
        int worst = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            int d = Math.Abs(expected[i] - actual[i]);
            sum += d;
            worst = Math.Max(worst, d);
        }
        double mean = (double)sum / expected.Length;
        output.WriteLine($"{image.GetProperty("file").GetString()} {what}: mean |Δ| {mean:0.0000}, max {worst}");
        if (IsPng(image)) Assert.True(sum == 0, $"{what}: PNG differs from Pillow (mean |Δ| {mean}, max {worst})");
        else Assert.True(mean <= 1.0, $"{what}: JPEG mean |Δ| {mean:0.000} > 1/255 (max {worst})");
    }

    [Fact]
    public void ListsClassesAndFilesAsTorchvision_AndSkipsTheCorruptFileWithACount()
    {
        foreach (var split in new[] { "train", "val" })
        {
            var expected = Expected.GetProperty("splits").GetProperty(split);
            var set = (ImageFolder)Datasets.Load(Datasets.ImageFolderName, Root, train: split == "train", Small);
            Assert.Equal(expected.GetProperty("classes").EnumerateArray().Select(c => c.GetString()), set.ClassNames);
            // torchvision lists the corrupt file too (it reads no pixels while listing); we leave it out with a count.
            var samples = expected.GetProperty("samples").EnumerateArray()
                .Select(s => (File: s[0].GetString()!, Label: s[1].GetInt32()))
                .Where(s => s.File != Expected.GetProperty("corrupt").GetString()).ToList();
            Assert.Equal(samples.Select(s => s.File), set.Files.Select(f => Path.GetRelativePath(Root, f).Replace('\\', '/')));
            Assert.Equal(samples.Select(s => s.Label), set.Labels);
            Assert.Equal(split == "val" ? 1 : 0, set.Skipped);
            Assert.Equal((3, 32, 32, 3), (set.Channels, set.Height, set.Width, set.Classes));
        }
    }

    [Fact]
    public void CorruptFile_IsOneErrorNamingIt()
    {
        var e = Assert.Throws<InvalidFileException>(() => Datasets.Load(Datasets.ImageFolderName, Root, train: false, Small with { SkipBadImages = false }));
        Assert.Equal(Path.Combine(Root, Expected.GetProperty("corrupt").GetString()!), e.FilePath);
        Assert.Contains("--skip-bad-images", e.Message);
        Assert.DoesNotContain("notes.txt", e.Message); // non-image files are ignored, as by torchvision

        // A file whose header is not an image at all fails while listing, before anything else happens.
        using var tmp = new TempDirectory();
        Directory.CreateDirectory(tmp.Combine("val", "a"));
        File.WriteAllText(tmp.Combine("val", "a", "x.png"), "hello");
        var e2 = Assert.Throws<InvalidFileException>(() => Datasets.Load(Datasets.ImageFolderName, tmp.Path, train: false));
        Assert.Equal(tmp.Combine("val", "a", "x.png"), e2.FilePath);
        Assert.Contains("not a decodable image", e2.Message);
        var e3 = Assert.Throws<InvalidFileException>(() => ImageFolder.Load(tmp.Combine("val"), new ImageFolderOptions(SkipBadImages: true)));
        Assert.Contains("none of the 1 image files could be decoded", e3.Message);
    }

    [Fact]
    public void MissingSplitsEmptyClassesAndMismatchedClassesAreClearErrors()
    {
        using var tmp = new TempDirectory();
        var e = Assert.Throws<InvalidFileException>(() => Datasets.Load(Datasets.ImageFolderName, tmp.Path, train: true));
        Assert.Contains("DIR/train/<class>", e.Message);
        Directory.CreateDirectory(tmp.Combine("train", "a"));
        e = Assert.Throws<InvalidFileException>(() => Datasets.Load(Datasets.ImageFolderName, tmp.Path, train: true));
        Assert.Equal(tmp.Combine("train", "a"), e.FilePath);
        Assert.Contains("holds no image files", e.Message);
        File.Copy(Path.Combine(Root, "train", "cat", "c2.png"), tmp.Combine("train", "a", "1.png"));
        Directory.CreateDirectory(tmp.Combine("val", "b"));
        File.Copy(Path.Combine(Root, "train", "cat", "c2.png"), tmp.Combine("val", "b", "1.png"));
        e = Assert.Throws<InvalidFileException>(() => Datasets.Load(Datasets.ImageFolderName, tmp.Path, train: false));
        Assert.Contains("differ from train/'s", e.Message);
    }

    [Fact]
    public void Decode_MatchesPillowConvertRgb()
    {
        foreach (var image in Images)
        {
            byte[] pixels = [];
            var (h, w) = ImageDecoder.Decode(Path.Combine(Root, image.GetProperty("file").GetString()!), 3, ref pixels);
            Assert.Equal((image.GetProperty("height").GetInt32(), image.GetProperty("width").GetInt32()), (h, w));
            AssertPixels(image, ExpectedBytes(image, ".rgb"), pixels.AsSpan(0, 3 * h * w), "decode");
        }
    }

    [Fact]
    public void EvalTransform_MatchesTorchvisionResizeAndCenterCrop()
    {
        var rng = new Rng(0);
        foreach (var (options, suffix) in new[] { (Small, ".eval"), (Small with { Channels = 1 }, ".gray") })
        {
            var sets = new[] { "train", "val" }.Select(s => (ImageFolder)Datasets.Load(Datasets.ImageFolderName, Root, s == "train", options)).ToList();
            foreach (var image in Images)
            {
                string file = Path.Combine(Root, image.GetProperty("file").GetString()!);
                var set = sets.Single(s => s.Files.Contains(file));
                var scratch = new byte[set.ImageSize];
                var actual = set.Read(set.Files.ToList().IndexOf(file), scratch, train: false, ref rng);
                AssertPixels(image, ExpectedBytes(image, suffix), actual, suffix[1..]);
            }
        }
        // The ImageNet default (Resize(256) + CenterCrop(224)) on a small PNG: an upscale, exact.
        var val = (ImageFolder)Datasets.Load(Datasets.ImageFolderName, Root, train: false, new ImageFolderOptions(SkipBadImages: true));
        var big = Images.Single(i => i.TryGetProperty("eval224", out _));
        string bigFile = Path.Combine(Root, big.GetProperty("file").GetString()!);
        AssertPixels(big, ExpectedBytes(big, ".eval224"), val.Read(val.Files.ToList().IndexOf(bigFile), new byte[val.ImageSize], false, ref rng), "eval224");
    }

    [Theory]
    [InlineData(256, 224, 292, 256)] // portrait: the width becomes 256, the height int(256 · 256 / 224) = 292
    [InlineData(375, 500, 256, 341)] // int(256 · 500 / 375) = 341
    [InlineData(500, 333, 384, 256)]
    public void ResizedSize_IsTorchvisions(int h, int w, int eh, int ew) => Assert.Equal((eh, ew), ImageFolder.ResizedSize(h, w, 256));

    [Theory]
    [InlineData(256, 224, 16)]
    [InlineData(69, 32, 18)]  // round(18.5) = 18 (half to even, as Python)
    [InlineData(71, 32, 20)]  // round(19.5) = 20
    [InlineData(30, 33, -1)]  // crop larger than the image: torchvision pads (33 − 30) // 2 = 1 on the left
    public void CenterOffset_IsTorchvisions(int size, int crop, int expected) => Assert.Equal(expected, ImageFolder.CenterOffset(size, crop));

    [Fact]
    public void RandomResizedCrop_StaysInsideTheImage_CoversScaleAndAspect_AndIsSeeded()
    {
        var areas = new List<double>();
        for (int i = 0; i < 2000; i++)
        {
            var rng = Rng.Create(7, (ulong)i);
            var (top, left, h, w) = ImageFolder.RandomResizedCropBox(300, 400, ref rng);
            Assert.InRange(top, 0, 300 - h);
            Assert.InRange(left, 0, 400 - w);
            Assert.InRange((double)w / h, 0.74, 1.34);
            areas.Add((double)h * w / (300 * 400));
            var again = Rng.Create(7, (ulong)i);
            Assert.Equal((top, left, h, w), ImageFolder.RandomResizedCropBox(300, 400, ref again));
        }
        Assert.InRange(areas.Min(), 0.07, 0.12);
        Assert.InRange(areas.Max(), 0.9, 1.0);
        // A sliver (aspect far outside 3/4..4/3) falls back to torchvision's centered crop at the clamped ratio.
        var r = new Rng(1);
        var (t, l, fh, fw) = ImageFolder.RandomResizedCropBox(10, 400, ref r);
        Assert.Equal((0, 10, 13), (t, fh, fw)); // every attempt fails: h is at most 10, so w ≤ 13
        Assert.Equal((400 - 13) / 2, l);
    }

    [Fact]
    public void Loader_DecodesInParallel_SameBatchesAsOneThread_AndReportsItsSpeed()
    {
        var train = (ImageFolder)Datasets.Load(Datasets.ImageFolderName, Root, train: true, Small);
        Assert.True(train.ReadWorkers >= 1);
        var spec = TransformSpec.ForTrain(3, 32, 32, Datasets.DefaultNormalization(Datasets.ImageFolderName), cropPadding: 0);
        using var loader = new DataLoader(train, 4, spec, shuffle: true, train: true, seed: 3);
        var first = loader.Epoch(0).Select(b => (b.Images.Clone().Data, b.Labels.ToArray())).ToList();
        var second = loader.Epoch(0).Select(b => (b.Images.Clone().Data, b.Labels.ToArray())).ToList();
        Assert.Equal(2, first.Count);
        for (int i = 0; i < first.Count; i++)
        {
            Assert.Equal(first[i].Item2, second[i].Item2);
            Assert.Equal(first[i].Item1, second[i].Item1); // per-sample random streams: parallel decoding changes nothing
        }
        var stats = loader.Statistics;
        Assert.Equal(12, stats.Images);
        Assert.True(stats.ReadSeconds > 0 && stats.ImagesPerSecond > 0);
        Assert.Equal(train.ReadWorkers, stats.Workers);
    }
}

/// <summary><c>import</c> of an ONNX ResNet-20 for image folders, then <c>evaluate</c> on the fixture folder end to end:
/// the ANN accuracy must equal the imported model run on the Pillow/torchvision tensors of the same images.</summary>
[Collection("cli")]
public sealed class ImageFolderCliTests
{
    [Fact]
    public void ImportThenEvaluate_ReadsTheFolder_SkipsTheCorruptFile_AndAgreesWithPillowTensors()
    {
        using var tmp = new TempDirectory();
        string root = Path.Combine(AppContext.BaseDirectory, "Fixtures", "imagefolder");
        string onnx = Path.Combine(AppContext.BaseDirectory, "Fixtures", "import", "resnet20_w0.125_opset9_bn.onnx");
        var (code, _, err) = Cli.CliTests.Run("import", "--from", onnx, "--arch", "resnet20", "--width", "0.125", "--input-shape", "3x32x32",
            "--dataset", "imagefolder", "--out", tmp.Combine("ckpt"));
        Assert.True(code == 0, err);

        // Without --skip-bad-images the corrupt file stops the run before any work, naming the file.
        (code, _, err) = Cli.CliTests.Run("evaluate", "--checkpoint", tmp.Combine("ckpt"), "--data", root, "--resize", "36", "--json", tmp.Combine("bad.json"));
        Assert.Equal(2, code);
        Assert.Contains("broken.jpg", err);
        Assert.False(File.Exists(tmp.Combine("bad.json")));

        string json = tmp.Combine("eval.json");
        (code, string stdout, err) = Cli.CliTests.Run("evaluate", "--checkpoint", tmp.Combine("ckpt"), "--data", root, "--resize", "36",
            "--skip-bad-images", "--method", "qcfs", "--timesteps", "1,2,4", "--json", json);
        Assert.True(code == 0, err);
        Assert.Contains("left out 1 unreadable image file(s)", err);
        Assert.Contains("images/s", stdout);
        var doc = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(json))!;
        Assert.Equal(7, (int)doc["test_images"]!);
        Assert.Equal("imagefolder", (string)doc["dataset"]!);
        Assert.True((double)doc["test_data_loading"]!["images_per_second"]! > 0);
        Assert.True((long)doc["test_data_loading"]!["images"]! >= 14); // the ANN pass and the SNN pass

        // The same model on the tensors torchvision + Pillow made (expected/*.eval), normalized with ImageNet's statistics.
        var cp = SpikeSharp.Interop.Checkpoint.Load(tmp.Combine("ckpt"));
        cp.Model.Eval();
        var expected = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(root, "expected.json"))).RootElement;
        var norm = Datasets.DefaultNormalization("imagefolder");
        var samples = expected.GetProperty("splits").GetProperty("val").GetProperty("samples").EnumerateArray()
            .Where(s => s[0].GetString() != expected.GetProperty("corrupt").GetString()).ToList();
        var x = new SpikeSharp.Tensors.Tensor(samples.Count, 3, 32, 32);
        for (int i = 0; i < samples.Count; i++)
        {
            string name = expected.GetProperty("images").EnumerateArray().Single(im => im.GetProperty("file").GetString() == samples[i][0].GetString()).GetProperty("name").GetString()!;
            var pixels = File.ReadAllBytes(Path.Combine(root, "expected", name + ".eval"));
            for (int k = 0; k < pixels.Length; k++) x.Data[i * pixels.Length + k] = (pixels[k] / 255f - norm.MeanOf(k / 1024)) / norm.StdOf(k / 1024);
        }
        var logits = cp.Model.Forward(new SpikeSharp.Autograd.Variable(x)).Value;
        int correct = 0;
        for (int i = 0; i < samples.Count; i++)
        {
            var row = logits.Data.AsSpan(i * 10, 10);
            if (row.IndexOf(System.Numerics.Tensors.TensorPrimitives.Max(row)) == samples[i][1].GetInt32()) correct++;
        }
        Assert.Equal((double)correct / samples.Count, (double)doc["ann_accuracy"]!, 12);
    }

    [Fact]
    public void TrainOnAFolder_RandomResizedCropsAtTheInputShape_ThenEvaluate()
    {
        using var tmp = new TempDirectory();
        string root = Path.Combine(AppContext.BaseDirectory, "Fixtures", "imagefolder");
        var (code, stdout, err) = Cli.CliTests.Run("train", "--model", "cnn-small", "--dataset", "imagefolder", "--data", root, "--input-shape", "3x24x24",
            "--epochs", "1", "--batch", "4", "--skip-bad-images", "--preset", "qcfs", "--out", tmp.Combine("run"));
        Assert.True(code == 0, err);
        Assert.Contains("(3x24x24, 3 classes", stdout);
        var cp = SpikeSharp.Interop.Checkpoint.Load(tmp.Combine("run", "last"));
        Assert.Equal(("imagefolder", 3, 24), (cp.Data.Dataset, cp.Spec.Classes, cp.Spec.Height));
        Assert.Equal(Datasets.DefaultNormalization("imagefolder").Mean, cp.Data.Mean);
        (code, stdout, err) = Cli.CliTests.Run("evaluate", "--checkpoint", tmp.Combine("run", "last"), "--data", root, "--skip-bad-images", "--method", "qcfs", "--timesteps", "2");
        Assert.True(code == 0, err);
        Assert.Contains("imagefolder: 7 test images", stdout);
    }
}
