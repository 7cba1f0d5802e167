// Tests of CifarReader on generated CIFAR-10 and CIFAR-100 binary files, good and malformed.
using SpikeSharp.Data;
using Xunit;

namespace SpikeSharp.Tests.Data;

public sealed class CifarReaderTests
{
    private const int Image = CifarReader.ImageBytes;

    private static byte[][] Labels10(params int[] labels) => labels.Select(l => new[] { (byte)l }).ToArray();

    // Writes data_batch_1..5 (2 images each, labels 0..9 in order) and test_batch (3 images); returns all pixels.
    private static (byte[] Train, byte[] Test) WriteCifar10(TempDir dir, string folder)
    {
        var train = FileBuilder.Bytes(10 * Image, 21);
        for (int b = 0; b < 5; b++)
        {
            var records = FileBuilder.CifarRecords(Labels10(2 * b, 2 * b + 1), train[(2 * b * Image)..((2 * b + 2) * Image)]);
            dir.Write(Path.Combine(folder, $"data_batch_{b + 1}.bin"), records);
        }
        var test = FileBuilder.Bytes(3 * Image, 22);
        dir.Write(Path.Combine(folder, "test_batch.bin"), FileBuilder.CifarRecords(Labels10(9, 0, 4), test));
        return (train, test);
    }

    [Theory]
    [InlineData("")]
    [InlineData(CifarReader.Cifar10Folder)]
    public void Cifar10_ReadsBatchesInOrder(string folder)
    {
        using var dir = new TempDir();
        var (train, test) = WriteCifar10(dir, folder);

        var trainSet = CifarReader.ReadCifar10(dir.Path, train: true);
        var testSet = CifarReader.ReadCifar10(dir.Path, train: false);

        Assert.Equal((10, 3, 32, 32, 10), (trainSet.Count, trainSet.Channels, trainSet.Height, trainSet.Width, trainSet.Classes));
        Assert.Equal(train, trainSet.Pixels);
        Assert.Equal(Enumerable.Range(0, 10), trainSet.Labels);
        Assert.Equal(test, testSet.Pixels);
        Assert.Equal([9, 0, 4], testSet.Labels);
        Assert.Equal("cifar10", testSet.Name);
    }

    [Theory]
    [InlineData("")]
    [InlineData(CifarReader.Cifar100Folder)]
    public void Cifar100_UsesFineLabels(string folder)
    {
        using var dir = new TempDir();
        var pixels = FileBuilder.Bytes(4 * Image, 23);
        byte[][] labels = [[3, 99], [19, 0], [0, 42], [7, 7]];
        dir.Write(Path.Combine(folder, "train.bin"), FileBuilder.CifarRecords(labels, pixels));
        dir.Write(Path.Combine(folder, "test.bin"), FileBuilder.CifarRecords(labels[..1], pixels[..Image]));

        var data = Datasets.Load("cifar100", dir.Path, train: true);

        Assert.Equal((4, 100, "cifar100"), (data.Count, data.Classes, data.Name));
        Assert.Equal(pixels, Assert.IsType<ImageDataset>(data).Pixels);
        Assert.Equal([99, 0, 42, 7], data.Labels);
        Assert.Equal(1, Datasets.Load("CIFAR100", dir.Path, train: false).Count);
    }

    [Fact]
    public void LengthNotMultipleOfRecord_IsReported()
    {
        using var dir = new TempDir();
        var records = FileBuilder.CifarRecords(Labels10(1, 2), FileBuilder.Bytes(2 * Image, 1));
        string path = dir.Write("test_batch.bin", records[..^5]);

        var e = Assert.Throws<InvalidFileException>(() => CifarReader.ReadCifar10(dir.Path, train: false));

        Assert.Equal(path, e.FilePath);
        Assert.Contains("length 6141 is not a positive multiple of the CIFAR-10 record (3073 bytes", e.Message);
        Assert.Contains("3068 bytes of a partial record at offset 3073", e.Message);
    }

    [Fact]
    public void EmptyFile_IsReported()
    {
        using var dir = new TempDir();
        dir.Write("test.bin", []);

        var e = Assert.Throws<InvalidFileException>(() => CifarReader.ReadCifar100(dir.Path, train: false));

        Assert.Contains("length 0 is not a positive multiple of the CIFAR-100 record (3074 bytes", e.Message);
    }

    [Fact]
    public void Cifar10LabelOutOfRange_NamesOffset()
    {
        using var dir = new TempDir();
        dir.Write("test_batch.bin", FileBuilder.CifarRecords(Labels10(1, 10), FileBuilder.Bytes(2 * Image, 1)));

        var e = Assert.Throws<InvalidFileException>(() => CifarReader.ReadCifar10(dir.Path, train: false));

        Assert.Contains("bad label 10 at offset 3073; expected 0..9", e.Message);
    }

    [Theory]
    [InlineData(20, 5, "bad coarse label 20 at offset 3074; expected 0..19")]
    [InlineData(5, 100, "bad fine label 100 at offset 3075; expected 0..99")]
    public void Cifar100LabelOutOfRange_NamesOffset(int coarse, int fine, string message)
    {
        using var dir = new TempDir();
        byte[][] labels = [[1, 1], [(byte)coarse, (byte)fine]];
        dir.Write("test.bin", FileBuilder.CifarRecords(labels, FileBuilder.Bytes(2 * Image, 1)));

        var e = Assert.Throws<InvalidFileException>(() => CifarReader.ReadCifar100(dir.Path, train: false));

        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void MissingBatches_AreListed()
    {
        using var dir = new TempDir();
        for (int b = 1; b <= 3; b++)
            dir.Write($"data_batch_{b}.bin", FileBuilder.CifarRecords(Labels10(1), FileBuilder.Bytes(Image, b)));

        var e = Assert.Throws<InvalidFileException>(() => Datasets.Load("cifar10", dir.Path, train: true));

        Assert.Equal(dir.Path, e.FilePath);
        Assert.Contains("CIFAR-10 binary files missing: data_batch_4.bin, data_batch_5.bin", e.Message);
        Assert.Contains(CifarReader.Cifar10Folder, e.Message);
        Assert.Contains("cifar-10-binary.tar.gz", e.Message);
    }

    [Fact]
    public void MissingFolder_IsReported()
    {
        string path = Path.Combine(Path.GetTempPath(), "spikesharp-no-such-folder-" + Guid.NewGuid().ToString("N"));

        var e = Assert.Throws<InvalidFileException>(() => CifarReader.ReadCifar100(path, train: true));

        Assert.Equal(path, e.FilePath);
        Assert.Contains("dataset folder not found; expected a folder holding the CIFAR-100 binary files train.bin", e.Message);
    }

    [Fact]
    public void GzippedBatch_AsksForTheExtractedFile()
    {
        using var dir = new TempDir();
        dir.Write("test_batch.bin", FileBuilder.Gzip(FileBuilder.CifarRecords(Labels10(1), FileBuilder.Bytes(Image, 1))));

        var e = Assert.Throws<InvalidFileException>(() => CifarReader.ReadCifar10(dir.Path, train: false));

        Assert.Contains("is gzip-compressed", e.Message);
    }
}
