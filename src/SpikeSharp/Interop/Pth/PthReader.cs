// Reads PyTorch state dicts saved by torch.save (the zip format of PyTorch >= 1.6, and the legacy format): the archive,
// the storages and the few torch globals a state dict pickles. It is not a general .pth loader: anything but tensors in
// dicts (and plain values beside them) is refused.
using System.Buffers.Binary;
using System.IO.Compression;
using System.Numerics;
using System.Runtime.InteropServices;
using System.Text;
using SpikeSharp.Tensors;

namespace SpikeSharp.Interop.Pth;

/// <summary>A state dict read from a <c>.pth</c> file, in the file's key order, and what the reader assumed or changed.</summary>
public sealed record PthFile(string Path, IReadOnlyDictionary<string, Tensor> Tensors, IReadOnlyList<string> Notes);

/// <summary>
/// Reads <c>torch.save(model.state_dict(), path)</c> files (PyTorch ≥ 1.6): a zip archive <c>NAME/data.pkl</c> (a pickle
/// of an OrderedDict of tensors), <c>NAME/data/KEY</c> (one raw little-endian storage per key), <c>NAME/version</c> and,
/// from PyTorch 2.1, <c>NAME/byteorder</c>. Tensors become float32: F64, F16 and BF16 are rounded, integer and bool
/// tensors (BN's <c>num_batches_tracked</c>) are converted exactly up to 2^24, so strict loading can still report them;
/// <see cref="ModelImport.Canonicalize"/> drops the BN counters. Views (storage offset, strides) and storages shared
/// by several tensors are honoured. A checkpoint dict wrapping the state dict (<c>{"state_dict": ..., "epoch": 3}</c>)
/// and DataParallel's <c>module.</c> prefix are unwrapped, with a note. Legacy files (PyTorch &lt; 1.6, or
/// <c>_use_new_zipfile_serialization=False</c>) are read too.
/// </summary>
public static class PthReader
{
    /// <summary>Keys under which training scripts commonly wrap the state dict, tried in this order.</summary>
    public static readonly string[] WrapperKeys = ["state_dict", "model_state_dict", "model", "net", "network", "module", "state"];

    private const int MaxRank = 32;

    public static IReadOnlyDictionary<string, Tensor> ReadStateDict(string path) => Read(path).Tensors;

    /// <summary>Reads a <c>.pth</c> state dict; see the class summary for what is accepted.</summary>
    /// <exception cref="InvalidFileException">The file is missing, not written by torch.save, holds more than a
    /// state dict, or is malformed; the message names the entry, the data.pkl offset or the tensor.</exception>
    public static PthFile Read(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        FileStream stream;
        try { stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1 << 16); }
        catch (Exception e) when (e is FileNotFoundException or DirectoryNotFoundException) { throw new InvalidFileException(path, "file not found", e); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new InvalidFileException(path, $"cannot be opened: {e.Message}", e); }
        using (stream) return Read(path, stream);
    }

    /// <summary>Reads a <c>.pth</c> state dict from a seekable stream; <paramref name="path"/> names it in messages.</summary>
    public static PthFile Read(string path, Stream stream)
    {
        Span<byte> magic = stackalloc byte[4];
        if (stream.Length < 4 || stream.ReadAtLeast(magic, 4, throwOnEndOfStream: false) < 4)
            throw new InvalidFileException(path, $"file is {stream.Length} bytes long; expected a zip archive written by torch.save");
        if (magic[0] == 0x80) return ReadLegacy(path, stream);
        if (!magic.SequenceEqual("PK\x03\x04"u8))
            throw new InvalidFileException(path, $"starts with bytes {Convert.ToHexString(magic)}; expected a zip archive (504B0304) written by torch.save (PyTorch ≥ 1.6)");
        stream.Position = 0;
        try
        {
            using var zip = new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: true);
            return new Archive(path, zip, stream.Length).Load();
        }
        catch (Exception e) when (e is InvalidDataException or IOException or NotSupportedException or ArgumentException or InvalidOperationException)
        {
            // The zip library's errors for forged headers (bad offsets, lengths, compression methods, CRCs).
            throw new InvalidFileException(path, $"is not a valid zip archive: {e.Message}", e);
        }
    }

    /// <summary>The legacy format (PyTorch &lt; 1.6, or <c>_use_new_zipfile_serialization=False</c>): five pickles in a
    /// row (magic number, protocol 1001, sys_info, the object, the storage keys), then each storage as an int64 element
    /// count and its raw bytes.</summary>
    private static PthFile ReadLegacy(string path, Stream stream)
    {
        if (stream.Length > Array.MaxLength)
            throw new InvalidFileException(path, $"legacy .pth file of {stream.Length} bytes is too large to read; re-save it with torch.save(obj, path) (zip format)");
        var bytes = new byte[stream.Length];
        stream.Position = 0;
        try { stream.ReadExactly(bytes); }
        catch (IOException e) { throw new InvalidFileException(path, $"read failed (was the file changed while reading?): {e.Message}", e); }
        return new Archive(path, null, bytes.Length).LoadLegacy(bytes);
    }

    // ---------------------------------------------------------------- storages and dtypes

    private enum DType { F32, F64, F16, BF16, I64, I32, I16, I8, U8, Bool }

    private static int SizeOf(DType t) => t switch
    {
        DType.F64 or DType.I64 => 8, DType.F32 or DType.I32 => 4, DType.F16 or DType.BF16 or DType.I16 => 2, _ => 1,
    };

    /// <summary>The storage classes torch pickles in a storage's persistent id (module <c>torch</c>).</summary>
    private static readonly Dictionary<string, DType> StorageTypes = new()
    {
        ["FloatStorage"] = DType.F32, ["DoubleStorage"] = DType.F64, ["HalfStorage"] = DType.F16, ["BFloat16Storage"] = DType.BF16,
        ["LongStorage"] = DType.I64, ["IntStorage"] = DType.I32, ["ShortStorage"] = DType.I16, ["CharStorage"] = DType.I8,
        ["ByteStorage"] = DType.U8, ["BoolStorage"] = DType.Bool, ["UntypedStorage"] = DType.U8,
    };

    /// <summary>One storage; <see cref="Bytes"/> holds exactly Numel · SizeOf(Type) bytes once read (legacy files
    /// store the bytes after the pickle that references them).</summary>
    private sealed record Storage(string Key, DType Type, long Numel)
    {
        public byte[]? Bytes { get; set; }
    }

    /// <summary>A validated view of a storage, copied out once the storages are read.</summary>
    private sealed record TensorView(Storage Storage, long Offset, int[] Shape, long[] Strides, long Count);

    /// <summary>The pickle host of one archive: resolves the allowed globals, loads storages and rebuilds tensors.</summary>
    private sealed class Archive(string path, ZipArchive? zip, long fileLength) : IPickleHost
    {
        private readonly Dictionary<string, ZipArchiveEntry> _entries = new(StringComparer.Ordinal);
        private readonly Dictionary<string, Storage> _storages = new(StringComparer.Ordinal);
        private string _prefix = "";
        private long _elementBudget, _elements, _bytesRead;

        public PthFile Load()
        {
            foreach (var e in zip!.Entries)
                if (!_entries.TryAdd(e.FullName, e)) throw new InvalidFileException(path, $"zip entry '{Short(e.FullName)}' appears twice; expected unique names");
            var pickles = _entries.Keys.Where(n => n.EndsWith("/data.pkl", StringComparison.Ordinal) && n.IndexOf('/') == n.Length - 9).ToList();
            if (pickles.Count != 1)
                throw new InvalidFileException(path, pickles.Count == 0
                    ? "has no '<name>/data.pkl' entry; expected a zip archive written by torch.save (PyTorch ≥ 1.6)"
                    : $"has {pickles.Count} data.pkl entries ({string.Join(", ", pickles.Take(3).Select(Short))}); expected one");
            _prefix = pickles[0][..^"data.pkl".Length];

            if (_entries.TryGetValue(_prefix + "byteorder", out var bo))
            {
                string order = Encoding.ASCII.GetString(ReadEntry(bo, 16)).Trim();
                if (order != "little")
                    throw new InvalidFileException(path, $"byteorder entry says '{Short(order)}'; only little-endian files are supported");
            }

            // Every tensor element needs a storage byte, so a few times the storage bytes bounds what a forged view can
            // make us allocate (views that repeat elements, e.g. expanded tensors, are not in state dicts).
            long storageBytes = 0; // clamped as it goes: forged zip64 lengths must not overflow the sum
            foreach (var (name, entry) in _entries)
                if (name.StartsWith(_prefix + "data/", StringComparison.Ordinal))
                    storageBytes = Math.Min(fileLength, storageBytes + Math.Clamp(entry.Length, 0, fileLength));
            _elementBudget = 4 * storageBytes + (1 << 20);

            var root = Unpickler.Load(path, ReadEntry(_entries[pickles[0]], fileLength), this);
            return Extract(root);
        }

        /// <summary>The bytes of a stored (uncompressed) entry, checked against the file length before allocating.</summary>
        private byte[] ReadEntry(ZipArchiveEntry entry, long maxBytes)
        {
            string name = Short(entry.FullName);
            if (entry.Length != entry.CompressedLength)
                throw new InvalidFileException(path, $"zip entry '{name}' is compressed ({entry.CompressedLength} → {entry.Length} bytes); torch.save writes stored entries");
            if (entry.Length < 0 || entry.Length > Math.Min(maxBytes, fileLength))
                throw new InvalidFileException(path, $"zip entry '{name}' claims {entry.Length} bytes; expected at most {Math.Min(maxBytes, fileLength)} (the file is {fileLength} bytes)");
            // Stored entries do not overlap in a real zip; forged ones pointing at the same bytes must not multiply reads.
            _bytesRead += entry.Length;
            if (_bytesRead > fileLength)
                throw new InvalidFileException(path, $"zip entries read so far claim {_bytesRead} bytes, more than the file's {fileLength} (overlapping or forged entries?)");
            var bytes = new byte[entry.Length];
            using var s = entry.Open();
            int read = s.ReadAtLeast(bytes, bytes.Length, throwOnEndOfStream: false);
            if (read != bytes.Length) throw new InvalidFileException(path, $"zip entry '{name}' ends after {read} of {bytes.Length} bytes (truncated file?)");
            return bytes;
        }

        // ------------------------------------------------------------ IPickleHost

        public PyGlobal Global(string module, string name)
        {
            bool allowed = (module, name) switch
            {
                ("collections", "OrderedDict") => true,
                ("torch._utils", "_rebuild_tensor_v2" or "_rebuild_parameter") => true,
                ("torch", _) => StorageTypes.ContainsKey(name),
                ("torch.storage", "UntypedStorage") => true,
                _ => false,
            };
            if (!allowed)
                throw new PickleError($"global '{module}.{name}' is not allowed: only state dicts (tensors in dicts, as saved by " +
                    "torch.save(model.state_dict(), path)) are supported, and nothing in the file is ever executed");
            return new PyGlobal(module, name);
        }

        public object Reduce(PyGlobal f, object?[] args) => f.Name switch
        {
            "OrderedDict" when args.Length == 0 => new OrderedDictionary<object, object?>(),
            "OrderedDict" => throw new PickleError($"collections.OrderedDict called with {args.Length} arguments; expected none"),
            "_rebuild_tensor_v2" => RebuildTensor(args),
            "_rebuild_parameter" when args.Length is 3 or 4 && args[0] is TensorView t => t,
            "_rebuild_parameter" => throw new PickleError($"torch._utils._rebuild_parameter called with {args.Length} arguments ({Unpickler.Describe(args.FirstOrDefault())} first); expected (tensor, requires_grad, hooks)"),
            _ => throw new PickleError($"{f} cannot be called; a storage class is only valid inside a storage reference (BINPERSID)"),
        };

        public void Build(object? target, object? state)
        {
            // OrderedDict's BUILD sets attributes such as _metadata (module versions); they carry no weights.
            if (target is OrderedDictionary<object, object?> && state is OrderedDictionary<object, object?> or object?[] or null) return;
            throw new PickleError($"BUILD on {Unpickler.Describe(target)} with {Unpickler.Describe(state)} is not supported; expected an OrderedDict's attributes");
        }

        /// <summary>Torch's storage reference: <c>('storage', torch.FloatStorage, key, location, numel)</c>, in legacy
        /// files followed by a view_metadata that is None.</summary>
        public object PersistentLoad(object? pid)
        {
            int length = zip is null ? 6 : 5;
            if (pid is not object?[] t || t.Length != length || t[0] is not "storage" || t[1] is not PyGlobal cls || t[2] is not string key
                || t[3] is not string || t[4] is not long numel || (length == 6 && t[5] is not null))
                throw new PickleError($"persistent id is {Unpickler.Describe(pid)}; expected ('storage', storage class, key, location, numel{(zip is null ? ", None" : "")})");
            if (!StorageTypes.TryGetValue(cls.Name, out var type)) throw new PickleError($"persistent id names {cls}; expected a storage class");
            if (_storages.TryGetValue(key, out var known))
            {
                if (known.Type != type || known.Numel != numel)
                    throw new PickleError($"storage '{Short(key)}' is referenced as {type}[{numel}] after {known.Type}[{known.Numel}]; expected one type and size per storage");
                return known;
            }
            if (zip is null)
            {
                if (numel < 0 || numel > fileLength) throw new PickleError($"storage '{Short(key)}' claims {numel} elements; the file is {fileLength} bytes");
                var pending = new Storage(key, type, numel);
                _storages.Add(key, pending);
                return pending;
            }
            if (!_entries.TryGetValue(_prefix + "data/" + key, out var entry))
                throw new PickleError($"storage '{Short(key)}' has no zip entry '{Short(_prefix + "data/" + key)}'");
            long expected = numel >= 0 && numel <= fileLength ? numel * SizeOf(type) : -1;
            if (expected < 0 || entry.Length != expected)
                throw new PickleError($"storage '{Short(key)}' is {type}[{numel}] ({(expected < 0 ? "impossible" : $"{expected} bytes")}) but its zip entry holds {entry.Length} bytes");
            var storage = new Storage(key, type, numel) { Bytes = ReadEntry(entry, expected) };
            _storages.Add(key, storage);
            return storage;
        }

        // ------------------------------------------------------------ tensors

        /// <summary><c>_rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])</c>:
        /// the view is validated against the storage here and copied out as a contiguous float32 tensor by
        /// <see cref="Materialize"/> once it is known to be part of the state dict.</summary>
        private TensorView RebuildTensor(object?[] args)
        {
            if (args.Length is not (6 or 7) || args[0] is not Storage s || args[1] is not long offset || args[2] is not object?[] size || args[3] is not object?[] stride)
                throw new PickleError($"torch._utils._rebuild_tensor_v2 called with {args.Length} arguments; expected (storage, offset, size tuple, stride tuple, requires_grad, hooks)");
            if (size.Length != stride.Length || size.Length > MaxRank)
                throw new PickleError($"tensor on storage '{Short(s.Key)}' has {size.Length} sizes and {stride.Length} strides; expected equal counts of at most {MaxRank}");
            var shape = new int[size.Length];
            var strides = new long[size.Length];
            long count = 1;
            Int128 last = offset; // the largest element index the view touches
            for (int i = 0; i < size.Length; i++)
            {
                if (size[i] is not long n || n < 0 || n > int.MaxValue || stride[i] is not long st || st < 0)
                    throw new PickleError($"tensor on storage '{Short(s.Key)}': size[{i}] = {Unpickler.Describe(size[i])}, stride[{i}] = {Unpickler.Describe(stride[i])}; " +
                        $"expected integers in [0, {int.MaxValue}] and [0, 2^63)");
                shape[i] = (int)n;
                strides[i] = st;
                count = n == 0 || count == 0 ? 0 : count > Array.MaxLength / n ? Array.MaxLength + 1L : count * n;
                if (n > 0) last += (Int128)(n - 1) * st;
            }
            string view = $"tensor {Tensor.FormatShape(shape)} at storage offset {offset} with strides ({string.Join(",", strides)})";
            if (count > Array.MaxLength) throw new PickleError($"{view} has more than {Array.MaxLength} elements");
            if (offset < 0 || (count > 0 ? last >= s.Numel : offset > s.Numel))
                throw new PickleError($"{view} reaches element {last} of storage '{Short(s.Key)}', which holds {s.Numel} {s.Type} elements (truncated or forged file?)");
            _elements += count;
            if (_elements > _elementBudget)
                throw new PickleError($"tensors hold more than {_elementBudget} elements in total, far more than the file's storages; refusing to allocate (forged sizes?)");

            return new TensorView(s, offset, shape, strides, count);
        }

        private Tensor Materialize(TensorView v)
        {
            if (v.Storage.Bytes is null)
                throw new InvalidFileException(path, $"storage '{Short(v.Storage.Key)}' is referenced but its bytes never follow (truncated legacy file?)");
            var data = new float[v.Count];
            if (v.Count > 0) Gather(v.Storage, v.Offset, v.Shape, v.Strides, data);
            return new Tensor(data, v.Shape);
        }

        /// <summary>Copies a strided view into row-major order, converting each element to float32.</summary>
        private static void Gather(Storage s, long offset, int[] shape, long[] strides, float[] dst)
        {
            bool contiguous = true;
            long expect = 1;
            for (int i = shape.Length - 1; i >= 0; i--)
            {
                if (shape[i] != 1 && strides[i] != expect) contiguous = false;
                expect *= shape[i];
            }
            if (contiguous)
            {
                Convert(s, offset, dst);
                return;
            }
            // Odometer over all but the last dimension; the last is one strided run.
            int rank = shape.Length, inner = shape[^1];
            long innerStride = strides[^1];
            var index = new int[rank];
            long pos = offset;
            for (int done = 0; done < dst.Length; done += inner)
            {
                for (int j = 0; j < inner; j++) dst[done + j] = Element(s, pos + j * innerStride);
                for (int d = rank - 2; d >= 0; d--)
                {
                    pos += strides[d];
                    if (++index[d] < shape[d]) break;
                    pos -= strides[d] * shape[d];
                    index[d] = 0;
                }
            }
        }

        private static void Convert(Storage s, long offset, Span<float> dst)
        {
            if (s.Type == DType.F32 && BitConverter.IsLittleEndian)
            {
                MemoryMarshal.Cast<byte, float>(s.Bytes.AsSpan((int)(offset * 4), dst.Length * 4)).CopyTo(dst);
                return;
            }
            for (int i = 0; i < dst.Length; i++) dst[i] = Element(s, offset + i);
        }

        private static float Element(Storage s, long index)
        {
            var b = s.Bytes.AsSpan((int)(index * SizeOf(s.Type)));
            return s.Type switch
            {
                DType.F32 => BinaryPrimitives.ReadSingleLittleEndian(b),
                DType.F64 => (float)BinaryPrimitives.ReadDoubleLittleEndian(b),
                DType.F16 => (float)BinaryPrimitives.ReadHalfLittleEndian(b),
                DType.BF16 => BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(b) << 16),
                DType.I64 => BinaryPrimitives.ReadInt64LittleEndian(b),
                DType.I32 => BinaryPrimitives.ReadInt32LittleEndian(b),
                DType.I16 => BinaryPrimitives.ReadInt16LittleEndian(b),
                DType.I8 => (sbyte)b[0],
                DType.U8 => b[0],
                _ => b[0] != 0 ? 1f : 0f,
            };
        }

        // ------------------------------------------------------------ the state dict

        /// <summary>Finds the state dict in the unpickled value: the dict itself, or a checkpoint dict wrapping it.</summary>
        private PthFile Extract(object? root)
        {
            var notes = new List<string>();
            if (root is not OrderedDictionary<object, object?> top)
                throw new InvalidFileException(path, $"data.pkl holds {Unpickler.Describe(root)}; expected a dict of tensors (a state dict)");
            var dict = top;
            if (!HasTensors(top))
            {
                string? key = WrapperKeys.FirstOrDefault(k => top.TryGetValue(k, out var v) && v is OrderedDictionary<object, object?> d && HasTensors(d));
                var candidates = top.Where(kv => kv.Value is OrderedDictionary<object, object?> d && HasTensors(d)).ToList();
                if (key is null && candidates.Count == 1) key = candidates[0].Key as string;
                if (key is null)
                    throw new InvalidFileException(path, $"holds a dict without tensors (keys: {string.Join(", ", top.Keys.Take(10).Select(Unpickler.Describe))}); " +
                        $"expected a state dict, or a checkpoint with the state dict under one of: {string.Join(", ", WrapperKeys)}");
                dict = (OrderedDictionary<object, object?>)top[key]!;
                var others = top.Keys.Where(k => !Equals(k, key)).Select(Unpickler.Describe).ToList();
                notes.Add($"used the state dict under checkpoint key '{key}'{(others.Count > 0 ? $"; ignored {string.Join(", ", others.Take(10))}" : "")}");
            }

            var tensors = new OrderedDictionary<string, Tensor>(StringComparer.Ordinal);
            var skipped = new List<string>();
            foreach (var (k, v) in dict)
            {
                if (k is not string name) throw new InvalidFileException(path, $"state dict key {Unpickler.Describe(k)} is not a string");
                if (v is TensorView t) tensors.Add(name, Materialize(t));
                else skipped.Add(name);
            }
            if (skipped.Count > 0) notes.Add($"ignored {skipped.Count} non-tensor entries: {string.Join(", ", skipped.Take(10))}");

            const string Prefix = "module.";
            if (tensors.Count > 0 && tensors.Keys.All(k => k.StartsWith(Prefix, StringComparison.Ordinal)))
            {
                var stripped = new OrderedDictionary<string, Tensor>(StringComparer.Ordinal);
                foreach (var (k, v) in tensors)
                    if (!stripped.TryAdd(k[Prefix.Length..], v)) throw new InvalidFileException(path, $"key '{k}' repeats another after stripping '{Prefix}'");
                tensors = stripped;
                notes.Add($"stripped the '{Prefix}' prefix (DataParallel) from all {tensors.Count} keys");
            }
            return new PthFile(path, tensors, notes);
        }

        private static bool HasTensors(OrderedDictionary<object, object?> d) => d.Values.Any(v => v is TensorView);

        // ------------------------------------------------------------ legacy format

        private static readonly BigInteger LegacyMagic = BigInteger.Parse("119547037146038801333356");

        public PthFile LoadLegacy(byte[] file)
        {
            int pos = 0;
            object? Next() => Unpickler.Load(path, file, this, ref pos, "legacy file");
            if (Next() is not BigInteger magic || magic != LegacyMagic)
                throw new InvalidFileException(path, "starts with a pickle but not torch's magic number; expected a file written by torch.save");
            if (Next() is not 1001L)
                throw new InvalidFileException(path, $"legacy file offset {pos}: protocol version is not 1001; expected a file written by torch.save");
            if (Next() is OrderedDictionary<object, object?> info && info.TryGetValue("little_endian", out var le) && le is false)
                throw new InvalidFileException(path, "legacy file is big-endian; only little-endian files are supported");
            _elementBudget = 4L * file.Length + (1 << 20);
            var root = Next();
            int keysAt = pos;
            if (Next() is not List<object?> keys)
                throw new InvalidFileException(path, $"legacy file offset {keysAt}: expected the list of storage keys");
            foreach (var k in keys)
            {
                if (k is not string key || !_storages.TryGetValue(key, out var s) || s.Bytes is not null)
                    throw new InvalidFileException(path, $"legacy file offset {pos}: storage key {Unpickler.Describe(k)} was not referenced by the pickle or repeats");
                if (file.Length - pos < 8 || BinaryPrimitives.ReadInt64LittleEndian(file.AsSpan(pos)) != s.Numel)
                    throw new InvalidFileException(path, $"legacy file offset {pos}: storage '{Short(key)}' should start with its element count {s.Numel} (truncated file?)");
                pos += 8;
                long bytes = s.Numel * SizeOf(s.Type); // Numel ≤ file length, so no overflow
                if (bytes > file.Length - pos)
                    throw new InvalidFileException(path, $"legacy file offset {pos}: storage '{Short(key)}' needs {bytes} bytes but only {file.Length - pos} remain (truncated file?)");
                s.Bytes = file.AsSpan(pos, (int)bytes).ToArray();
                pos += (int)bytes;
            }
            var result = Extract(root);
            return result with { Notes = [.. result.Notes, "read a legacy (PyTorch < 1.6) file; re-saving it with a current torch.save gives the zip format"] };
        }
    }

    private static string Short(string s) => s.Length <= 64 ? s : string.Concat(s.AsSpan(0, 60), "…");
}
