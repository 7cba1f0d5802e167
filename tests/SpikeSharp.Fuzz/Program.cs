// Fuzz targets for the file readers (ONNX: a cnn-small and a ResNet-20 graph; .pth, safetensors, IDX, CIFAR), for SharpFuzz under AFL++ (tools/fuzz.sh).
// A reader may accept an input or reject it with a SpikeSharpException; any other exception is a crash, and a run past
// AFL's time limit a hang. `replay DIR…` runs files without AFL (to reproduce a crash or count the corpus's outcomes).
using SharpFuzz;
using SpikeSharp;
using SpikeSharp.Data;
using SpikeSharp.Interop;
using SpikeSharp.Interop.Onnx;
using SpikeSharp.Interop.Pth;
using SpikeSharp.Models;
using SpikeSharp.Nn;

static class Program
{
    /// <summary>The readers by name; each parses the bytes as a file of that kind.</summary>
    private static readonly Dictionary<string, Action<byte[]>> Targets = new()
    {
        // The importer checks the graph against an architecture: one target per seed architecture.
        ["onnx"] = b => ImportOnnx(b, new ModelSpec("cnn-small", 1, 8, 8, 10, 0.25f)),
        ["onnx-resnet"] = b => ImportOnnx(b, new ModelSpec("resnet20", 3, 32, 32, 10, 0.125f)),
        ["pth"] = b => PthReader.Read("fuzz.pth", new MemoryStream(b)),
        ["safetensors"] = b => Safetensors.Read(new MemoryStream(b), "fuzz.safetensors"),
        ["idx"] = b =>
        {
            // One file kind by its magic, as a dataset folder would be read: images (0x0803) or labels (0x0801).
            if (b.Length >= 4 && b[2] == 8 && b[3] == 1) IdxReader.ReadLabels(new MemoryStream(b), "fuzz-labels.idx", 10);
            else IdxReader.ReadImages(new MemoryStream(b), "fuzz-images.idx");
        },
        // CIFAR-100 records (coarse + fine label bytes) when the size is a whole number of them, else CIFAR-10 (1 label byte).
        ["cifar"] = b => CifarReader.Read(new MemoryStream(b), "fuzz.bin", cifar100: b.Length > 0 && b.Length % 3074 == 0, "cifar"),
    };

    private static void ImportOnnx(byte[] bytes, ModelSpec spec)
    {
        var source = OnnxImporter.Read(bytes, "fuzz.onnx", spec);
        var classes = source.Tensors.LastOrDefault(kv => kv.Value.Rank == 2).Value?.Shape[0] ?? 10;
        ModelImport.Build(spec with { Classes = classes }, source, null);
    }

    public static int Main(string[] args)
    {
        if (args.Length >= 1 && Targets.TryGetValue(args[0], out var target))
        {
            if (args.Length >= 2 && args[1] == "replay") return Replay(target, args.Skip(2));
            Fuzzer.Run(stream =>
            {
                using var copy = new MemoryStream();
                stream.CopyTo(copy);
                try { target(copy.ToArray()); }
                catch (SpikeSharpException) { } // a clean rejection
            });
            return 0;
        }
        Console.Error.WriteLine($"usage: SpikeSharp.Fuzz {{{string.Join("|", Targets.Keys)}}} [replay FILE_OR_DIR…]");
        return 2;
    }

    /// <summary>Parses every file given (directories recursively); prints the outcome counts; exit 1 on a crash.</summary>
    private static unsafe int Replay(Action<byte[]> target, IEnumerable<string> paths)
    {
        // Instrumented code records edges in AFL's shared bitmap; without AFL it needs a bitmap of its own.
        SharpFuzz.Common.Trace.SharedMem = (byte*)System.Runtime.InteropServices.NativeMemory.AllocZeroed(1 << 16);
        int accepted = 0, rejected = 0, crashed = 0;
        foreach (var file in paths.SelectMany(p => Directory.Exists(p) ? Directory.EnumerateFiles(p, "*", SearchOption.AllDirectories) : [p]))
        {
            try { target(File.ReadAllBytes(file)); accepted++; }
            catch (SpikeSharpException) { rejected++; }
            catch (Exception e) { crashed++; Console.Error.WriteLine($"{file}: {e}"); }
        }
        Console.WriteLine($"{accepted} accepted, {rejected} rejected, {crashed} crashed");
        return crashed == 0 ? 0 : 1;
    }
}
