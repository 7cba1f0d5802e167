// An opened dataset file that decompresses gzip transparently and turns I/O failures into InvalidFileException.
using System.IO.Compression;

namespace SpikeSharp.Data;

/// <summary>
/// A forward-only reader over a dataset file. Gzip is detected by the magic bytes 1f 8b, never by the extension.
/// <see cref="Offset"/> counts decompressed bytes, so messages give offsets in the format's own coordinates.
/// Every failure (missing file, unreadable file, corrupt gzip) surfaces as <see cref="InvalidFileException"/>.
/// </summary>
internal sealed class DataFile : IDisposable
{
    private readonly Stream _file;
    private readonly Stream _stream;

    /// <summary>The path as given by the caller (used in messages).</summary>
    public string Path { get; }

    /// <summary>Whether the file is gzip-compressed.</summary>
    public bool Gzip { get; }

    /// <summary>Length of the file on disk in bytes.</summary>
    public long FileLength { get; }

    /// <summary>Bytes consumed so far, counted after decompression.</summary>
    public long Offset { get; private set; }

    private DataFile(string path, Stream file, bool gzip)
    {
        Path = path;
        _file = file;
        Gzip = gzip;
        FileLength = file.Length;
        _stream = gzip ? new GZipStream(file, CompressionMode.Decompress, leaveOpen: true) : file;
    }

    /// <summary>Opens <paramref name="path"/>, sniffing the first two bytes for the gzip magic.</summary>
    public static DataFile Open(string path)
    {
        if (Directory.Exists(path)) throw new InvalidFileException(path, "is a directory; expected a file");
        if (!File.Exists(path)) throw new InvalidFileException(path, "file not found");
        FileStream? file = null;
        try
        {
            file = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
            Span<byte> magic = stackalloc byte[2];
            int n = file.ReadAtLeast(magic, 2, throwOnEndOfStream: false);
            file.Position = 0;
            return new DataFile(path, file, n == 2 && magic[0] == 0x1F && magic[1] == 0x8B);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            file?.Dispose();
            throw new InvalidFileException(path, $"cannot read: {e.Message}", e);
        }
    }

    /// <summary>
    /// Wraps an already opened, seekable stream (a file's bytes in memory, for tests and fuzzing); <paramref name="path"/>
    /// names it in messages. The stream is disposed with the returned reader.
    /// </summary>
    public static DataFile FromStream(Stream stream, string path)
    {
        ArgumentNullException.ThrowIfNull(stream);
        if (!stream.CanSeek) throw new ArgumentException("expected a seekable stream", nameof(stream));
        Span<byte> magic = stackalloc byte[2];
        long start = stream.Position;
        int n = stream.ReadAtLeast(magic, 2, throwOnEndOfStream: false);
        stream.Position = start;
        return new DataFile(path, stream, n == 2 && magic[0] == 0x1F && magic[1] == 0x8B);
    }

    /// <summary>Reads up to <c>buffer.Length</c> bytes; 0 means end of data.</summary>
    public int Read(Span<byte> buffer)
    {
        try
        {
            int n = _stream.Read(buffer);
            Offset += n;
            return n;
        }
        catch (InvalidDataException e)
        {
            throw new InvalidFileException(Path, $"corrupt gzip data near decompressed offset {Offset}: {e.Message}", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidFileException(Path, $"read failed at offset {Offset}: {e.Message}", e);
        }
    }

    /// <summary>Reads until <paramref name="buffer"/> is full or the data ends; returns the bytes read.</summary>
    public int ReadFully(Span<byte> buffer)
    {
        int total = 0;
        while (total < buffer.Length)
        {
            int n = Read(buffer[total..]);
            if (n == 0) break;
            total += n;
        }
        return total;
    }

    /// <summary>Largest trailing-data count that <see cref="CountRemaining"/> measures exactly.</summary>
    public const long TrailingCountLimit = 1 << 20;

    /// <summary>Reads to the end, or past <see cref="TrailingCountLimit"/> bytes, and returns how many bytes were
    /// left (for trailing-data checks). The limit keeps a gzip bomb after a valid payload from decompressing forever.</summary>
    public long CountRemaining()
    {
        Span<byte> sink = stackalloc byte[4096];
        long total = 0;
        int n;
        while (total <= TrailingCountLimit && (n = Read(sink)) > 0) total += n;
        return total;
    }

    /// <summary>
    /// For an uncompressed file, checks before any payload is allocated that its length is exactly
    /// <paramref name="expectedLength"/>; gzip files are checked while reading instead.
    /// </summary>
    public void CheckRawLength(long expectedLength, string declared)
    {
        if (Gzip || FileLength == expectedLength) return;
        long start = Offset;
        if (FileLength < expectedLength)
        {
            throw new InvalidFileException(Path,
                $"truncated: the header declares {declared} ({expectedLength - start} bytes from offset {start}) but the " +
                $"file ends at offset {FileLength}; expected {expectedLength} bytes");
        }
        throw new InvalidFileException(Path,
            $"trailing data: {FileLength - expectedLength} bytes after offset {expectedLength}, where the {declared} " +
            $"declared in the header end; expected the file to end there");
    }

    public void Dispose()
    {
        if (!ReferenceEquals(_stream, _file)) _stream.Dispose();
        _file.Dispose();
    }
}
