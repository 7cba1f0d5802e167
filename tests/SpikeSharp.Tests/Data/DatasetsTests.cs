// Tests of the dataset catalogue (Datasets, DatasetSources) and of ImageDataset's own operations.
using SpikeSharp.Data;
using Xunit;

namespace SpikeSharp.Tests.Data;

public sealed class DatasetsTests
{
    private static void WriteIdxPair(TempDir dir, string folder, string prefix, int count, bool gzip)
    {
        string ext = gzip ? ".gz" : "";
        var labels = Enumerable.Range(0, count).Select(i => (byte)(i % 10)).ToArray();
        dir.Write(Path.Combine(folder, $"{prefix}-images-idx3-ubyte{ext}"),
            FileBuilder.MaybeGzip(FileBuilder.IdxImages(FileBuilder.Bytes(count * 784, count), count, 28, 28), gzip));
        dir.Write(Path.Combine(folder, $"{prefix}-labels-idx1-ubyte{ext}"), FileBuilder.MaybeGzip(FileBuilder.IdxLabels(labels), gzip));
    }

    [Fact]
    public void Load_Mnist_ReadsTheBundledSample()
    {
        var train = Datasets.Load("mnist", RepoPaths.SampleData, train: true);
        var test = Datasets.Load("MNIST", RepoPaths.SampleData, train: false);

        Assert.Equal((7996, 10, "mnist"), (train.Count, train.Classes, train.Name));
        Assert.Equal((2004, 1, 28, 28), (test.Count, test.Channels, test.Height, test.Width));
    }

    [Theory]
    [InlineData("", false)]
    [InlineData("", true)]
    [InlineData("FashionMNIST/raw", true)]
    public void Load_FashionMnist_FindsRawGzipAndTorchvisionLayout(string folder, bool gzip)
    {
        using var dir = new TempDir();
        WriteIdxPair(dir, folder, "t10k", 12, gzip);

        var data = Datasets.Load("fashion-mnist", dir.Path, train: false);

        Assert.Equal((12, 10, "fashion-mnist"), (data.Count, data.Classes, data.Name));
    }

    [Fact]
    public void Load_UnknownName_ListsTheKnownOnes()
    {
        var e = Assert.Throws<SpikeSharpException>(() => Datasets.Load("x", ".", train: true));

        Assert.Equal("unknown dataset 'x'; expected one of mnist, fashion-mnist, cifar10, cifar100, imagefolder", e.Message);
    }

    [Fact]
    public void Load_MissingFolder_NamesPathAndExpectedFiles()
    {
        string path = Path.Combine(Path.GetTempPath(), "spikesharp-no-such-folder-" + Guid.NewGuid().ToString("N"));

        var e = Assert.Throws<InvalidFileException>(() => Datasets.Load("mnist", path, train: true));

        Assert.Equal(path, e.FilePath);
        Assert.Contains("dataset folder not found", e.Message);
        Assert.Contains("train-images-idx3-ubyte[.gz] and train-labels-idx1-ubyte[.gz]", e.Message);
    }

    [Fact]
    public void Load_MissingLabels_SaysWhichFile()
    {
        using var dir = new TempDir();
        WriteIdxPair(dir, "", "train", 3, gzip: true);
        File.Delete(Path.Combine(dir.Path, "train-labels-idx1-ubyte.gz"));

        var e = Assert.Throws<InvalidFileException>(() => Datasets.Load("mnist", dir.Path, train: true));

        Assert.Contains("mnist training files not found: missing train-labels-idx1-ubyte[.gz]", e.Message);
        Assert.Contains(Path.Combine(dir.Path, "MNIST", "raw"), e.Message);
    }

    [Fact]
    public void Load_LabelOutsideTenClasses_IsInvalidFile()
    {
        using var dir = new TempDir();
        WriteIdxPair(dir, "", "train", 3, gzip: false);
        dir.Write("train-labels-idx1-ubyte", FileBuilder.IdxLabels([0, 10, 2]));

        var e = Assert.Throws<InvalidFileException>(() => Datasets.Load("mnist", dir.Path, train: true));

        Assert.Contains("label 10 at offset 9; expected 0..9", e.Message);
    }

    [Fact]
    public void DefaultNormalization_HasThePublishedStatistics()
    {
        Assert.Equal([0.1307f], Datasets.DefaultNormalization("mnist").Mean);
        Assert.Equal([0.3081f], Datasets.DefaultNormalization("mnist").Std);
        Assert.Equal([0.2860f], Datasets.DefaultNormalization("fashion-mnist").Mean);
        Assert.Equal([0.3530f], Datasets.DefaultNormalization("fashion-mnist").Std);
        Assert.Equal([0.4914f, 0.4822f, 0.4465f], Datasets.DefaultNormalization("cifar10").Mean);
        Assert.Equal([0.2023f, 0.1994f, 0.2010f], Datasets.DefaultNormalization("cifar10").Std);
        var c100 = Datasets.DefaultNormalization("cifar100");
        Assert.Equal([129.3f / 255, 124.1f / 255, 112.4f / 255], c100.Mean);
        Assert.Equal([68.2f / 255, 65.4f / 255, 70.4f / 255], c100.Std);
        Assert.Equal(0.50706f, c100.Mean[0], 1e-5f);
    }

    [Fact]
    public void Catalogue_KnowsClassesAndShapes()
    {
        Assert.Equal(100, Datasets.ClassCount("cifar100"));
        Assert.Equal(10, Datasets.ClassCount("fashion-mnist"));
        Assert.Equal((1, 28, 28), Datasets.ImageShape("mnist"));
        Assert.Equal((3, 32, 32), Datasets.ImageShape("cifar10"));
    }

    [Fact]
    public void Sources_HaveUrlsAndMd5ForEveryDataset()
    {
        // An image folder is the user's own files: nothing to download.
        foreach (string name in Datasets.Names.Where(n => n != Datasets.ImageFolderName))
        {
            var sources = DatasetSources.For(name);
            Assert.NotEmpty(sources);
            Assert.All(sources, s =>
            {
                Assert.Matches("^[0-9a-f]{32}$", s.Md5);
                Assert.StartsWith("http", s.Url);
                Assert.EndsWith(s.FileName, s.Url);
            });
        }
        Assert.Equal(4, DatasetSources.For("mnist").Count);
        Assert.Equal("c32a1d4ab5d03f1284b67883e8d87530", DatasetSources.For("cifar10")[0].Md5);
    }

    [Fact]
    public void ComputeMd5_MatchesTheKnownDigest()
    {
        using var dir = new TempDir();
        string path = dir.Write("abc", "abc"u8.ToArray());

        Assert.Equal("900150983cd24fb0d6963f7d28e17f72", DatasetSources.ComputeMd5(path));
    }

    [Fact]
    public void TakeAndSubset_CopyTheRightImages()
    {
        var data = SyntheticData.Random(6, 2, 3, 3);

        var first = data.Take(2);
        var picked = data.Subset([5, 0, 5]);

        Assert.Same(data, data.Take(100));
        Assert.Equal((2, 10), (first.Count, first.Classes));
        Assert.Equal(data.Pixels[..36], first.Pixels);
        Assert.Equal([5, 0, 5], picked.Labels);
        Assert.Equal(data.Image(5).ToArray(), picked.Image(2).ToArray());
        Assert.Equal(data.Image(0).ToArray(), picked.Image(1).ToArray());
        Assert.Throws<ArgumentOutOfRangeException>(() => data.Subset([6]));
        Assert.Throws<SpikeSharpException>(() => data.Take(-1));
    }

    [Fact]
    public void Constructor_RejectsInconsistentArrays()
    {
        Assert.Throws<ArgumentException>(() => new ImageDataset("x", new byte[10], [0, 1], 1, 2, 3, 2));
        Assert.Throws<ArgumentException>(() => new ImageDataset("x", new byte[12], [0, 2], 1, 2, 3, 2));
    }
}
