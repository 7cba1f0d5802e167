// Tests for Safetensors: round trips, byte layout against hand-built bytes and the PyTorch fixtures, dtype
// conversion, every malformed-file check, and a mutation fuzz.
using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using SpikeSharp.Interop;
using SpikeSharp.Tensors;
using Xunit;

namespace SpikeSharp.Tests.Interop;

public class SafetensorsTests
{
    private static readonly string FixtureDir = Path.Combine(AppContext.BaseDirectory, "Fixtures", "torch");

    // ------------------------------------------------------------------ helpers

    /// <summary>A file image: u64 LE header length, the header bytes as given (no padding), then the data.</summary>
    private static byte[] Build(string header, byte[] data) => Build(Encoding.UTF8.GetBytes(header), data);

    private static byte[] Build(byte[] header, byte[] data)
    {
        var bytes = new byte[8 + header.Length + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, (ulong)header.Length);
        header.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + header.Length);
        return bytes;
    }

    private static byte[] Floats(params float[] values)
    {
        var bytes = new byte[4 * values.Length];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(4 * i), values[i]);
        return bytes;
    }

    private static InvalidFileException AssertInvalid(byte[] file, params string[] fragments)
    {
        using var tmp = new TempDirectory();
        string path = tmp.Combine("bad.safetensors");
        File.WriteAllBytes(path, file);
        var e = Assert.Throws<InvalidFileException>(() => Safetensors.Read(path));
        Assert.Equal(path, e.FilePath);
        Assert.StartsWith(path + ": ", e.Message);
        foreach (var f in fragments) Assert.Contains(f, e.Message);
        return e;
    }

    private static void AssertSameBits(Tensor expected, Tensor actual)
    {
        Assert.Equal(expected.Shape, actual.Shape);
        for (int i = 0; i < expected.Length; i++)
            Assert.Equal(BitConverter.SingleToInt32Bits(expected.Data[i]), BitConverter.SingleToInt32Bits(actual.Data[i]));
    }

    private static SafetensorsFile Fixture(string name) => Safetensors.Read(Path.Combine(FixtureDir, name + ".safetensors"));

    // ------------------------------------------------------------------ writing and round trips

    [Fact]
    public void RoundTrip_PreservesBitsShapesMetadataAndScalarAndEmptyTensors()
    {
        using var tmp = new TempDirectory();
        string path = tmp.Combine("rt.safetensors");
        var rng = new Random(1);
        var big = new float[1000];
        for (int i = 0; i < big.Length; i++) big[i] = (float)(rng.NextDouble() * 2 - 1);
        var tensors = new Dictionary<string, Tensor>
        {
            ["features.0.weight"] = new Tensor(big, 10, 4, 5, 5),
            ["special"] = new Tensor([float.NaN, BitConverter.Int32BitsToSingle(0x7fc01234), float.PositiveInfinity,
                float.NegativeInfinity, -0f, float.Epsilon, float.MaxValue], 7),
            ["scalar"] = new Tensor([3.25f]),
            ["empty"] = new Tensor([], 0, 3),
        };
        var meta = new Dictionary<string, string> { ["format"] = "pt", ["note"] = "λ=2 \"quoted\"\n" };
        Safetensors.Write(path, tensors, meta);

        var file = Safetensors.Read(path);
        Assert.Equal(tensors.Keys.Order(StringComparer.Ordinal), file.Tensors.Keys.Order(StringComparer.Ordinal));
        foreach (var (name, t) in tensors) AssertSameBits(t, file.Tensors[name]);
        Assert.Empty(file.Get("scalar").Shape);
        Assert.Equal(meta, file.Metadata);
        Assert.All(file.StoredDTypes.Values, d => Assert.Equal("F32", d));
        Assert.Equal(["rt.safetensors"], Directory.GetFiles(tmp.Path).Select(Path.GetFileName)); // no temp files left
    }

    [Fact]
    public void Write_ProducesTheReferenceLayoutByteForByte()
    {
        // Sorted names, __metadata__ first, compact JSON, padded with spaces to 8, then raw little-endian data.
        const string header = "{\"__metadata__\":{\"k\":\"v\"},\"a\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}," +
                              "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}    ";
        byte[] expected = [0x88, 0, 0, 0, 0, 0, 0, 0, .. Encoding.UTF8.GetBytes(header),
            0x00, 0x00, 0x60, 0x40, 0x00, 0x00, 0x80, 0x3F, 0x00, 0x00, 0x00, 0x40];

        using var tmp = new TempDirectory();
        string path = tmp.Combine("x.safetensors");
        Safetensors.Write(path, [new("b", new Tensor([1f, 2f], 2)), new("a", new Tensor([3.5f]))],
            new Dictionary<string, string> { ["k"] = "v" });
        Assert.Equal(expected, File.ReadAllBytes(path));
    }

    [Fact]
    public void Write_ReproducesEveryPythonFixtureByteForByte()
    {
        var files = Directory.GetFiles(FixtureDir, "*.safetensors");
        Assert.Equal(19, files.Length);
        using var tmp = new TempDirectory();
        var mixed = new List<string>();
        foreach (var original in files)
        {
            var file = Safetensors.Read(original);
            // Write emits F32 only; the spike-level goldens store spike counts as U8 (make_snn_fixtures.py,
            // make_method_fixtures.py, make_neuron_fixtures.py).
            if (file.StoredDTypes.Values.Any(d => d != "F32")) { mixed.Add(Path.GetFileName(original)); continue; }
            string copy = tmp.Combine(Path.GetFileName(original));
            Safetensors.Write(copy, file.Tensors, file.Metadata);
            Assert.True(File.ReadAllBytes(original).AsSpan().SequenceEqual(File.ReadAllBytes(copy)), $"{original} differs when rewritten");
        }
        Assert.Equal(["methods_resnet20.safetensors", "neurons_resnet20.safetensors", "snn_cnn_small.safetensors"], mixed.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Write_OrdersByUtf8BytesAndEscapesOnlyWhatJsonRequires()
    {
        using var tmp = new TempDirectory();
        string path = tmp.Combine("names.safetensors");
        // UTF-16 ordinal order would put the emoji (a surrogate pair, 0xD83D...) before U+FFFD; UTF-8 puts it after.
        string[] names = ["b", "\U0001F600", "\uFFFD", "a", "B", "é", "q\"uote", "back\\slash", "new\nline", "ctl\u0001"];
        Safetensors.Write(path, names.Select((n, i) => new KeyValuePair<string, Tensor>(n, new Tensor([(float)i]))));

        var file = Safetensors.Read(path);
        Assert.Equal(["B", "a", "b", "back\\slash", "ctl\u0001", "new\nline", "q\"uote", "é", "\uFFFD", "\U0001F600"], file.Tensors.Keys);
        for (int i = 0; i < names.Length; i++) Assert.Equal(i, file.Get(names[i]).Data[0]);
        byte[] bytes = File.ReadAllBytes(path);
        string header = Encoding.UTF8.GetString(bytes, 8, (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes));
        Assert.Contains("\"ctl\\u0001\"", header);
        Assert.Contains("\"new\\nline\"", header);
        Assert.Contains("\"é\"", header); // not \u00e9: Python's ensure_ascii=False and serde_json keep UTF-8
    }

    [Fact]
    public void Write_RejectsDuplicateReservedAndUnencodableNames()
    {
        using var tmp = new TempDirectory();
        string path = tmp.Combine("x.safetensors");
        var t = new Tensor([1f], 1);
        Assert.Contains("twice", Assert.Throws<ArgumentException>(() => Safetensors.Write(path, [new("a", t), new("a", t)])).Message);
        Assert.Contains("reserved", Assert.Throws<ArgumentException>(() => Safetensors.Write(path, [new("__metadata__", t)])).Message);
        Assert.Contains("surrogate", Assert.Throws<ArgumentException>(() => Safetensors.Write(path, [new("x\uD800", t)])).Message);
        Assert.False(File.Exists(path));
    }

    [Fact]
    public void Read_ConvertsOtherDTypesToFloat()
    {
        var data = new List<byte>();
        var header = new StringBuilder("{");
        void Add(string name, string dtype, int[] shape, byte[] bytes)
        {
            if (header.Length > 1) header.Append(',');
            header.Append($"\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":[{string.Join(',', shape)}],\"data_offsets\":[{data.Count},{data.Count + bytes.Length}]}}");
            data.AddRange(bytes);
        }
        byte[] Le<T>(T[] values, int size, Action<byte[], int, T> put)
        {
            var b = new byte[size * values.Length];
            for (int i = 0; i < values.Length; i++) put(b, size * i, values[i]);
            return b;
        }
        Add("f64", "F64", [2], Le([1.5, -2.25], 8, (b, o, v) => BinaryPrimitives.WriteDoubleLittleEndian(b.AsSpan(o), v)));
        Add("f16", "F16", [2], Le([(Half)0.5f, (Half)(-3f)], 2, (b, o, v) => BinaryPrimitives.WriteHalfLittleEndian(b.AsSpan(o), v)));
        Add("bf16", "BF16", [1, 2], Le<ushort>([0x3F80, 0xC000], 2, (b, o, v) => BinaryPrimitives.WriteUInt16LittleEndian(b.AsSpan(o), v)));
        Add("i64", "I64", [2], Le([-7L, 1L << 40], 8, (b, o, v) => BinaryPrimitives.WriteInt64LittleEndian(b.AsSpan(o), v)));
        Add("i32", "I32", [2], Le([5, -6], 4, (b, o, v) => BinaryPrimitives.WriteInt32LittleEndian(b.AsSpan(o), v)));
        Add("u8", "U8", [3], [0, 7, 255]);
        Add("bool", "BOOL", [3], [0, 1, 2]);
        header.Append('}');

        using var tmp = new TempDirectory();
        string path = tmp.Combine("dtypes.safetensors");
        File.WriteAllBytes(path, Build(header.ToString(), [.. data]));
        var file = Safetensors.Read(path);

        Assert.Equal([1.5f, -2.25f], file.Get("f64").Data);
        Assert.Equal([0.5f, -3f], file.Get("f16").Data);
        Assert.Equal([1f, -2f], file.Get("bf16").Data);
        Assert.Equal([1, 2], file.Get("bf16").Shape);
        Assert.Equal([-7f, 1099511627776f], file.Get("i64").Data);
        Assert.Equal([5f, -6f], file.Get("i32").Data);
        Assert.Equal([0f, 7f, 255f], file.Get("u8").Data);
        Assert.Equal([0f, 1f, 1f], file.Get("bool").Data);
        Assert.Equal(["f64", "f16", "bf16", "i64", "i32", "u8", "bool"], file.Tensors.Keys); // file (offset) order
        Assert.Equal("BF16", file.StoredDTypes["bf16"]);
        Assert.Empty(file.Metadata);
    }

    [Fact]
    public void Read_ReturnsTensorsInDataOrderNotHeaderOrder()
    {
        const string header = "{\"z\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]},\"__metadata__\":null," +
                              "\"y\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}";
        using var tmp = new TempDirectory();
        string path = tmp.Combine("order.safetensors");
        File.WriteAllBytes(path, Build(header, Floats(1f, 2f)));
        var file = Safetensors.Read(path);
        Assert.Equal(["y", "z"], file.Tensors.Keys);
        Assert.Equal(2f, file.Get("z").Data[0]);
        Assert.Contains("holds y, z", Assert.Throws<InvalidFileException>(() => file.Get("w")).Message);
    }

    // ------------------------------------------------------------------ malformed files

    [Fact]
    public void Read_MissingFile_SaysNotFound()
    {
        using var tmp = new TempDirectory();
        string path = tmp.Combine("nope.safetensors");
        var e = Assert.Throws<InvalidFileException>(() => Safetensors.Read(path));
        Assert.Equal($"{path}: file not found", e.Message);
    }

    [Fact]
    public void Read_FileShorterThan8Bytes() => AssertInvalid([1, 2, 3, 4, 5], "5 bytes long", "8-byte header length");

    [Fact]
    public void Read_HeaderLengthBeyondFile()
    {
        var file = Build("{}", []);
        BinaryPrimitives.WriteUInt64LittleEndian(file, 3);
        AssertInvalid(file, "header length field is 3 bytes", "only 2 bytes follow");
    }

    [Theory]
    [InlineData(100_000_001UL)]
    [InlineData(ulong.MaxValue)]
    public void Read_HeaderLengthOver100MB(ulong length)
    {
        var file = Build("{}", []);
        BinaryPrimitives.WriteUInt64LittleEndian(file, length);
        AssertInvalid(file, $"header length field is {length} bytes", "at most 100000000");
    }

    [Fact]
    public void Read_HeaderNotUtf8() =>
        AssertInvalid(Build([(byte)'{', (byte)'"', (byte)'a', 0xFF, (byte)'"', (byte)':', (byte)'1', (byte)'}'], []),
            "not valid UTF-8", "file offset 11");

    [Theory]
    // header JSON, data bytes, expected message fragments (the tensor, the field, found, expected)
    [InlineData("", 0, "header is empty", "JSON object")]
    [InlineData("[1]", 0, "starts with byte 0x5B", "expected '{'")]
    [InlineData("{\"x\":", 0, "not valid JSON")]
    [InlineData("{\"x\":{}} junk", 0, "not valid JSON")]
    [InlineData("{\"\\ud800\":{\"dtype\":\"F32\",\"shape\":[],\"data_offsets\":[0,4]}}", 4, "not valid UTF-16")]
    [InlineData("{\"x\":5}", 0, "tensor 'x' is the number 5", "expected an object with dtype, shape and data_offsets")]
    [InlineData("{\"x\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "tensor 'x' has no 'dtype'", "F32, F64")]
    [InlineData("{\"x\":{\"dtype\":7,\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "tensor 'x': dtype is the number 7", "expected a string")]
    [InlineData("{\"x\":{\"dtype\":\"F8_E4M3\",\"shape\":[2],\"data_offsets\":[0,2]}}", 2, "tensor 'x': dtype 'F8_E4M3' is not supported", "expected one of F32, F64, F16, BF16, I64, I32, U8, BOOL")]
    [InlineData("{\"x\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4, "tensor 'x' has no 'shape'")]
    [InlineData("{\"x\":{\"dtype\":\"F32\",\"shape\":\"2\",\"data_offsets\":[0,8]}}", 8, "tensor 'x': shape is the string \"2\"", "expected an array")]
    [InlineData("{\"x\":{\"dtype\":\"F32\",\"shape\":[2,-3],\"data_offsets\":[0,24]}}", 24, "tensor 'x': shape[1] is -3", "expected a non-negative integer")]
    [InlineData("{\"x\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8, "tensor 'x': shape[0] is 2.5", "expected a non-negative integer")]
    [InlineData("{\"x\":{\"dtype\":\"F32\",\"shape\":[99999999999999999999],\"data_offsets\":[0,4]}}", 4, "tensor 'x': shape[0] is 99999999999999999999", "below 2^63")]
    [InlineData("{\"x\":{\"dtype\":\"F32\",\"shape\":[3000000000],\"data_offsets\":[0,4]}}", 4, "tensor 'x': shape[0] is 3000000000", "expected at most 2147483647")]
    [InlineData("{\"x\":{\"dtype\":\"F32\",\"shape\":[2147483647,2147483647,2147483647],\"data_offsets\":[0,4]}}", 4, "tensor 'x': shape [2147483647,2147483647,2147483647] overflows", "expected")]
    [InlineData("{\"x\":{\"dtype\":\"F32\",\"shape\":[2147483647,2],\"data_offsets\":[0,4]}}", 4, "tensor 'x': shape [2147483647,2] has 4294967294 elements", "expected at most")]
    [InlineData("{\"x\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4, "tensor 'x' has no 'data_offsets'", "[begin, end]")]
    [InlineData("{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 4, "tensor 'x': data_offsets is an array of 3", "[begin, end]")]
    [InlineData("{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}}", 4, "tensor 'x': data_offsets[0] is -4", "non-negative")]
    [InlineData("{\"x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,1e30]}}", 4, "tensor 'x': data_offsets[1] is 1e30", "non-negative integer")]
    [InlineData("{\"x\":{\"dtype\":\"F32\",\"shape\":[0],\"data_offsets\":[4,0]}}", 4, "tensor 'x': data_offsets [4,0] end before they begin", "begin <= end")]
    [InlineData("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,12]}}", 12, "tensor 'x': data_offsets [0,12] span 12 bytes", "expected 8 (F32 shape [2])")]
    [InlineData("{\"x\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, "tensor 'x': data_offsets [0,8] reach past the data region", "expected end <= 4")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}", 12, "tensor 'b': data_offsets [4,12] overlap tensor 'a' [0,8]", "expected begin = 8")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}", 12, "tensor 'b': data_offsets [8,12] leave bytes [4,8) of the data region unused", "expected begin = 4")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "tensor 'a': data_offsets [4,8] leave bytes [0,4)", "expected begin = 0")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, "tensors cover 4 bytes of the data region but the file holds 8", "expected the last data_offsets to end at 8")]
    [InlineData("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "tensor 'a' appears twice", "unique")]
    [InlineData("{\"__metadata__\":[1],\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "'__metadata__' is an array of 1", "expected an object of strings")]
    [InlineData("{\"__metadata__\":{\"k\":1},\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 4, "'__metadata__' entry 'k' is the number 1", "expected a string")]
    [InlineData("{\"__metadata__\":{},\"__metadata__\":{}}", 0, "two '__metadata__' entries")]
    public void Read_MalformedHeader_NamesTensorFieldAndExpectation(string header, int dataBytes, string fragment1, string? fragment2 = null)
    {
        string[] fragments = fragment2 is null ? [fragment1] : [fragment1, fragment2];
        AssertInvalid(Build(header, new byte[dataBytes]), fragments);
    }

    [Fact]
    public void Read_AcceptsSpacePaddingEmptyFilesAndZeroSizeTensorsSharingAnOffset()
    {
        const string header = "{\"a\":{\"dtype\":\"F32\",\"shape\":[0,5],\"data_offsets\":[0,0]},\"b\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}   ";
        using var tmp = new TempDirectory();
        string path = tmp.Combine("z.safetensors");
        File.WriteAllBytes(path, Build(header, []));
        var file = Safetensors.Read(path);
        Assert.Equal([0, 5], file.Get("a").Shape);
        Assert.Equal(0, file.Get("b").Length);

        File.WriteAllBytes(path, Build("{}", []));
        Assert.Empty(Safetensors.Read(path).Tensors);
    }

    // ------------------------------------------------------------------ fuzz

    [Fact]
    public async Task Read_MutatedFiles_ThrowOnlyInvalidFileException()
    {
        const string header = "{\"__metadata__\":{\"format\":\"pt\"},\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}," +
                              "\"h\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[24,32]},\"i\":{\"dtype\":\"I64\",\"shape\":[2],\"data_offsets\":[32,48]}," +
                              "\"m\":{\"dtype\":\"BOOL\",\"shape\":[3],\"data_offsets\":[48,51]},\"u\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[51,52]}}";
        var data = new byte[52];
        new Random(7).NextBytes(data);
        byte[] valid = Build(header, data);
        int headerEnd = 8 + Encoding.UTF8.GetByteCount(header);

        using var tmp = new TempDirectory();
        string path = tmp.Combine("fuzz.safetensors");
        File.WriteAllBytes(path, valid);
        Assert.Equal(5, Safetensors.Read(path).Tensors.Count);

        int rejected = 0;
        var run = Task.Run(() =>
        {
            var rng = new Random(12345);
            const string jsonish = "{}[]\":,-0123456789eE. \\u";
            for (int iter = 0; iter < 1000; iter++)
            {
                byte[] m = (byte[])valid.Clone();
                int kind = iter % 8;
                switch (kind)
                {
                    case 0: m = m[..rng.Next(m.Length)]; break;                                   // truncate
                    case 1: for (int k = rng.Next(1, 5); k > 0; k--) m[rng.Next(m.Length)] ^= (byte)(1 << rng.Next(8)); break;
                    case 2: for (int k = rng.Next(1, 3); k > 0; k--) m[rng.Next(8, headerEnd)] ^= (byte)(1 << rng.Next(8)); break;
                    case 3:                                                                        // forged header length
                        ulong[] forged = [0, 1, (ulong)(m.Length - 8), (ulong)(m.Length - 7), (ulong)(headerEnd - 8 + rng.Next(-9, 10)),
                            (ulong)rng.NextInt64(), ulong.MaxValue, 100_000_001, (ulong)rng.Next()];
                        BinaryPrimitives.WriteUInt64LittleEndian(m, forged[rng.Next(forged.Length)]);
                        break;
                    case 4: m[rng.Next(8, headerEnd)] = rng.Next(4) == 0 ? (byte)rng.Next(0x80, 0x100) : (byte)jsonish[rng.Next(jsonish.Length)]; break;
                    case 5:                                                                        // change one digit (shapes, offsets)
                        var digits = Enumerable.Range(8, headerEnd - 8).Where(i => m[i] is >= (byte)'0' and <= (byte)'9').ToArray();
                        m[digits[rng.Next(digits.Length)]] = (byte)('0' + rng.Next(10));
                        break;
                    case 6: m = [.. m, .. Enumerable.Range(0, rng.Next(1, 9)).Select(_ => (byte)rng.Next(256))]; break;
                    case 7:                                                                        // delete a header byte, length kept
                        int at = rng.Next(8, headerEnd);
                        m = [.. m[..at], .. m[(at + 1)..]];
                        break;
                }
                File.WriteAllBytes(path, m);
                try
                {
                    var file = Safetensors.Read(path);
                    Assert.All(file.Tensors.Values, t => Assert.Equal(t.Shape.Aggregate(1L, (a, d) => a * d), t.Length));
                }
                catch (InvalidFileException e)
                {
                    Assert.StartsWith(path + ": ", e.Message);
                    rejected++;
                }
                catch (Exception e)
                {
                    Assert.Fail($"mutation {iter} (kind {kind}) threw {e.GetType().Name}: {e.Message}\nfile: {Convert.ToBase64String(m)}");
                }
            }
        });
        await run.WaitAsync(TimeSpan.FromSeconds(30)); // a TimeoutException here means a read hung
        Assert.InRange(rejected, 500, 1000); // most mutations must be caught; data-only ones may still load
    }

    // ------------------------------------------------------------------ PyTorch fixtures

    [Theory]
    [InlineData("conv_k3s1p1_bias", "b[4] gb[4] gw[4,3,3,3] gx[2,3,7,7] gy[2,4,7,7] w[4,3,3,3] x[2,3,7,7] y[2,4,7,7]")]
    [InlineData("conv_k3s2p1_nobias", "gw[5,4,3,3] gx[2,4,8,8] gy[2,5,4,4] w[5,4,3,3] x[2,4,8,8] y[2,5,4,4]")]
    [InlineData("conv_k1s2p0_nobias", "gw[6,4,1,1] gx[2,4,8,8] gy[2,6,4,4] w[6,4,1,1] x[2,4,8,8] y[2,6,4,4]")]
    [InlineData("conv_k5s1p2_bias", "b[3] gb[3] gw[3,2,5,5] gx[1,2,9,9] gy[1,3,9,9] w[3,2,5,5] x[1,2,9,9] y[1,3,9,9]")]
    [InlineData("conv_k3s1p0_bias", "b[3] gb[3] gw[3,2,3,3] gx[2,2,6,5] gy[2,3,4,3] w[3,2,3,3] x[2,2,6,5] y[2,3,4,3]")]
    [InlineData("bn2d_train", "bias[3] gbias[3] gweight[3] gx[4,3,5,5] gy[4,3,5,5] rm0[3] rm1[3] rv0[3] rv1[3] weight[3] x[4,3,5,5] y[4,3,5,5]")]
    [InlineData("bn2d_eval", "bias[3] gbias[3] gweight[3] gx[4,3,5,5] gy[4,3,5,5] rm0[3] rv0[3] weight[3] x[4,3,5,5] y[4,3,5,5]")]
    [InlineData("bn1d_train", "bias[5] gbias[5] gweight[5] gx[8,5] gy[8,5] rm0[5] rm1[5] rv0[5] rv1[5] weight[5] x[8,5] y[8,5]")]
    [InlineData("bn1d_eval", "bias[5] gbias[5] gweight[5] gx[8,5] gy[8,5] rm0[5] rv0[5] weight[5] x[8,5] y[8,5]")]
    [InlineData("avgpool2", "gx[2,3,6,6] gy[2,3,3,3] x[2,3,6,6] y[2,3,3,3]")]
    [InlineData("maxpool2", "gx[2,3,6,6] gy[2,3,3,3] x[2,3,6,6] y[2,3,3,3]")]
    [InlineData("gap", "gx[2,3,5,5] gy[2,3,1,1] x[2,3,5,5] y[2,3,1,1]")]
    [InlineData("linear", "b[3] gb[3] gw[3,7] gx[5,7] gy[5,3] w[3,7] x[5,7] y[5,3]")]
    [InlineData("ce", "glogits[6,10] labels[6] logits[6,10] loss[]")]
    [InlineData("ce_ls01", "glogits[6,10] labels[6] logits[6,10] loss[]")]
    [InlineData("qcfs", "glam[1] gy[64] gz[64] lam[1] y[64] z[64]")]
    public void Fixture_HasTheDocumentedTensors(string name, string listing)
    {
        var file = Fixture(name);
        Assert.Equal(listing, string.Join(' ', file.Tensors.Select(p => p.Key + p.Value.ShapeString)));
        Assert.True(file.Metadata.ContainsKey("op"), $"{name} has no 'op' metadata");
    }

    [Fact]
    public void Fixture_ConvMetadataHoldsStrideAndPadding()
    {
        var file = Fixture("conv_k3s2p1_nobias");
        Assert.Equal("2", file.Metadata["stride"]);
        Assert.Equal("1", file.Metadata["padding"]);
        Assert.Equal("false", file.Metadata["bias"]);
        Assert.Equal("0.1", Fixture("ce_ls01").Metadata["label_smoothing"]);
    }

    [Fact]
    public void Fixture_LinearValuesAgreeWithAHandComputation()
    {
        // Proves element order: y = x·wᵀ + b, gx = gy·w, gw = gyᵀ·x, gb = Σ_n gy, all row-major as PyTorch stores them.
        var f = Fixture("linear");
        Tensor x = f.Get("x"), w = f.Get("w"), b = f.Get("b"), gy = f.Get("gy");
        for (int n = 0; n < 5; n++)
            for (int o = 0; o < 3; o++)
            {
                double y = b.Data[o];  // NOTE: Tensor[int] is a shape dimension, not an element
                for (int i = 0; i < 7; i++) y += x[n, i] * w[o, i];
                Assert.Equal(y, f.Get("y")[n, o], 4);
            }
        for (int n = 0; n < 5; n++)
            for (int i = 0; i < 7; i++)
                Assert.Equal(Enumerable.Range(0, 3).Sum(o => (double)gy[n, o] * w[o, i]), f.Get("gx")[n, i], 4);
        for (int o = 0; o < 3; o++)
        {
            for (int i = 0; i < 7; i++)
                Assert.Equal(Enumerable.Range(0, 5).Sum(n => (double)gy[n, o] * x[n, i]), f.Get("gw")[o, i], 4);
            Assert.Equal(Enumerable.Range(0, 5).Sum(n => (double)gy[n, o]), f.Get("gb").Data[o], 4);
        }
    }

    /// <summary>A second, independent reader (tools/check_safetensors.py, standard-library Python, strict about the
    /// format's offset rules) reads what we write: names, shapes, values and metadata. Needs /usr/bin/python3 (skipped without it).</summary>
    [SkippableFact]
    public void PythonReaderReadsOurFiles()
    {
        OutsideTool.Require(OutsideTool.Python3);
        using var dir = new TempDirectory();
        string path = Path.Combine(dir.Path, "m.safetensors");
        var a = TestUtil.Random(1, 3, 4);
        var b = TestUtil.Random(2, 5);
        Safetensors.Write(path, [new("layer.weight", a), new("b", b), new("ünïcode", new Tensor([2.5f], 1))], new Dictionary<string, string> { ["epoch"] = "3" });
        var (code, output) = TestUtil.Python(Path.Combine(SpikeSharp.Tests.Interop.NirExportTests.RepoRoot(), "tools", "check_safetensors.py"), path);
        Assert.True(code == 0, output);
        var doc = System.Text.Json.JsonDocument.Parse(output).RootElement;
        Assert.Equal("3", doc.GetProperty("metadata").GetProperty("epoch").GetString());
        var tensors = doc.GetProperty("tensors");
        foreach (var (name, t) in new[] { ("layer.weight", a), ("b", b) })
        {
            var e = tensors.GetProperty(name);
            Assert.Equal("F32", e.GetProperty("dtype").GetString());
            Assert.Equal(t.Shape, e.GetProperty("shape").EnumerateArray().Select(v => v.GetInt32()).ToArray());
            var values = e.GetProperty("values").EnumerateArray().Select(v => (float)v.GetDouble()).ToArray();
            Assert.Equal(t.Data.Take(values.Length), values);
        }
        Assert.Equal(2.5, tensors.GetProperty("ünïcode").GetProperty("sum").GetDouble());
    }
}
