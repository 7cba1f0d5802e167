using System.CommandLine;
using System.Text.Json.Nodes;
using SpikeSharp.Data;
using SpikeSharp.Interop;
using SpikeSharp.Models;

namespace SpikeSharp.Cli.Commands;

/// <summary><c>spikesharp import</c>: turns an ONNX, PyTorch <c>.pth</c> or safetensors model into a checkpoint
/// directory that <c>evaluate</c> runs with any method (CLI.md).</summary>
internal static class ImportCommand
{
    public static Command Create()
    {
        var from = CliOptions.Make<string>("--from", "model file: .onnx, .pth/.pt (torch.save(model.state_dict())) or .safetensors", required: true);
        var arch = CliOptions.Make<string?>("--arch", $"built-in architecture the weights belong to: {string.Join(", ", ModelSpec.Names)} (an ONNX file needs none: its graph is imported)");
        var graphFile = CliOptions.Make<string?>("--graph", "graph JSON of the network a .pth/.safetensors state dict belongs to (keys = node names + .weight, …)");
        var inputShape = CliOptions.Make<string>("--input-shape", "model input CxHxW", "3x32x32");
        var classes = CliOptions.Make<int?>("--classes", "output classes (default: the size of the last layer in the file)");
        var width = CliOptions.Make<float>("--width", "channel width multiplier of the architecture", 1f);
        var dataset = CliOptions.Make<string>("--dataset", $"dataset the model is evaluated on: {string.Join(", ", Datasets.Names)}", "cifar10");
        var mean = CliOptions.Make<string?>("--mean", "per-channel input mean M[,M,M] (default: the dataset's)");
        var std = CliOptions.Make<string?>("--std", "per-channel input std S[,S,S] (default: the dataset's)");
        var levels = CliOptions.Make<int?>("--levels", "QCFS levels L (required for .pth/.safetensors models with thresholds; ONNX records it)");
        var outDir = CliOptions.Make<string>("--out", "checkpoint directory to write (model.safetensors + model.json)", required: true);
        var cmd = new Command("import", "Import a trained model into a checkpoint directory.\n\nExample:\n  " +
            "spikesharp import --from resnet20_qcfs.pth --arch resnet20 --levels 4 --out runs/imported\n  " +
            "spikesharp import --from my_net.onnx --input-shape 1x28x28 --dataset fashion-mnist --out runs/my-net")
        { from, arch, graphFile, inputShape, classes, width, dataset, mean, std, levels, outDir };
        cmd.SetAction(r => Program.Guard(() =>
        {
            var (c, h, w) = CliOptions.ParseShape(r.GetValue(inputShape)!, "--input-shape");
            string path = r.GetValue(from)!;
            if (r.GetValue(arch) != null && r.GetValue(graphFile) != null) throw new SpikeSharpException("give --arch or --graph, not both");
            ModelSpec spec;
            ImportedTensors source;
            if (r.GetValue(graphFile) is { } gf)
            {
                var graph = Graphs.Graph.Load(gf);
                (c, h, w) = (graph.InputShape[0], graph.InputShape[1], graph.InputShape[2]); // the graph says its input
                spec = ModelSpec.For(graph);
                source = ModelImport.Read(path, spec);
            }
            else if (r.GetValue(arch) is { } name)
            {
                spec = new ModelSpec(name, c, h, w, 10, r.GetValue(width));
                spec.Validate();
                source = ModelImport.Read(path, spec);
            }
            else (spec, source) = ModelImport.ReadGraph(path, c, h, w);
            // Before the strict load, so a failing import still says what the reader assumed (e.g. which wrapped key it used).
            foreach (var note in source.Notes ?? []) Console.WriteLine($"note: {note}");
            if (spec.Graph == null) spec = spec with { Classes = r.GetValue(classes) ?? ClassesOf(source, path) };
            var (model, fullSpec) = ModelImport.Build(spec, source, r.GetValue(levels));
            string ds = Datasets.Canonical(r.GetValue(dataset)!);
            var norm = Datasets.DefaultNormalization(ds);
            var data = new DataInfo(ds, ParseFloats(r.GetValue(mean), "--mean", c) ?? norm.Mean, ParseFloats(r.GetValue(std), "--std", c) ?? norm.Std);
            var extra = new JsonObject { ["imported_from"] = Path.GetFullPath(path), ["imported_format"] = source.Format };
            new Checkpoint(fullSpec, data, model, extra).Save(r.GetValue(outDir)!);
            var act = fullSpec.ActivationOrDefault;
            Console.WriteLine($"imported {source.Format} {path} as {fullSpec.Name} ({c}x{h}x{w}, {fullSpec.Classes} classes, " +
                $"activation {act.Kind}{(act.Kind == "qcfs" ? $" L={act.Levels}" : "")}) into {r.GetValue(outDir)}");
            if (act.Kind == "relu")
                Console.WriteLine("note: plain ReLU model; SNN conversion uses threshold balancing on training data and needs many more time steps than QCFS");
            return Program.Ok;
        }));
        return cmd;
    }

    /// <summary>The classifier's output count: the first dimension of the last 2-D weight in the file.</summary>
    private static int ClassesOf(ImportedTensors source, string path) =>
        source.Tensors.Values.LastOrDefault(t => t.Rank == 2)?.Shape[0]
            ?? throw new InvalidFileException(path, "has no 2-D (linear) weight to read the class count from; give --classes");

    private static float[]? ParseFloats(string? text, string flag, int channels)
    {
        if (text is null) return null;
        var items = text.Split(',', StringSplitOptions.TrimEntries);
        var values = new float[items.Length];
        for (int i = 0; i < items.Length; i++)
            if (!float.TryParse(items[i], System.Globalization.NumberStyles.Float, System.Globalization.CultureInfo.InvariantCulture, out values[i]))
                throw new SpikeSharpException($"{flag} '{text}': '{items[i]}' is not a number");
        if (values.Length != 1 && values.Length != channels)
            throw new SpikeSharpException($"{flag} '{text}' has {values.Length} values; expected 1 or {channels}");
        return values;
    }
}
