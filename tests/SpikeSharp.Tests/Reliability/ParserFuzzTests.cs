// Fuzz tests for every file parser: ≥ 10 000 mutated valid files each, parsed from memory (issue 7).
using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using SpikeSharp.Data;
using SpikeSharp.Interop;
using SpikeSharp.Models;
using SpikeSharp.Nn;
using SpikeSharp.Tests.Data;
using Xunit;
using Xunit.Abstractions;

namespace SpikeSharp.Tests.Reliability;

/// <summary>The parsers under fuzz, each as (bytes, path) → parse, and small valid seed files for each.</summary>
public static class FuzzTargets
{
    public static readonly Action<byte[], string> IdxImages = (b, p) => IdxReader.ReadImages(new MemoryStream(b), p);
    public static readonly Action<byte[], string> IdxLabels = (b, p) => IdxReader.ReadLabels(new MemoryStream(b), p, 10);
    public static readonly Action<byte[], string> Cifar10 = (b, p) => CifarReader.Read(new MemoryStream(b), p, cifar100: false, "c10");
    public static readonly Action<byte[], string> Cifar100 = (b, p) => CifarReader.Read(new MemoryStream(b), p, cifar100: true, "c100");
    public static readonly Action<byte[], string> Safetensors = (b, p) => global::SpikeSharp.Interop.Safetensors.Read(new MemoryStream(b), p);
    public static readonly Action<byte[], string> ModelJson = (b, p) => Checkpoint.ParseModelJson(b, p);

    /// <summary>The parse function for a corpus folder name.</summary>
    public static Action<byte[], string> For(string parser) => parser switch
    {
        "idx-images" => IdxImages,
        "idx-labels" => IdxLabels,
        "cifar10" => Cifar10,
        "cifar100" => Cifar100,
        "safetensors" => Safetensors,
        "model-json" => ModelJson,
        _ => throw new ArgumentException($"no fuzz target '{parser}'"),
    };

    public static byte[][] IdxImageSeeds()
    {
        var raw = FileBuilder.IdxImages(FileBuilder.Bytes(3 * 5 * 4, 1), 3, 5, 4);
        return [raw, FileBuilder.Gzip(raw)];
    }

    public static byte[][] IdxLabelSeeds()
    {
        var raw = FileBuilder.IdxLabels([3, 1, 4, 1, 5, 9, 2, 6]);
        return [raw, FileBuilder.Gzip(raw)];
    }

    public static byte[][] CifarSeeds(bool cifar100)
    {
        var labels = cifar100 ? new[] { new byte[] { 3, 42 }, new byte[] { 19, 99 } } : [[7], [0]];
        return [FileBuilder.CifarRecords(labels, FileBuilder.Bytes(2 * CifarReader.ImageBytes, 2))];
    }

    public static byte[][] SafetensorsSeeds()
    {
        static byte[] Build(string header, byte[] data)
        {
            var h = Encoding.UTF8.GetBytes(header + new string(' ', (8 - Encoding.UTF8.GetByteCount(header) % 8) % 8));
            var file = new byte[8 + h.Length + data.Length];
            BinaryPrimitives.WriteUInt64LittleEndian(file, (ulong)h.Length);
            h.CopyTo(file, 8);
            data.CopyTo(file, 8 + h.Length);
            return file;
        }
        // Several dtypes, an empty tensor, metadata: every branch of the reader.
        var mixed = Build("{\"__metadata__\":{\"format\":\"pt\"},\"a\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}," +
            "\"b\":{\"dtype\":\"F16\",\"shape\":[4],\"data_offsets\":[24,32]},\"c\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[32,40]}," +
            "\"d\":{\"dtype\":\"BOOL\",\"shape\":[2,1],\"data_offsets\":[40,42]},\"e\":{\"dtype\":\"U8\",\"shape\":[0,5],\"data_offsets\":[42,42]}}",
            FileBuilder.Bytes(42, 3));
        var f32 = Build("{\"features.0.weight\":{\"dtype\":\"F32\",\"shape\":[2,1,1,2],\"data_offsets\":[0,16]}," +
            "\"features.2.lambda\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[16,20]}}", FileBuilder.Bytes(20, 4));
        return [mixed, f32];
    }

    public static byte[][] ModelJsonSeeds()
    {
        static byte[] Json(ModelSpec spec, DataInfo data) =>
            Encoding.UTF8.GetBytes(new Checkpoint(spec, data, ModelFactory.Create(spec), new() { ["epochs_done"] = 1 }).ToJson()
                .ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        return
        [
            Json(new ModelSpec("cnn-small", 1, 28, 28, 10, 0.25f, ActivationSpec.Qcfs(4)), new DataInfo("mnist", [0.1307f], [0.3081f])),
            Json(new ModelSpec("cnn-small", 3, 8, 8, 100, 0.125f, ActivationSpec.Relu), new DataInfo("cifar100", [0.5f, 0.5f, 0.5f], [0.2f, 0.2f, 0.2f])),
        ];
    }
}

/// <summary>Each parser survives ≥ 10 000 mutated files: it parses them or rejects them with a message naming the file,
/// with bounded allocation and no hang. The seeds are fixed, so every run tries the same cases.</summary>
public sealed class ParserFuzzTests(ITestOutputHelper output)
{
    private const int Cases = 10_000;

    private void Fuzz(string parser, byte[][] seeds, Action<byte[], string> parse, int cases, int seed)
    {
        var report = Fuzzer.Run(parser, seeds, parse, cases, seed, path: $"/fuzz/{parser}.bin");
        output.WriteLine(report.ToString());
        foreach (var (kind, n) in report.RejectionKinds.OrderByDescending(kv => kv.Value).Take(12)) output.WriteLine($"  {n,6}  {kind}");
        // Both outcomes, and several distinct rejections, show the mutations reach past the first check of the parser.
        Assert.True(report.Accepted > 0, $"{parser}: none of {cases} mutations parsed; the mutations never get past the header");
        Assert.True(report.Rejected > cases / 4, $"{parser}: only {report.Rejected} of {cases} mutations were rejected; are the mutations reaching the parser?");
        Assert.True(report.RejectionKinds.Count >= 3, $"{parser}: only {report.RejectionKinds.Count} distinct rejections");
    }

    [Fact]
    public void IdxImages() => Fuzz("idx-images", FuzzTargets.IdxImageSeeds(), FuzzTargets.IdxImages, Cases, 1);

    [Fact]
    public void IdxLabels() => Fuzz("idx-labels", FuzzTargets.IdxLabelSeeds(), FuzzTargets.IdxLabels, Cases, 2);

    [Fact]
    public void Cifar10() => Fuzz("cifar10", FuzzTargets.CifarSeeds(false), FuzzTargets.Cifar10, Cases, 3);

    [Fact]
    public void Cifar100() => Fuzz("cifar100", FuzzTargets.CifarSeeds(true), FuzzTargets.Cifar100, Cases, 4);

    [Fact]
    public void Safetensors() => Fuzz("safetensors", FuzzTargets.SafetensorsSeeds(), FuzzTargets.Safetensors, Cases, 5);

    [Fact]
    public void ModelJson() => Fuzz("model-json", FuzzTargets.ModelJsonSeeds(), FuzzTargets.ModelJson, Cases, 6);

    [Fact]
    public void TheFuzzerCatchesAParserThatTrustsALengthField()
    {
        // A deliberately naive parser: allocates whatever the first 4 bytes say. The harness must flag it.
        static void Naive(byte[] b, string p)
        {
            if (b.Length < 4) throw new InvalidFileException(p, "short");
            _ = new byte[BinaryPrimitives.ReadInt32LittleEndian(b) & 0x7FFFFFF];
        }
        var seed = new byte[] { 4, 0, 0, 0, 1, 2, 3, 4 };
        var e = Assert.ThrowsAny<Exception>(() => Fuzzer.Run("naive", [seed], Naive, 2000, 7));
        Assert.Contains("saved to", e.Message);
        Assert.Matches("allocated|unhandled", e.Message);
    }
}
