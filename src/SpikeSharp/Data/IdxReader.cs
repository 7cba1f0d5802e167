// Reads IDX image and label files (the MNIST format), raw or gzip, validating every header field before allocating.
using System.Buffers.Binary;

namespace SpikeSharp.Data;

/// <summary>Decoded IDX image file: <c>Pixels: [N,H,W]</c> uint8.</summary>
public sealed record IdxImages(byte[] Pixels, int Count, int Height, int Width);

/// <summary>
/// Reader for the IDX format of LeCun's MNIST distribution: a big-endian header (magic 0x00000803 + N, H, W for
/// images; 0x00000801 + N for labels) followed by exactly N·H·W (or N) unsigned bytes. Gzip is recognised by its
/// magic bytes 1f 8b, not by the file name. Every problem raises <see cref="InvalidFileException"/> naming the
/// field, its offset and the expected value.
/// </summary>
public static class IdxReader
{
    /// <summary>Magic of an IDX file of unsigned bytes with 3 dimensions (images).</summary>
    public const uint ImagesMagic = 0x00000803;

    /// <summary>Magic of an IDX file of unsigned bytes with 1 dimension (labels).</summary>
    public const uint LabelsMagic = 0x00000801;

    /// <summary>Largest image or label count accepted.</summary>
    public const int MaxCount = 10_000_000;

    /// <summary>Largest image height or width accepted.</summary>
    public const int MaxSide = 4096;

    /// <summary>
    /// Reads an image file and its label file into a one-channel dataset. Both headers are checked, including
    /// that the counts agree, before any payload is allocated. <see cref="ImageSet.Classes"/> is
    /// <paramref name="classes"/> when given (labels at or above it are an error), else the largest label + 1.
    /// </summary>
    public static ImageDataset ReadPair(string imagesPath, string labelsPath, string name, int classes = 0)
    {
        if (classes < 0 || classes > 256) throw new ArgumentOutOfRangeException(nameof(classes), classes, "expected 0..256");
        using var images = DataFile.Open(imagesPath);
        using var labels = DataFile.Open(labelsPath);
        var (count, height, width) = ReadImagesHeader(images);
        int labelCount = ReadLabelsHeader(labels);
        if (labelCount != count)
        {
            throw new InvalidFileException(labelsPath,
                $"label count {labelCount} at offset 4 does not match the image count {count} of {imagesPath}; expected {count}");
        }
        byte[] pixels = ReadPayload(images, (long)count * height * width, $"{count} images of {height}×{width}");
        int[] labelValues = ReadLabelsPayload(labels, count, classes == 0 ? 256 : classes);
        if (classes == 0)
        {
            int max = -1;
            foreach (int l in labelValues) max = Math.Max(max, l);
            classes = max + 1;
        }
        return new ImageDataset(name, pixels, labelValues, 1, height, width, classes);
    }

    /// <summary>Reads an IDX image file (magic 0x00000803), raw or gzip.</summary>
    public static IdxImages ReadImages(string path)
    {
        using var src = DataFile.Open(path);
        var (count, height, width) = ReadImagesHeader(src);
        byte[] pixels = ReadPayload(src, (long)count * height * width, $"{count} images of {height}×{width}");
        return new IdxImages(pixels, count, height, width);
    }

    /// <summary>Reads IDX images (raw or gzip) from a seekable stream, e.g. a file's bytes in memory; <paramref name="path"/>
    /// names it in messages. Validation is the same as for a file.</summary>
    public static IdxImages ReadImages(Stream stream, string path)
    {
        using var src = DataFile.FromStream(stream, path);
        var (count, height, width) = ReadImagesHeader(src);
        byte[] pixels = ReadPayload(src, (long)count * height * width, $"{count} images of {height}×{width}");
        return new IdxImages(pixels, count, height, width);
    }

    /// <summary>Reads IDX labels (raw or gzip) from a seekable stream; <paramref name="path"/> names it in messages.</summary>
    public static int[] ReadLabels(Stream stream, string path, int classes = 256)
    {
        if (classes <= 0 || classes > 256) throw new ArgumentOutOfRangeException(nameof(classes), classes, "expected 1..256");
        using var src = DataFile.FromStream(stream, path);
        int count = ReadLabelsHeader(src);
        return ReadLabelsPayload(src, count, classes);
    }

    /// <summary>Reads an IDX label file (magic 0x00000801), raw or gzip; values must be below <paramref name="classes"/>.</summary>
    public static int[] ReadLabels(string path, int classes = 256)
    {
        if (classes <= 0 || classes > 256) throw new ArgumentOutOfRangeException(nameof(classes), classes, "expected 1..256");
        using var src = DataFile.Open(path);
        int count = ReadLabelsHeader(src);
        return ReadLabelsPayload(src, count, classes);
    }

    private static (int Count, int Height, int Width) ReadImagesHeader(DataFile src)
    {
        Span<byte> header = stackalloc byte[16];
        ReadHeader(src, header, ImagesMagic, "IDX images");
        int count = Dimension(src, header, 4, "image count", MaxCount);
        int height = Dimension(src, header, 8, "image height (rows)", MaxSide);
        int width = Dimension(src, header, 12, "image width (columns)", MaxSide);
        long bytes = (long)count * height * width;
        if (bytes > Array.MaxLength)
        {
            throw new InvalidFileException(src.Path,
                $"header at offset 4 declares {count} images of {height}×{width} = {bytes} bytes; expected at most {Array.MaxLength}");
        }
        src.CheckRawLength(16 + bytes, $"{count} images of {height}×{width}");
        return (count, height, width);
    }

    private static int ReadLabelsHeader(DataFile src)
    {
        Span<byte> header = stackalloc byte[8];
        ReadHeader(src, header, LabelsMagic, "IDX labels");
        int count = Dimension(src, header, 4, "label count", MaxCount);
        src.CheckRawLength(8 + (long)count, $"{count} labels");
        return count;
    }

    private static void ReadHeader(DataFile src, Span<byte> header, uint magic, string kind)
    {
        int got = src.ReadFully(header);
        if (got < 4 || (got < header.Length && BinaryPrimitives.ReadUInt32BigEndian(header) == magic))
        {
            throw new InvalidFileException(src.Path,
                $"truncated header: the {(src.Gzip ? "decompressed " : "")}data ends at offset {got}; expected a {header.Length}-byte {kind} header");
        }
        uint actual = BinaryPrimitives.ReadUInt32BigEndian(header);
        if (actual != magic)
        {
            string hint = actual switch
            {
                ImagesMagic => "; this looks like an IDX images file",
                LabelsMagic => "; this looks like an IDX labels file",
                _ when (actual >> 16) == 0 && (actual & 0xFF) is > 0 and < 8 =>
                    $"; it declares data type 0x{(actual >> 8) & 0xFF:X2} with {actual & 0xFF} dimensions",
                _ => "",
            };
            int dims = (int)(magic & 0xFF);
            throw new InvalidFileException(src.Path,
                $"bad magic 0x{actual:X8} at offset 0; expected 0x{magic:X8} ({kind}: unsigned bytes, {dims} dimension{(dims == 1 ? "" : "s")}){hint}");
        }
    }

    private static int Dimension(DataFile src, ReadOnlySpan<byte> header, int offset, string field, int max)
    {
        uint value = BinaryPrimitives.ReadUInt32BigEndian(header[offset..]);
        if (value == 0 || value > (uint)max)
            throw new InvalidFileException(src.Path, $"bad {field} {value} at offset {offset}; expected 1..{max}");
        return (int)value;
    }

    private static byte[] ReadPayload(DataFile src, long expected, string declared)
    {
        // A raw file's length was checked against the header already. A gzip file's decompressed length is only
        // known by reading it, so the buffer grows geometrically: a tiny file whose header claims gigabytes fails
        // at its real end instead of forcing the whole allocation first.
        long start = src.Offset;
        var buffer = new byte[src.Gzip ? Math.Min(expected, 1 << 16) : expected];
        long filled = 0;
        while (filled < expected)
        {
            if (filled == buffer.Length) Array.Resize(ref buffer, (int)Math.Min(expected, 2L * buffer.Length));
            int n = src.Read(buffer.AsSpan((int)filled, buffer.Length - (int)filled));
            if (n == 0)
            {
                throw new InvalidFileException(src.Path,
                    $"truncated: the header declares {declared} ({expected} bytes from offset {start}) but the " +
                    $"{(src.Gzip ? "decompressed " : "")}data ends at offset {start + filled}; expected {start + expected} bytes");
            }
            filled += n;
        }
        long extra = src.CountRemaining();
        if (extra > 0)
        {
            throw new InvalidFileException(src.Path,
                $"trailing data: {(extra > DataFile.TrailingCountLimit ? "more than " + DataFile.TrailingCountLimit : extra)} bytes after offset {start + expected}, where the {declared} declared in the header end; " +
                $"expected the {(src.Gzip ? "decompressed " : "")}data to end there");
        }
        return buffer;
    }

    private static int[] ReadLabelsPayload(DataFile src, int count, int classes)
    {
        long start = src.Offset;
        byte[] raw = ReadPayload(src, count, $"{count} labels");
        var labels = new int[count];
        for (int i = 0; i < raw.Length; i++)
        {
            if (raw[i] >= classes)
                throw new InvalidFileException(src.Path, $"label {raw[i]} at offset {start + i}; expected 0..{classes - 1}");
            labels[i] = raw[i];
        }
        return labels;
    }
}
