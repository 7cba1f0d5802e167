// Reads and writes the safetensors file format (u64 header length, JSON header, raw little-endian data); it knows
// nothing of models or checkpoints (see CheckpointFiles).
using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;
using SpikeSharp.Tensors;

namespace SpikeSharp.Interop;

/// <summary>
/// The safetensors format as Hugging Face's <c>safetensors</c> package writes it: 8 bytes little-endian header
/// length N, N bytes of UTF-8 JSON (<c>{"__metadata__":{..}, "name":{"dtype","shape","data_offsets":[b,e]}, ..}</c>,
/// padded with spaces to a multiple of 8), then the tensors' raw little-endian bytes, offsets relative to the end of
/// the header. Files written here load in Python with <c>safetensors.torch.load_file</c> unchanged.
/// </summary>
public static class Safetensors
{
    /// <summary>The largest header accepted, as in the reference implementation (100 MB).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    /// <summary>The reserved header key holding the string-to-string metadata map.</summary>
    public const string MetadataKey = "__metadata__";

    private const string SupportedDTypes = "F32, F64, F16, BF16, I64, I32, U8, BOOL";
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>
    /// Writes <paramref name="tensors"/> as F32 in the standard layout, atomically (temp file + rename). Tensors are
    /// laid out sorted by the UTF-8 bytes of their names (what the Rust/Python writer does for a single dtype), the
    /// header lists <c>__metadata__</c> first with its keys sorted the same way (the reference writer uses a hash
    /// map there, so its order varies), and the JSON is compact, so the bytes match the reference writer's.
    /// </summary>
    /// <exception cref="ArgumentException">A name is repeated, is <c>__metadata__</c>, or is not valid UTF-16.</exception>
    public static void Write(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(path);
        ArgumentNullException.ThrowIfNull(tensors);

        var entries = new List<(string Name, byte[] Key, Tensor Tensor)>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (name, tensor) in tensors)
        {
            ArgumentNullException.ThrowIfNull(name, "tensor name");
            ArgumentNullException.ThrowIfNull(tensor, $"tensor '{name}'");
            if (name == MetadataKey) throw new ArgumentException($"'{MetadataKey}' is reserved for the metadata map; rename the tensor", nameof(tensors));
            if (!seen.Add(name)) throw new ArgumentException($"tensor name '{name}' appears twice; names must be unique", nameof(tensors));
            entries.Add((name, EncodeName(name), tensor));
        }
        entries.Sort((a, b) => a.Key.AsSpan().SequenceCompareTo(b.Key));

        byte[] header = BuildHeader(entries, metadata);
        AtomicFile.Write(path, stream =>
        {
            Span<byte> length = stackalloc byte[8];
            BinaryPrimitives.WriteUInt64LittleEndian(length, (ulong)header.Length);
            stream.Write(length);
            stream.Write(header);
            foreach (var e in entries) WriteFloatsLittleEndian(stream, e.Tensor.Data);
        });
    }

    /// <summary>
    /// Reads a safetensors file. F32 is read as is; F64, F16, BF16, I64, I32 and U8 are converted to the nearest
    /// float32 (I64/I32 beyond 2^24 and F64 lose precision), BOOL to 0 or 1 (any non-zero byte is 1). The whole header
    /// is validated against the file length before any tensor is allocated.
    /// </summary>
    /// <exception cref="InvalidFileException">The file is missing, unreadable or malformed; the message names the
    /// tensor and field, what was found and what was expected.</exception>
    public static SafetensorsFile Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        FileStream stream;
        try
        {
            stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16);
        }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new InvalidFileException(path, "file not found", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidFileException(path, $"cannot be opened: {e.Message}", e);
        }

        using (stream)
        {
            try
            {
                return ReadFrom(path, stream);
            }
            catch (IOException e)
            {
                throw new InvalidFileException(path, $"read failed (was the file changed while reading?): {e.Message}", e);
            }
        }
    }

    /// <summary>Reads safetensors bytes from a seekable stream (e.g. a file's bytes in memory); <paramref name="path"/>
    /// names it in messages. Validation is the same as for <see cref="Read(string)"/>.</summary>
    public static SafetensorsFile Read(Stream stream, string path)
    {
        ArgumentNullException.ThrowIfNull(stream);
        ArgumentNullException.ThrowIfNull(path);
        if (!stream.CanSeek) throw new ArgumentException("expected a seekable stream", nameof(stream));
        try
        {
            return ReadFrom(path, stream);
        }
        catch (IOException e)
        {
            throw new InvalidFileException(path, $"read failed: {e.Message}", e);
        }
    }

    private static SafetensorsFile ReadFrom(string path, Stream stream)
    {
        long fileLength = stream.Length;
        if (fileLength < 8)
            throw new InvalidFileException(path, $"file is {fileLength} bytes long; a safetensors file starts with an 8-byte header length");

        Span<byte> lengthBytes = stackalloc byte[8];
        stream.ReadExactly(lengthBytes);
        ulong headerLength = BinaryPrimitives.ReadUInt64LittleEndian(lengthBytes);
        if (headerLength > MaxHeaderBytes)
            throw new InvalidFileException(path, $"header length field is {headerLength} bytes; expected at most {MaxHeaderBytes} (is this a safetensors file?)");
        if ((long)headerLength > fileLength - 8)
            throw new InvalidFileException(path, $"header length field is {headerLength} bytes but only {fileLength - 8} bytes follow it (truncated file?)");

        var header = new byte[headerLength];
        stream.ReadExactly(header);
        long dataLength = fileLength - 8 - (long)headerLength;

        var (entries, metadata) = ParseHeader(path, header);
        CheckLayout(path, entries, dataLength);

        var tensors = new OrderedDictionary<string, Tensor>(entries.Count, StringComparer.Ordinal);
        var dtypes = new OrderedDictionary<string, string>(entries.Count, StringComparer.Ordinal);
        long dataStart = 8 + (long)headerLength;
        foreach (var e in entries)
        {
            stream.Position = dataStart + e.Begin;
            tensors.Add(e.Name, new Tensor(ReadElements(stream, e.DType, (int)e.Count), e.Shape));
            dtypes.Add(e.Name, e.DType.Name);
        }
        return new SafetensorsFile(path, tensors, metadata, dtypes);
    }

    // ---------------------------------------------------------------- header parsing and validation

    private sealed record DType(string Name, int Size);

    private static readonly DType[] DTypes =
    [
        new("F32", 4), new("F64", 8), new("F16", 2), new("BF16", 2), new("I64", 8), new("I32", 4), new("U8", 1), new("BOOL", 1),
    ];

    /// <summary>One header entry after validation. Count ≤ Array.MaxLength, End − Begin = Count·DType.Size.</summary>
    private sealed record Entry(string Name, DType DType, int[] Shape, long Count, long Begin, long End, int HeaderIndex);

    private static (List<Entry> Entries, IReadOnlyDictionary<string, string> Metadata) ParseHeader(string path, byte[] header)
    {
        if (header.Length == 0 || header[0] != (byte)'{')
            throw new InvalidFileException(path, header.Length == 0
                ? "header is empty; expected a JSON object"
                : $"header starts with byte 0x{header[0]:X2}; expected '{{' (a JSON object)");
        if (!Utf8.IsValid(header))
            throw new InvalidFileException(path, $"header is not valid UTF-8 (first bad byte at file offset {8 + FirstInvalidUtf8(header)})");

        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(header, new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException e)
        {
            throw new InvalidFileException(path, $"header is not valid JSON: {e.Message}", e);
        }

        using (doc)
        {
            try
            {
                var entries = new List<Entry>();
                var metadata = new OrderedDictionary<string, string>(StringComparer.Ordinal);
                var names = new HashSet<string>(StringComparer.Ordinal);
                bool sawMetadata = false;
                foreach (var prop in doc.RootElement.EnumerateObject())
                {
                    string name = prop.Name;
                    if (name == MetadataKey)
                    {
                        if (sawMetadata) throw new InvalidFileException(path, $"header has two '{MetadataKey}' entries; expected at most one");
                        sawMetadata = true;
                        ParseMetadata(path, prop.Value, metadata);
                        continue;
                    }
                    if (!names.Add(name))
                        throw new InvalidFileException(path, $"tensor '{name}' appears twice in the header; expected unique names");
                    entries.Add(ParseEntry(path, name, prop.Value, entries.Count));
                }
                return (entries, metadata);
            }
            catch (InvalidOperationException e)
            {
                // JsonElement.GetString/Name throw this for escapes that are not valid UTF-16 (a lone "\ud800").
                throw new InvalidFileException(path, $"header holds a string that is not valid UTF-16: {e.Message}", e);
            }
        }
    }

    private static void ParseMetadata(string path, JsonElement value, OrderedDictionary<string, string> metadata)
    {
        if (value.ValueKind == JsonValueKind.Null) return;
        if (value.ValueKind != JsonValueKind.Object)
            throw new InvalidFileException(path, $"'{MetadataKey}' is {Kind(value)}; expected an object of strings");
        foreach (var m in value.EnumerateObject())
        {
            if (m.Value.ValueKind != JsonValueKind.String)
                throw new InvalidFileException(path, $"'{MetadataKey}' entry '{m.Name}' is {Kind(m.Value)}; expected a string");
            if (!metadata.TryAdd(m.Name, m.Value.GetString()!))
                throw new InvalidFileException(path, $"'{MetadataKey}' entry '{m.Name}' appears twice; expected unique keys");
        }
    }

    private static Entry ParseEntry(string path, string name, JsonElement value, int headerIndex)
    {
        string where = $"tensor '{Shorten(name)}'";
        if (value.ValueKind != JsonValueKind.Object)
            throw new InvalidFileException(path, $"{where} is {Kind(value)}; expected an object with dtype, shape and data_offsets");

        // dtype
        if (!value.TryGetProperty("dtype", out var dtypeEl))
            throw new InvalidFileException(path, $"{where} has no 'dtype'; expected one of {SupportedDTypes}");
        if (dtypeEl.ValueKind != JsonValueKind.String)
            throw new InvalidFileException(path, $"{where}: dtype is {Kind(dtypeEl)}; expected a string, one of {SupportedDTypes}");
        string dtypeName = dtypeEl.GetString()!;
        DType dtype = Array.Find(DTypes, d => d.Name == dtypeName)
            ?? throw new InvalidFileException(path, $"{where}: dtype '{Shorten(dtypeName)}' is not supported; expected one of {SupportedDTypes}");

        // shape
        if (!value.TryGetProperty("shape", out var shapeEl))
            throw new InvalidFileException(path, $"{where} has no 'shape'; expected an array of non-negative integers");
        if (shapeEl.ValueKind != JsonValueKind.Array)
            throw new InvalidFileException(path, $"{where}: shape is {Kind(shapeEl)}; expected an array of non-negative integers");
        var shape = new int[shapeEl.GetArrayLength()];
        long count = 1;
        bool overflow = false, hasZero = false;
        int i = 0;
        foreach (var d in shapeEl.EnumerateArray())
        {
            long dim = NonNegativeInteger(path, d, $"{where}: shape[{i}]");
            if (dim > int.MaxValue)
                throw new InvalidFileException(path, $"{where}: shape[{i}] is {dim}; expected at most {int.MaxValue}");
            shape[i++] = (int)dim;
            if (dim == 0) hasZero = true;
            else if (!overflow && count > long.MaxValue / dim) overflow = true;
            else if (!overflow) count *= dim;
        }
        string shapeText = Tensor.FormatShape(shape);
        if (hasZero) count = 0; // an empty tensor, however large its other dimensions
        else if (overflow)
            throw new InvalidFileException(path, $"{where}: shape {shapeText} overflows a 64-bit element count; expected a product of dimensions of at most {Array.MaxLength}");
        if (count > Array.MaxLength)
            throw new InvalidFileException(path, $"{where}: shape {shapeText} has {count} elements; expected at most {Array.MaxLength}");

        // data_offsets
        if (!value.TryGetProperty("data_offsets", out var offEl))
            throw new InvalidFileException(path, $"{where} has no 'data_offsets'; expected [begin, end]");
        if (offEl.ValueKind != JsonValueKind.Array || offEl.GetArrayLength() != 2)
            throw new InvalidFileException(path, $"{where}: data_offsets is {Kind(offEl)}; expected an array [begin, end] of two non-negative integers");
        long begin = NonNegativeInteger(path, offEl[0], $"{where}: data_offsets[0]");
        long end = NonNegativeInteger(path, offEl[1], $"{where}: data_offsets[1]");
        if (end < begin)
            throw new InvalidFileException(path, $"{where}: data_offsets [{begin},{end}] end before they begin; expected begin <= end");
        long bytes = count * dtype.Size; // count ≤ Array.MaxLength, so no overflow
        if (end - begin != bytes)
            throw new InvalidFileException(path, $"{where}: data_offsets [{begin},{end}] span {end - begin} bytes; expected {bytes} ({dtype.Name} shape {shapeText})");
        return new Entry(name, dtype, shape, count, begin, end, headerIndex);
    }

    /// <summary>Checks that the tensors tile the data region exactly: sorted by offset, each starts where the
    /// previous ends, the first at 0 and the last at the end of the file.</summary>
    private static void CheckLayout(string path, List<Entry> entries, long dataLength)
    {
        entries.Sort((a, b) => a.Begin != b.Begin ? a.Begin.CompareTo(b.Begin)
            : a.End != b.End ? a.End.CompareTo(b.End) : a.HeaderIndex.CompareTo(b.HeaderIndex));
        long position = 0;
        Entry? previous = null;
        foreach (var e in entries)
        {
            if (e.End > dataLength)
                throw new InvalidFileException(path, $"tensor '{e.Name}': data_offsets [{e.Begin},{e.End}] reach past the data region; expected end <= {dataLength} (the file holds {dataLength} data bytes after the header)");
            if (e.Begin < position)
                throw new InvalidFileException(path, $"tensor '{e.Name}': data_offsets [{e.Begin},{e.End}] overlap tensor '{previous!.Name}' [{previous.Begin},{previous.End}]; expected begin = {position}");
            if (e.Begin > position)
                throw new InvalidFileException(path, $"tensor '{e.Name}': data_offsets [{e.Begin},{e.End}] leave bytes [{position},{e.Begin}) of the data region unused; expected begin = {position}");
            position = e.End;
            previous = e;
        }
        if (position != dataLength)
            throw new InvalidFileException(path, $"tensors cover {position} bytes of the data region but the file holds {dataLength} data bytes after the header; expected the last data_offsets to end at {dataLength}");
    }

    private static long NonNegativeInteger(string path, JsonElement el, string what)
    {
        if (el.ValueKind != JsonValueKind.Number)
            throw new InvalidFileException(path, $"{what} is {Kind(el)}; expected a non-negative integer");
        if (el.TryGetInt64(out long v))
        {
            if (v < 0) throw new InvalidFileException(path, $"{what} is {v}; expected a non-negative integer");
            return v;
        }
        throw new InvalidFileException(path, $"{what} is {Shorten(el.GetRawText())}; expected a non-negative integer below 2^63");
    }

    private static string Kind(JsonElement el) => el.ValueKind switch
    {
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => $"an array of {el.GetArrayLength()}",
        JsonValueKind.String => $"the string \"{Shorten(el.GetString()!)}\"",
        JsonValueKind.Number => $"the number {Shorten(el.GetRawText())}",
        JsonValueKind.True or JsonValueKind.False => el.GetRawText(),
        _ => "null",
    };

    /// <summary>Keeps error messages short when a forged header holds a huge string.</summary>
    private static string Shorten(string s) => s.Length <= 64 ? s : string.Concat(s.AsSpan(0, 60), "…");

    private static int FirstInvalidUtf8(ReadOnlySpan<byte> bytes)
    {
        int i = 0;
        while (i < bytes.Length)
        {
            if (Rune.DecodeFromUtf8(bytes[i..], out _, out int consumed) != OperationStatus.Done) return i;
            i += consumed;
        }
        return i;
    }

    // ---------------------------------------------------------------- data

    private static float[] ReadElements(Stream stream, DType dtype, int count)
    {
        var result = new float[count];
        if (dtype.Name == "F32")
        {
            stream.ReadExactly(MemoryMarshal.AsBytes(result.AsSpan()));
            if (!BitConverter.IsLittleEndian)
            {
                var bits = MemoryMarshal.Cast<float, int>(result.AsSpan());
                BinaryPrimitives.ReverseEndianness(bits, bits);
            }
            return result;
        }

        const int ChunkBytes = 1 << 16; // a multiple of every element size
        byte[] buffer = ArrayPool<byte>.Shared.Rent(ChunkBytes);
        try
        {
            int done = 0;
            while (done < count)
            {
                int n = Math.Min(count - done, ChunkBytes / dtype.Size);
                Span<byte> src = buffer.AsSpan(0, n * dtype.Size);
                stream.ReadExactly(src);
                ConvertToFloat(dtype.Name, src, result.AsSpan(done, n));
                done += n;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        return result;
    }

    private static void ConvertToFloat(string dtype, ReadOnlySpan<byte> src, Span<float> dst)
    {
        switch (dtype)
        {
            case "F64": for (int i = 0; i < dst.Length; i++) dst[i] = (float)BinaryPrimitives.ReadDoubleLittleEndian(src[(8 * i)..]); break;
            case "F16": for (int i = 0; i < dst.Length; i++) dst[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(src[(2 * i)..]); break;
            case "BF16": for (int i = 0; i < dst.Length; i++) dst[i] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(src[(2 * i)..]) << 16); break;
            case "I64": for (int i = 0; i < dst.Length; i++) dst[i] = BinaryPrimitives.ReadInt64LittleEndian(src[(8 * i)..]); break;
            case "I32": for (int i = 0; i < dst.Length; i++) dst[i] = BinaryPrimitives.ReadInt32LittleEndian(src[(4 * i)..]); break;
            case "U8": for (int i = 0; i < dst.Length; i++) dst[i] = src[i]; break;
            case "BOOL": for (int i = 0; i < dst.Length; i++) dst[i] = src[i] != 0 ? 1f : 0f; break;
            default: throw new InvalidOperationException($"no conversion for dtype {dtype}"); // unreachable: dtypes are checked in ParseEntry
        }
    }

    private static void WriteFloatsLittleEndian(Stream stream, float[] data)
    {
        if (BitConverter.IsLittleEndian)
        {
            stream.Write(MemoryMarshal.AsBytes(data.AsSpan()));
            return;
        }
        Span<byte> chunk = stackalloc byte[4096];
        for (int i = 0; i < data.Length; i += chunk.Length / 4)
        {
            int n = Math.Min(data.Length - i, chunk.Length / 4);
            for (int j = 0; j < n; j++) BinaryPrimitives.WriteSingleLittleEndian(chunk[(4 * j)..], data[i + j]);
            stream.Write(chunk[..(4 * n)]);
        }
    }

    // ---------------------------------------------------------------- header writing

    private static byte[] BuildHeader(List<(string Name, byte[] Key, Tensor Tensor)> entries, IReadOnlyDictionary<string, string>? metadata)
    {
        var sb = new StringBuilder(64 + 80 * entries.Count);
        sb.Append('{');
        bool first = true;
        if (metadata is not null)
        {
            var pairs = metadata.Select(p => (Utf8: EncodeName(p.Key), Name: p.Key, p.Value)).ToList();
            pairs.Sort((a, b) => a.Utf8.AsSpan().SequenceCompareTo(b.Utf8));
            AppendJsonString(sb, MetadataKey);
            sb.Append(":{");
            for (int i = 0; i < pairs.Count; i++)
            {
                if (i > 0) sb.Append(',');
                AppendJsonString(sb, pairs[i].Name);
                sb.Append(':');
                AppendJsonString(sb, pairs[i].Value ?? throw new ArgumentNullException(nameof(metadata), $"metadata value for '{pairs[i].Name}' is null"));
            }
            sb.Append('}');
            first = false;
        }
        long offset = 0;
        foreach (var (name, _, tensor) in entries)
        {
            if (!first) sb.Append(',');
            first = false;
            long bytes = 4L * tensor.Length;
            AppendJsonString(sb, name);
            sb.Append(":{\"dtype\":\"F32\",\"shape\":[").AppendJoin(',', tensor.Shape).Append("],\"data_offsets\":[")
              .Append(offset).Append(',').Append(offset + bytes).Append("]}");
            offset += bytes;
        }
        sb.Append('}');
        int length = StrictUtf8.GetByteCount(sb.ToString());
        sb.Append(' ', (8 - length % 8) % 8);
        return StrictUtf8.GetBytes(sb.ToString());
    }

    /// <summary>Appends a JSON string literal escaped as serde_json (and Python's json with ensure_ascii=False) do:
    /// only '"', '\\' and control characters are escaped, so non-ASCII names stay readable and bytes match.</summary>
    private static void AppendJsonString(StringBuilder sb, string s)
    {
        sb.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                default:
                    if (c < 0x20) sb.Append("\\u00").Append(((int)c).ToString("x2"));
                    else sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
    }

    private static byte[] EncodeName(string name)
    {
        try
        {
            return StrictUtf8.GetBytes(name);
        }
        catch (EncoderFallbackException e)
        {
            throw new ArgumentException($"name '{name}' contains an unpaired surrogate and cannot be stored as UTF-8", e);
        }
    }
}
