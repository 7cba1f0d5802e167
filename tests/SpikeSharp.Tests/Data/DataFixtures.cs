// Test helpers for the Data tests: temporary folders, IDX and CIFAR file writers, synthetic datasets, paths.
using System.Buffers.Binary;
using System.IO.Compression;
using SpikeSharp.Data;

namespace SpikeSharp.Tests.Data;

/// <summary>A fresh temporary folder, deleted with everything in it on dispose.</summary>
internal sealed class TempDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("spikesharp-data-").FullName;

    /// <summary>Path of a file (or folder) inside, creating parent folders.</summary>
    public string File(string relative)
    {
        string full = System.IO.Path.Combine(Path, relative);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(full)!);
        return full;
    }

    /// <summary>Writes bytes to a file inside and returns its path.</summary>
    public string Write(string relative, byte[] bytes)
    {
        string full = File(relative);
        System.IO.File.WriteAllBytes(full, bytes);
        return full;
    }

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}

/// <summary>Builds IDX and CIFAR files byte by byte, including malformed ones.</summary>
internal static class FileBuilder
{
    public static byte[] IdxImages(byte[] pixels, int count, int height, int width, uint magic = IdxReader.ImagesMagic)
    {
        var bytes = new byte[16 + pixels.Length];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, magic);
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(4), (uint)count);
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(8), (uint)height);
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(12), (uint)width);
        pixels.CopyTo(bytes, 16);
        return bytes;
    }

    public static byte[] IdxLabels(byte[] labels, uint magic = IdxReader.LabelsMagic)
    {
        var bytes = new byte[8 + labels.Length];
        BinaryPrimitives.WriteUInt32BigEndian(bytes, magic);
        BinaryPrimitives.WriteUInt32BigEndian(bytes.AsSpan(4), (uint)labels.Length);
        labels.CopyTo(bytes, 8);
        return bytes;
    }

    public static byte[] Gzip(byte[] raw)
    {
        using var output = new MemoryStream();
        using (var gz = new GZipStream(output, CompressionLevel.Fastest, leaveOpen: true)) gz.Write(raw);
        return output.ToArray();
    }

    public static byte[] MaybeGzip(byte[] raw, bool gzip) => gzip ? Gzip(raw) : raw;

    /// <summary>Deterministic pseudo-random bytes.</summary>
    public static byte[] Bytes(int count, int seed)
    {
        var rng = new Rng((ulong)seed);
        var bytes = new byte[count];
        for (int i = 0; i < count; i++) bytes[i] = (byte)rng.NextUInt64();
        return bytes;
    }

    /// <summary>CIFAR records: label bytes (1 for CIFAR-10; coarse, fine for CIFAR-100) then the 3072 given pixels.</summary>
    public static byte[] CifarRecords(byte[][] labelBytes, byte[] pixels)
    {
        int labelSize = labelBytes[0].Length, record = labelSize + CifarReader.ImageBytes;
        var bytes = new byte[labelBytes.Length * record];
        for (int r = 0; r < labelBytes.Length; r++)
        {
            labelBytes[r].CopyTo(bytes, r * record);
            Array.Copy(pixels, r * CifarReader.ImageBytes, bytes, r * record + labelSize, CifarReader.ImageBytes);
        }
        return bytes;
    }

    public static byte[] Concat(params byte[][] parts) => parts.SelectMany(p => p).ToArray();
}

/// <summary>Small in-memory datasets for transform and loader tests.</summary>
internal static class SyntheticData
{
    /// <summary>N random images of C×H×W with labels i mod classes.</summary>
    public static ImageDataset Random(int count, int channels, int height, int width, int classes = 10, int seed = 7)
    {
        var pixels = FileBuilder.Bytes(count * channels * height * width, seed);
        var labels = Enumerable.Range(0, count).Select(i => i % classes).ToArray();
        return new ImageDataset("synthetic", pixels, labels, channels, height, width, classes);
    }
}

/// <summary>Locations inside the repository checkout.</summary>
internal static class RepoPaths
{
    /// <summary>The bundled MNIST sample folder <c>data/</c>, found by walking up from the test binaries.</summary>
    public static string SampleData
    {
        get
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir != null; dir = dir.Parent)
            {
                string candidate = Path.Combine(dir.FullName, "data");
                if (File.Exists(Path.Combine(candidate, "train-images-idx3-ubyte.gz"))) return candidate;
            }
            throw new DirectoryNotFoundException($"no data/train-images-idx3-ubyte.gz above {AppContext.BaseDirectory}");
        }
    }

    /// <summary>A file copied from <c>tests/SpikeSharp.Tests/Fixtures/</c> to the output folder.</summary>
    public static string Fixture(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", name);
}
