// Tests of IdxReader: round trips (raw and gzip), the bundled MNIST sample, and one test per class of bad input.
using SpikeSharp.Data;
using Xunit;

namespace SpikeSharp.Tests.Data;

public sealed class IdxReaderTests
{
    private static (byte[] Pixels, byte[] Labels) Sample(int count = 5, int height = 3, int width = 4) =>
        (FileBuilder.Bytes(count * height * width, 11), Enumerable.Range(0, count).Select(i => (byte)(i * 3 % 7)).ToArray());

    private static InvalidFileException ReadPairFails(TempDir dir, byte[] images, byte[] labels)
    {
        string ip = dir.Write("images", images), lp = dir.Write("labels", labels);
        return Assert.Throws<InvalidFileException>(() => IdxReader.ReadPair(ip, lp, "t"));
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ReadPair_RoundTripsGeneratedFiles(bool gzip)
    {
        using var dir = new TempDir();
        var (pixels, labels) = Sample();
        string ip = dir.Write("a-images", FileBuilder.MaybeGzip(FileBuilder.IdxImages(pixels, 5, 3, 4), gzip));
        string lp = dir.Write("a-labels", FileBuilder.MaybeGzip(FileBuilder.IdxLabels(labels), gzip));

        var data = IdxReader.ReadPair(ip, lp, "tiny");

        Assert.Equal((5, 1, 3, 4), (data.Count, data.Channels, data.Height, data.Width));
        Assert.Equal(pixels, data.Pixels);
        Assert.Equal(labels.Select(b => (int)b), data.Labels);
        Assert.Equal(labels.Max() + 1, data.Classes);
        Assert.Equal("tiny", data.Name);
        Assert.Equal(pixels.AsSpan(12, 12).ToArray(), data.Image(1).ToArray());
    }

    [Fact]
    public void Gzip_IsDetectedByContentNotName()
    {
        using var dir = new TempDir();
        var (pixels, labels) = Sample();
        string ip = dir.Write("images-without-extension", FileBuilder.Gzip(FileBuilder.IdxImages(pixels, 5, 3, 4)));
        string lp = dir.Write("labels-raw.gz", FileBuilder.IdxLabels(labels));

        var data = IdxReader.ReadPair(ip, lp, "t");

        Assert.Equal(pixels, data.Pixels);
        Assert.Equal(labels.Select(b => (int)b), data.Labels);
    }

    [Theory]
    [InlineData("train", 7996)]
    [InlineData("t10k", 2004)]
    public void ReadPair_ReadsTheBundledMnistSample(string prefix, int count)
    {
        string dir = RepoPaths.SampleData;
        var data = IdxReader.ReadPair(Path.Combine(dir, $"{prefix}-images-idx3-ubyte.gz"),
            Path.Combine(dir, $"{prefix}-labels-idx1-ubyte.gz"), "mnist", classes: 10);

        Assert.Equal((count, 1, 28, 28, 10), (data.Count, data.Channels, data.Height, data.Width, data.Classes));
        Assert.All(data.ClassCounts(), c => Assert.True(c > count / 20, $"class count {c}"));
        Assert.Contains(data.Pixels, p => p == 0);
        Assert.Contains(data.Pixels, p => p > 200);
    }

    [Fact]
    public void ReadImagesAndReadLabels_ReadEachFileAlone()
    {
        using var dir = new TempDir();
        var (pixels, labels) = Sample();
        var images = IdxReader.ReadImages(dir.Write("i", FileBuilder.IdxImages(pixels, 5, 3, 4)));
        var values = IdxReader.ReadLabels(dir.Write("l", FileBuilder.Gzip(FileBuilder.IdxLabels(labels))));

        Assert.Equal((5, 3, 4), (images.Count, images.Height, images.Width));
        Assert.Equal(pixels, images.Pixels);
        Assert.Equal(labels.Select(b => (int)b), values);
    }

    [Fact]
    public void BadMagic_NamesOffsetAndExpectedValue()
    {
        using var dir = new TempDir();
        var (pixels, labels) = Sample();
        var e = ReadPairFails(dir, FileBuilder.IdxLabels(labels), FileBuilder.IdxLabels(labels));

        Assert.EndsWith("images", e.FilePath);
        Assert.Contains("bad magic 0x00000801 at offset 0; expected 0x00000803 (IDX images", e.Message);
        Assert.Contains("looks like an IDX labels file", e.Message);
    }

    [Fact]
    public void WrongDimensionCount_IsBadMagic()
    {
        using var dir = new TempDir();
        var (pixels, labels) = Sample();
        var e = ReadPairFails(dir, FileBuilder.IdxImages(pixels, 5, 3, 4, magic: 0x00000802), FileBuilder.IdxLabels(labels));

        Assert.Contains("bad magic 0x00000802 at offset 0; expected 0x00000803", e.Message);
        Assert.Contains("2 dimensions", e.Message);
    }

    [Theory]
    [InlineData(0, 3, 4, "bad image count 0 at offset 4; expected 1..10000000")]
    [InlineData(5, 5000, 4, "bad image height (rows) 5000 at offset 8; expected 1..4096")]
    [InlineData(5, 3, 0, "bad image width (columns) 0 at offset 12; expected 1..4096")]
    [InlineData(20_000_000, 3, 4, "bad image count 20000000 at offset 4")]
    public void BadDimension_NamesFieldOffsetAndRange(int count, int height, int width, string message)
    {
        using var dir = new TempDir();
        string path = dir.Write("images", FileBuilder.IdxImages(FileBuilder.Bytes(60, 1), count, height, width));

        var e = Assert.Throws<InvalidFileException>(() => IdxReader.ReadImages(path));

        Assert.Contains(message, e.Message);
    }

    [Fact]
    public void HugeDeclaredPayload_FailsBeforeAllocating()
    {
        using var dir = new TempDir();
        // 4096 × 4096 × 200 bytes exceeds any array; 1e6 × 28 × 28 fits but the gzip data is far shorter.
        string tooBig = dir.Write("big", FileBuilder.Gzip(FileBuilder.IdxImages([], 200, 4096, 4096)));
        string short1 = dir.Write("short", FileBuilder.Gzip(FileBuilder.IdxImages(FileBuilder.Bytes(784, 2), 1_000_000, 28, 28)));

        Assert.Contains("expected at most", Assert.Throws<InvalidFileException>(() => IdxReader.ReadImages(tooBig)).Message);
        var e = Assert.Throws<InvalidFileException>(() => IdxReader.ReadImages(short1));
        Assert.Contains("truncated", e.Message);
        Assert.Contains("decompressed data ends at offset 800", e.Message);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void TruncatedPayload_GivesOffsets(bool gzip)
    {
        using var dir = new TempDir();
        var (pixels, labels) = Sample();
        var raw = FileBuilder.IdxImages(pixels, 5, 3, 4);
        var e = ReadPairFails(dir, FileBuilder.MaybeGzip(raw[..^10], gzip), FileBuilder.IdxLabels(labels));

        Assert.Contains("truncated", e.Message);
        Assert.Contains("5 images of 3×4 (60 bytes from offset 16)", e.Message);
        Assert.Contains("ends at offset 66; expected 76 bytes", e.Message);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void TrailingBytes_AreAnError(bool gzip)
    {
        using var dir = new TempDir();
        var (pixels, labels) = Sample();
        var raw = FileBuilder.Concat(FileBuilder.IdxLabels(labels), [1, 2, 3]);
        string ip = dir.Write("i", FileBuilder.IdxImages(pixels, 5, 3, 4));
        string lp = dir.Write("l", FileBuilder.MaybeGzip(raw, gzip));

        var e = Assert.Throws<InvalidFileException>(() => IdxReader.ReadPair(ip, lp, "t"));

        Assert.Equal(lp, e.FilePath);
        Assert.Contains("trailing data: 3 bytes after offset 13", e.Message);
    }

    [Fact]
    public void TruncatedHeader_IsReported()
    {
        using var dir = new TempDir();
        string path = dir.Write("i", FileBuilder.IdxImages([], 5, 3, 4)[..10]);

        var e = Assert.Throws<InvalidFileException>(() => IdxReader.ReadImages(path));

        Assert.Contains("truncated header: the data ends at offset 10; expected a 16-byte IDX images header", e.Message);
    }

    [Fact]
    public void CountMismatch_NamesBothFiles()
    {
        using var dir = new TempDir();
        var (pixels, labels) = Sample();
        var e = ReadPairFails(dir, FileBuilder.IdxImages(pixels, 5, 3, 4), FileBuilder.IdxLabels(labels[..4]));

        Assert.EndsWith("labels", e.FilePath);
        Assert.Contains("label count 4 at offset 4 does not match the image count 5 of", e.Message);
    }

    [Fact]
    public void LabelAboveClassCount_NamesOffset()
    {
        using var dir = new TempDir();
        string path = dir.Write("l", FileBuilder.IdxLabels([1, 2, 12, 3]));

        var e = Assert.Throws<InvalidFileException>(() => IdxReader.ReadLabels(path, classes: 10));

        Assert.Contains("label 12 at offset 10; expected 0..9", e.Message);
    }

    [Fact]
    public void MissingFile_IsInvalidFileNamingThePath()
    {
        using var dir = new TempDir();
        string path = Path.Combine(dir.Path, "nope-idx3-ubyte");

        var e = Assert.Throws<InvalidFileException>(() => IdxReader.ReadImages(path));

        Assert.Equal(path, e.FilePath);
        Assert.Contains("file not found", e.Message);
    }

    [Fact]
    public void CorruptGzip_IsInvalidFile()
    {
        using var dir = new TempDir();
        // A valid gzip member header followed by a deflate block of reserved type 11.
        byte[] bad = [0x1F, 0x8B, 8, 0, 0, 0, 0, 0, 0, 0xFF, .. Enumerable.Repeat((byte)0xFF, 40)];
        string path = dir.Write("i.gz", bad);

        var e = Assert.Throws<InvalidFileException>(() => IdxReader.ReadImages(path));

        Assert.Contains("corrupt gzip data near decompressed offset 0", e.Message);
    }

    [Fact]
    public void CutGzipStream_IsInvalidFile()
    {
        using var dir = new TempDir();
        var gz = FileBuilder.Gzip(FileBuilder.IdxImages(FileBuilder.Bytes(6000, 3), 10, 20, 30));
        string path = dir.Write("i.gz", gz[..(gz.Length / 2)]);

        var e = Assert.Throws<InvalidFileException>(() => IdxReader.ReadImages(path));

        Assert.Equal(path, e.FilePath);
    }
}
