// Tests for PthReader and its pickle VM: every fixture of tools/make_pth_fixtures.py against PyTorch's values, views
// and shared storages, wrapped and DataParallel dicts, the CLI import, strict-load reports, hand-built malformed files
// and a mutation fuzz.
using System.Buffers.Binary;
using System.Diagnostics;
using System.IO.Compression;
using System.Text;
using SpikeSharp.Interop;
using SpikeSharp.Interop.Pth;
using SpikeSharp.Models;
using SpikeSharp.Tensors;
using SpikeSharp.Tests.Cli;
using Xunit;
using Xunit.Abstractions;

namespace SpikeSharp.Tests.Interop;

public class PthReaderTests(ITestOutputHelper output)
{
    private static readonly string FixtureDir = Path.Combine(AppContext.BaseDirectory, "Fixtures", "pth");

    internal static string Fixture(string stem) => Path.Combine(FixtureDir, stem + ".pth");

    private static readonly Lazy<IReadOnlyDictionary<string, Tensor>> Expected =
        new(() => Safetensors.Read(Path.Combine(FixtureDir, "expected.safetensors")).Tensors);

    /// <summary>PyTorch's tensors of one fixture (float32), by key.</summary>
    internal static Dictionary<string, Tensor> ExpectedOf(string stem) =>
        Expected.Value.Where(kv => kv.Key.StartsWith(stem + "/", StringComparison.Ordinal)).ToDictionary(kv => kv.Key[(stem.Length + 1)..], kv => kv.Value);

    internal static void AssertSameBits(Tensor expected, Tensor actual, string key)
    {
        Assert.True(expected.Shape.SequenceEqual(actual.Shape), $"{key}: shape {actual.ShapeString}, expected {expected.ShapeString}");
        for (int i = 0; i < expected.Length; i++)
            Assert.True(BitConverter.SingleToInt32Bits(expected.Data[i]) == BitConverter.SingleToInt32Bits(actual.Data[i]),
                $"{key}[{i}]: {actual.Data[i]}, expected {expected.Data[i]}");
    }

    private static void AssertMatches(string stem, IReadOnlyDictionary<string, Tensor> actual, Func<string, string>? rename = null)
    {
        var expected = ExpectedOf(stem);
        Assert.NotEmpty(expected);
        Assert.Equal(expected.Keys.Select(rename ?? (k => k)).Order(), actual.Keys.Order());
        foreach (var (k, t) in expected) AssertSameBits(t, actual[(rename ?? (x => x))(k)], k);
    }

    // ------------------------------------------------------------------ hand-built files

    /// <summary>Writes pickle opcodes by hand, so tests can build files torch.save would never write.</summary>
    private sealed class PickleWriter
    {
        private readonly MemoryStream _s = new();

        public PickleWriter Op(params char[] ops) { foreach (char c in ops) _s.WriteByte((byte)c); return this; }

        public PickleWriter Str(string s)
        {
            var u = Encoding.UTF8.GetBytes(s);
            Span<byte> n = stackalloc byte[4];
            BinaryPrimitives.WriteUInt32LittleEndian(n, (uint)u.Length);
            _s.WriteByte((byte)'X'); _s.Write(n); _s.Write(u);
            return this;
        }

        public PickleWriter Int(int v)
        {
            Span<byte> n = stackalloc byte[4];
            BinaryPrimitives.WriteInt32LittleEndian(n, v);
            _s.WriteByte((byte)'J'); _s.Write(n);
            return this;
        }

        public PickleWriter Global(string module, string name) { _s.WriteByte((byte)'c'); _s.Write(Encoding.ASCII.GetBytes($"{module}\n{name}\n")); return this; }

        /// <summary>A <c>_rebuild_tensor_v2</c> call on storage "0" (as torch writes it, except hooks are a plain dict).</summary>
        public PickleWriter Tensor(long numel, int offset, int[] size, int[] stride, string storageClass = "FloatStorage")
        {
            Global("torch._utils", "_rebuild_tensor_v2").Op('(');
            Op('(').Str("storage").Global("torch", storageClass).Str("0").Str("cpu").Int((int)numel).Op('t', 'Q');
            Int(offset).Op('(');
            foreach (int s in size) Int(s);
            Op('t', '(');
            foreach (int s in stride) Int(s);
            return Op('t', '\u0089', '}', 't', 'R');
        }

        public byte[] ToArray() => _s.ToArray();
    }

    /// <summary>A stored (uncompressed) zip, as torch.save writes it.</summary>
    private static byte[] Zip(params (string Name, byte[] Data)[] entries)
    {
        using var ms = new MemoryStream();
        using (var zip = new ZipArchive(ms, ZipArchiveMode.Create, leaveOpen: true))
            foreach (var (name, data) in entries)
            {
                using var s = zip.CreateEntry(name, CompressionLevel.NoCompression).Open();
                s.Write(data);
            }
        return ms.ToArray();
    }

    private static byte[] Pth(byte[] pickle, params byte[][] storages) =>
        Zip([("archive/data.pkl", pickle), .. storages.Select((s, i) => ($"archive/data/{i}", s)), ("archive/version", "3\n"u8.ToArray())]);

    private static byte[] Floats(params float[] values)
    {
        var bytes = new byte[4 * values.Length];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(4 * i), values[i]);
        return bytes;
    }

    /// <summary>A pickle of <c>{"w": tensor}</c> with the given view of storage "0".</summary>
    private static byte[] OneTensor(long numel, int offset, int[] size, int[] stride, string storageClass = "FloatStorage") =>
        new PickleWriter().Op('\u0080', '\u0002', '}', '(').Str("w").Tensor(numel, offset, size, stride, storageClass).Op('u', '.').ToArray();

    private static PthFile ReadBytes(byte[] file) => PthReader.Read("mem.pth", new MemoryStream(file));

    private static InvalidFileException AssertInvalid(byte[] file, params string[] fragments)
    {
        using var tmp = new TempDirectory();
        string path = tmp.Combine("bad.pth");
        File.WriteAllBytes(path, file);
        var e = Assert.Throws<InvalidFileException>(() => PthReader.Read(path));
        Assert.Equal(path, e.FilePath);
        foreach (var f in fragments) Assert.Contains(f, e.Message);
        return e;
    }

    // ------------------------------------------------------------------ fixtures against PyTorch

    [Theory]
    [InlineData("tiny_bn")]
    [InlineData("tiny_bn_p4")]
    [InlineData("dtypes")]
    [InlineData("views")]
    [InlineData("cnn_small")]
    [InlineData("params")]
    [InlineData("resnet20_w025")]
    public void FixtureValuesEqualPyTorchs(string stem)
    {
        var file = PthReader.Read(Fixture(stem));
        AssertMatches(stem, file.Tensors);
        Assert.Empty(file.Notes);
    }

    [Fact]
    public void LegacyFormatIsRead()
    {
        var file = PthReader.Read(Fixture("legacy"));
        AssertMatches("legacy", file.Tensors);
        Assert.Equal(PthReader.ReadStateDict(Fixture("tiny_bn")).Keys, file.Tensors.Keys);
        Assert.Contains("legacy", Assert.Single(file.Notes));

        var bytes = File.ReadAllBytes(Fixture("legacy"));
        foreach (int n in new[] { 10, 200, bytes.Length - 100, bytes.Length - 1 })
            AssertInvalid(bytes[..n], "legacy file");
    }

    [Fact]
    public void StateDictKeepsTheFileOrderAndConvertsIntegerCounters()
    {
        var t = PthReader.ReadStateDict(Fixture("tiny_bn"));
        Assert.Equal(new[] { "0.weight", "0.bias", "1.weight", "1.bias", "1.running_mean", "1.running_var", "1.num_batches_tracked", "2.up", "4.weight", "4.bias" }, t.Keys);
        Assert.Equal(7f, t["1.num_batches_tracked"].Data.Single());
        Assert.Empty(t["1.num_batches_tracked"].Shape); // a 0-d tensor, as in PyTorch
        Assert.Equal(2.5f, t["2.up"].Data.Single());

        var canonical = ModelImport.Canonicalize(t);
        Assert.Contains("2.lambda", canonical.Keys);
        Assert.DoesNotContain(canonical.Keys, k => k.EndsWith("num_batches_tracked") || k.EndsWith(".up"));
    }

    [Fact]
    public void ViewsAndSharedStoragesAreHonoured()
    {
        var t = PthReader.ReadStateDict(Fixture("views"));
        var b = t["base"];
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 4; j++)
                Assert.Equal(b[i, j], t["t"][j, i]);
        Assert.Equal(b.Data.Skip(4).Take(4), t["row"].Data);
        Assert.Equal(new[] { b[0, 2], b[1, 2], b[2, 2] }, t["col"].Data);
        Assert.Equal(new[] { b[1, 1], b[1, 2], b[2, 1], b[2, 2] }, t["block"].Data);
        Assert.NotSame(b.Data, t["row"].Data); // copies, not aliases: loading one must not change another

        // Hand-built: a transposed view at an offset on a 6-element storage.
        var pth = Pth(OneTensor(6, 2, [2, 2], [1, 2]), Floats(9, 9, 1, 2, 3, 4));
        Assert.Equal(new[] { 1f, 3f, 2f, 4f }, ReadBytes(pth).Tensors["w"].Data);
    }

    [Fact]
    public void WrappedCheckpointIsUnwrappedWithANote()
    {
        var file = PthReader.Read(Fixture("wrapped"));
        AssertMatches("wrapped", file.Tensors);
        var note = Assert.Single(file.Notes);
        Assert.Contains("'state_dict'", note);
        Assert.Contains("'epoch'", note);
    }

    [Fact]
    public void DataParallelPrefixIsStrippedWithANote()
    {
        var file = PthReader.Read(Fixture("dataparallel"));
        AssertMatches("dataparallel", file.Tensors, k => k["module.".Length..]);
        Assert.Contains("'module.'", Assert.Single(file.Notes));
    }

    [Fact]
    public void ByteorderEntryIsChecked()
    {
        byte[] WithOrder(string order) => Zip(("archive/data.pkl", OneTensor(2, 0, [2], [1])), ("archive/data/0", Floats(1, 2)),
            ("archive/byteorder", Encoding.ASCII.GetBytes(order)), ("archive/version", "3\n"u8.ToArray()),
            ("archive/.data/serialization_id", "1234"u8.ToArray())); // the layout of PyTorch ≥ 2.1
        Assert.Equal(new[] { 1f, 2f }, ReadBytes(WithOrder("little")).Tensors["w"].Data);
        AssertInvalid(WithOrder("big"), "byteorder entry says 'big'", "little-endian");
    }

    [Fact]
    public void ModelImportPassesTheNotesOn()
    {
        var source = ModelImport.Read(Fixture("wrapped"), new ModelSpec("cnn-small"));
        Assert.Equal("pth", source.Format);
        Assert.Contains(source.Notes!, n => n.Contains("state_dict"));
    }

    [Fact]
    public void StrictLoadNamesMissingAndUnexpectedKeys()
    {
        var source = ModelImport.Read(Fixture("tiny_bn"), new ModelSpec("cnn-small"));
        var e = Assert.Throws<InvalidFileException>(() => ModelImport.Build(new ModelSpec("cnn-small", 1, 8, 8, 3, 0.25f), source, 4));
        Assert.Contains("missing keys (17): features.0.weight", e.Message);
        Assert.Contains("unexpected keys (9): 0.weight, 0.bias", e.Message);
        Assert.Contains("2.lambda", e.Message); // the λ alias is renamed before matching
        Assert.DoesNotContain("num_batches_tracked", e.Message);
    }

    // ------------------------------------------------------------------ malformed files

    [Fact]
    public void TruncatedZipIsRejected()
    {
        var bytes = File.ReadAllBytes(Fixture("tiny_bn"));
        foreach (int n in new[] { 3, 100, bytes.Length / 2, bytes.Length - 10 })
            AssertInvalid(bytes[..n]);
    }

    [Fact]
    public void LegacyAndNonZipFilesGetClearErrors()
    {
        AssertInvalid([0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46], "legacy file offset 2", "LONG1 needs 10 more bytes");
        AssertInvalid([0x80, 0x02, 0x4b, 0x07, 0x2e], "not torch's magic number");
        AssertInvalid("hello world"u8.ToArray(), "expected a zip archive");
        AssertInvalid(Zip(("x/readme.txt", [1, 2, 3])), "data.pkl");
    }

    [Fact]
    public void UnsupportedOpcodeNamesOffsetAndOpcode()
    {
        // PROTO 2, EMPTY_DICT, then INT (protocol 0 text integer) at offset 3.
        var e = AssertInvalid(Pth([0x80, 0x02, (byte)'}', (byte)'I', (byte)'1', (byte)'\n', (byte)'.']), "data.pkl offset 3", "0x49 (INT)", "state dict");
        Assert.StartsWith(e.FilePath + ": ", e.Message);
    }

    [Fact]
    public void ForbiddenGlobalIsNeverRun()
    {
        var pickle = new PickleWriter().Op('\u0080', '\u0002').Global("os", "system").Str("echo pwned").Op('\u0085', 'R', '.').ToArray();
        AssertInvalid(Pth(pickle), "data.pkl offset 2", "'os.system' is not allowed", "state dict");
        var builtins = new PickleWriter().Op('\u0080', '\u0002').Global("builtins", "eval").Op('.').ToArray();
        AssertInvalid(Pth(builtins), "'builtins.eval' is not allowed");
    }

    [Fact]
    public void StorageShorterThanTheTensorIsRejected()
    {
        // A [5] tensor on a 4-element storage.
        AssertInvalid(Pth(OneTensor(4, 0, [5], [1]), Floats(1, 2, 3, 4)), "reaches element 4", "holds 4 F32 elements");
        // An offset view that runs past the end.
        AssertInvalid(Pth(OneTensor(4, 2, [2, 2], [2, 1]), Floats(1, 2, 3, 4)), "reaches element 5");
        // The persistent id claims 8 elements but the zip entry holds 4.
        AssertInvalid(Pth(OneTensor(8, 0, [8], [1]), Floats(1, 2, 3, 4)), "F32[8] (32 bytes) but its zip entry holds 16 bytes");
        // No entry for the storage at all.
        AssertInvalid(Pth(OneTensor(4, 0, [4], [1])), "has no zip entry 'archive/data/0'");
    }

    [Fact]
    public void ForgedLengthsAndIndicesAreRejectedBeforeAllocating()
    {
        byte[] Pickle(params byte[] body) => [0x80, 0x02, .. body];
        AssertInvalid(Pth(Pickle((byte)'X', 0xff, 0xff, 0xff, 0x7f, (byte)'.')), "data.pkl offset 2", "string length 2147483647 exceeds");
        AssertInvalid(Pth(Pickle(0x8d, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, (byte)'.')), "BINUNICODE8 string length 18446744073709551615");
        AssertInvalid(Pth(Pickle((byte)'j', 0x10, 0x27, 0, 0, (byte)'.')), "memo index 10000 was never stored");
        AssertInvalid(Pth(Pickle((byte)'t', (byte)'.')), "TUPLE without a preceding MARK");
        AssertInvalid(Pth(Pickle((byte)'s', (byte)'.')), "SETITEM needs 2 value(s)");
        AssertInvalid(Pth(Pickle((byte)'}', (byte)'}')), "without a STOP opcode");
        AssertInvalid(Pth(Pickle((byte)'}', (byte)'}', (byte)'.')), "STOP leaves 2 values");
        AssertInvalid(Pth(Pickle((byte)']', (byte)'.')), "holds a list of 0; expected a dict");
        AssertInvalid(Pth([0x80, 0x02, .. Enumerable.Repeat((byte)0x88, Unpickler.MaxValues + 1), (byte)'.']), "pushes more than 4194304 values");
        // A huge view of a one-element storage through stride 0 (an "expanded" tensor): refused, not allocated.
        AssertInvalid(Pth(OneTensor(1, 0, [1 << 30], [0]), Floats(1)), "refusing to allocate");
    }

    [Fact]
    public void NonTensorCheckpointsExplainWhatIsExpected()
    {
        var pickle = new PickleWriter().Op('\u0080', '\u0002', '}', '(').Str("epoch").Int(3).Op('u', '.').ToArray();
        AssertInvalid(Pth(pickle), "without tensors", "'epoch'", "state_dict");
    }

    // ------------------------------------------------------------------ fuzz

    /// <summary>
    /// Mutates small valid files in three ways (the raw zip; data.pkl re-zipped so the zip stays valid and the pickle VM
    /// sees the damage; storages re-zipped shorter or longer) and asserts each either loads or throws a
    /// SpikeSharpException, quickly and without allocating more than a few MB.
    /// </summary>
    [Fact]
    public void MutatedFilesLoadOrFailCleanly()
    {
        // PTH_FUZZ_CASES / PTH_FUZZ_SEED let a developer run a long fuzz locally; CI runs the default.
        int cases = int.TryParse(Environment.GetEnvironmentVariable("PTH_FUZZ_CASES"), out int c) ? c : 10_000;
        var rng = new Random(int.TryParse(Environment.GetEnvironmentVariable("PTH_FUZZ_SEED"), out int seed) ? seed : 20261122);
        // Protocol 2 and 4 pickles, strided views, every dtype.
        var bases = new[] { "tiny_bn", "tiny_bn_p4", "views", "dtypes" }.Select(stem => LoadParts(File.ReadAllBytes(Fixture(stem)))).ToArray();
        var legacy = File.ReadAllBytes(Fixture("legacy"));
        foreach (var (original, parts, _) in bases)
            Assert.Equal(ReadBytes(original).Tensors.Keys, ReadBytes(Zip(parts)).Tensors.Keys); // re-zipping keeps them valid

        int loaded = 0, rejected = 0;
        var reasons = new Dictionary<string, int>(); // which layer caught the damage
        long worstAllocation = 0;
        var clock = Stopwatch.StartNew();
        for (int i = 0; i < cases; i++)
        {
            var (original, parts, pickleIndex) = bases[i / 5 % bases.Length];
            byte[] file;
            switch (i % 5)
            {
                case 4: file = Mutate(legacy, rng); break; // the pre-1.6 format: pickles and raw storages back to back
                case 0: file = Mutate(original, rng); break;
                case 1:
                {
                    var p = parts.ToArray();
                    p[pickleIndex] = (p[pickleIndex].Name, Mutate(p[pickleIndex].Data, rng));
                    file = Zip(p);
                    break;
                }
                case 2:
                {
                    // A random program over the supported opcodes with plausible operands, on the base's storages.
                    var p = parts.ToArray();
                    p[pickleIndex] = (p[pickleIndex].Name, RandomPickle(rng));
                    file = Zip(p);
                    break;
                }
                default:
                {
                    var p = parts.ToArray();
                    int k = rng.Next(p.Length);
                    p[k] = (p[k].Name, rng.Next(2) == 0 ? p[k].Data[..rng.Next(p[k].Data.Length + 1)] : [.. p[k].Data, .. new byte[rng.Next(1, 9)]]);
                    if (rng.Next(4) == 0) p[k] = (p[k].Name + "x", p[k].Data);
                    file = Zip(p);
                    break;
                }
            }
            long before = GC.GetAllocatedBytesForCurrentThread();
            try
            {
                ReadBytes(file);
                loaded++;
            }
            catch (SpikeSharpException e)
            {
                rejected++;
                string reason = e.Message.Contains("data.pkl offset") || e.Message.Contains("legacy file offset") ? "pickle VM" : e.Message.Contains("zip") ? "zip" : "storage/tensor/dict";
                reasons[reason] = reasons.GetValueOrDefault(reason) + 1;
            }
            catch (Exception e)
            {
                string kept = Path.Combine(Path.GetTempPath(), $"pth-fuzz-{i}.pth");
                File.WriteAllBytes(kept, file);
                Assert.Fail($"case {i}: {e.GetType().Name} escaped ({e.Message}); file kept at {kept}\n{e}");
            }
            worstAllocation = Math.Max(worstAllocation, GC.GetAllocatedBytesForCurrentThread() - before);
        }
        output.WriteLine($"{cases} cases in {clock.Elapsed.TotalSeconds:F1} s: {loaded} loaded, {rejected} rejected " +
            $"({string.Join(", ", reasons.Select(kv => $"{kv.Key} {kv.Value}"))}); worst allocation {worstAllocation >> 10} KiB");
        // Both outcomes must occur: a reader that rejected everything (or nothing) would not be exercised by mutations.
        Assert.True(loaded > 0, $"none of {cases} mutations loaded; are the mutations too destructive?");
        Assert.True(reasons.GetValueOrDefault("pickle VM") > cases / 10, "too few mutations reached the pickle VM");
        Assert.True(rejected > cases / 2, $"only {rejected} of {cases} mutations were rejected; the mutator is too gentle");
        Assert.True(worstAllocation < 32 << 20, $"one case allocated {worstAllocation} bytes");
    }

    /// <summary>A file's bytes and its zip entries (name, data), and which entry is data.pkl.</summary>
    private static (byte[] File, (string Name, byte[] Data)[] Parts, int PickleIndex) LoadParts(byte[] file)
    {
        var parts = new List<(string Name, byte[] Data)>();
        using (var zip = new ZipArchive(new MemoryStream(file)))
            foreach (var e in zip.Entries)
            {
                using var s = e.Open();
                var data = new byte[e.Length];
                s.ReadExactly(data);
                parts.Add((e.FullName, data));
            }
        return (file, parts.ToArray(), parts.FindIndex(p => p.Name.EndsWith("/data.pkl")));
    }

    /// <summary>PROTO 2, up to 80 random supported opcodes whose operands name the allowed globals, storage keys and
    /// small integers, then STOP: reaches the host's REDUCE/BUILD/BINPERSID paths with odd arguments.</summary>
    private static byte[] RandomPickle(Random rng)
    {
        string[] words = ["collections", "OrderedDict", "torch._utils", "_rebuild_tensor_v2", "_rebuild_parameter", "torch",
            "FloatStorage", "LongStorage", "HalfStorage", "storage", "0", "1", "cpu", "w", "state_dict", "module.w"];
        var w = new PickleWriter().Op('\u0080', '\u0002');
        for (int n = rng.Next(1, 80); n > 0; n--)
        {
            switch (rng.Next(14))
            {
                case 0: w.Str(words[rng.Next(words.Length)]); break;
                case 1: w.Int(rng.Next(4) == 0 ? rng.Next() - int.MaxValue / 2 : rng.Next(-2, 20)); break;
                case 2: w.Global(new[] { "collections", "torch._utils", "torch" }[rng.Next(3)], words[rng.Next(1, 9)]); break;
                case 3: w.Op('(', '('); break;
                case 4: w.Op("t\u0085\u0086\u0087"[rng.Next(4)]); break;
                case 5: w.Op("}])"[rng.Next(3)]); break;
                case 6: w.Op('R'); break;
                case 7: w.Op('Q'); break;
                case 8: w.Op("suae"[rng.Next(4)]); break;
                case 9: w.Op('q', (char)rng.Next(4)); break;
                case 10: w.Op('h', (char)rng.Next(4)); break;
                case 11: w.Op("b\u0081\u0093"[rng.Next(3)]); break;
                case 12: w.Op("\u0088\u0089N"[rng.Next(3)]); break;
                default: w.Tensor(rng.Next(0, 20), rng.Next(-1, 4), [rng.Next(0, 5), rng.Next(0, 5)], [rng.Next(0, 5), rng.Next(-1, 3)]); break;
            }
        }
        return w.Op('.').ToArray();
    }

    /// <summary>One random damage: bit flips, a boundary byte, a truncation, a forged 1/4/8-byte length, or an inserted
    /// or deleted byte.</summary>
    private static byte[] Mutate(byte[] source, Random rng)
    {
        var b = MutateOnce(source, rng);
        if (rng.Next(4) == 0) b = MutateOnce(MutateOnce(b, rng), rng); // sometimes several damages at once
        return b;
    }

    private static byte[] MutateOnce(byte[] source, Random rng)
    {
        var b = (byte[])source.Clone();
        if (b.Length == 0) return b;
        int at = rng.Next(b.Length);
        switch (rng.Next(7))
        {
            case 0:
                for (int n = rng.Next(1, 5); n > 0; n--) b[rng.Next(b.Length)] ^= (byte)(1 << rng.Next(8));
                return b;
            case 1:
                b[at] = (byte)(new[] { 0x00, 0xff, 0x7f, 0x80, 0x2e, 0x28, 0x74, 0x52, 0x51 })[rng.Next(9)];
                return b;
            case 2: return b[..at];
            case 3:
            {
                int width = new[] { 1, 2, 4, 8 }[rng.Next(4)];
                ulong value = new ulong[] { 0, 1, 0x7f, 0xff, 0xffff, 0x7fffffff, 0xffffffff, ulong.MaxValue, (ulong)rng.NextInt64() }[rng.Next(9)];
                for (int k = 0; k < width && at + k < b.Length; k++) b[at + k] = (byte)(value >> (8 * k));
                return b;
            }
            case 4: return [.. b[..at], (byte)rng.Next(256), .. b[at..]];
            case 5: return [.. b[..at], .. b[(at + 1)..]];
            default:
                // A random opcode byte: exercises every dispatch arm, known or not.
                b[at] = (byte)rng.Next(256);
                return b;
        }
    }
}

/// <summary>The end-to-end import through the CLI; in the "cli" collection because it redirects the console.</summary>
[Collection("cli")]
public class PthImportCliTests
{
    [Theory]
    [InlineData("cnn_small", "cnn-small", "1x8x8", "mnist", 4)]
    [InlineData("resnet20_w025", "resnet20", "3x8x8", "cifar10", 8)] // the SRP/COS reference layout, methods.md §9
    public void CliImportsAModelCompatibleStateDict(string stem, string arch, string shape, string dataset, int levels)
    {
        using var tmp = new TempDirectory();
        string outDir = tmp.Combine("imported");
        var (code, stdout, err) = CliTests.Run("import", "--from", PthReaderTests.Fixture(stem), "--arch", arch, "--input-shape", shape,
            "--width", "0.25", "--levels", $"{levels}", "--dataset", dataset, "--out", outDir);
        Assert.True(code == 0, err);
        Assert.Contains($"as {arch} ({shape}, 10 classes, activation qcfs L={levels})", stdout);

        var ckpt = Checkpoint.Load(outDir);
        Assert.Equal(10, ckpt.Spec.Classes);
        var state = ckpt.Model.StateDict().ToDictionary();
        var expected = PthReaderTests.ExpectedOf(stem);
        int counters = 0;
        foreach (var (k, t) in expected)
        {
            if (k.EndsWith(".num_batches_tracked")) { counters++; continue; }
            PthReaderTests.AssertSameBits(t, state[k.EndsWith(".up") ? k[..^2] + "lambda" : k], k);
        }
        Assert.True(counters > 0);
        Assert.Equal(expected.Count - counters, state.Count); // every model tensor came from the file
    }
}
