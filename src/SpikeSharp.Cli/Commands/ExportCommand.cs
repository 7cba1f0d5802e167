using System.CommandLine;
using SpikeSharp.Conversion.Methods;
using SpikeSharp.Data;
using SpikeSharp.Interop;
using SpikeSharp.Interop.Nir;
using SpikeSharp.Interop.Onnx;

namespace SpikeSharp.Cli.Commands;

/// <summary><c>spikesharp export</c>: writes a converted SNN for neuromorphic toolchains (NIR), or the ANN as ONNX (CLI.md).</summary>
internal static class ExportCommand
{
    public static readonly string[] Formats = ["nir", "onnx"];

    public static Command Create()
    {
        var checkpoint = CliOptions.Make<string>("--checkpoint", "checkpoint directory", required: true);
        var format = CliOptions.Make<string>("--format", "output format: nir (the converted SNN) or onnx (the ANN, for any ONNX runtime; spikesharp import reads it back)", required: true);
        var foldBn = CliOptions.Make<bool>("--fold-bn", "onnx: fold each BatchNormalization into the convolution before it");
        var outFile = CliOptions.Make<string>("--out", "file to write", required: true);
        var method = CliOptions.Make<string>("--method", $"conversion method: {string.Join(", ", ConversionMethods.Names)}", "qcfs");
        var timesteps = CliOptions.Make<int>("--timesteps", "time steps T the SNN is meant to run", 4);
        var presim = CliOptions.Make<int>("--presim", "τ for srp, ρ for cos (kept as metadata)", 4);
        var data = CliOptions.Make<string?>("--data", "dataset directory with the training files; required for dual-phase (calibration) and plain-ReLU checkpoints (threshold balancing)");
        var cmd = new Command("export", "Export a checkpoint's converted SNN (NIR) or its ANN (ONNX).\n\nExamples:\n  " +
            "spikesharp export --checkpoint runs/demo/best --format nir --out demo.nir --method qcfs --timesteps 8\n  " +
            "spikesharp export --checkpoint runs/demo/best --format onnx --out demo.onnx")
        { checkpoint, format, outFile, method, timesteps, presim, data, foldBn };
        var folder = new CliOptions.ImageFolderFlags();
        folder.AddTo(cmd);
        cmd.SetAction(r => Program.Guard(() =>
        {
            string fmt = r.GetValue(format)!;
            if (!Formats.Contains(fmt)) throw new SpikeSharpException($"unknown --format '{fmt}'; expected one of {string.Join(", ", Formats)}");
            string dir = r.GetValue(checkpoint)!;
            if (fmt == "onnx")
            {
                OnnxExporter.Export(dir, r.GetValue(outFile)!, r.GetValue(foldBn));
                Console.WriteLine($"wrote {r.GetValue(outFile)}: ONNX opset {OnnxExporter.Opset}, the ANN of {dir}{(r.GetValue(foldBn) ? " (BN folded into the convolutions)" : "")}; input 'input' [N,C,H,W], output logits");
                return Program.Ok;
            }
            int steps = r.GetValue(timesteps);
            if (steps <= 0) throw new SpikeSharpException($"--timesteps must be a positive integer, got {steps}");
            var m = ConversionMethods.Create(r.GetValue(method)!, new MethodOptions(r.GetValue(presim), CalibrationSteps: steps)); // dual-phase calibrates for the exported T
            ImageSet? train = null;
            if (r.GetValue(data) is { } dataDir)
            {
                var cp = Checkpoint.Load(dir);
                train = Datasets.Load(cp.Data.Dataset, dataDir, train: true, folder.For(r, cp.Spec.InChannels, cp.Spec.Height, cp.Spec.Width));
                CliOptions.ReportSkipped(train);
            }
            var result = NirExporter.Export(dir, m, steps, r.GetValue(outFile)!, train, msg => Console.Error.WriteLine(msg));
            Console.WriteLine($"wrote {result.Path}: NIR {NirGraph.Version} graph, {result.Nodes} nodes, {result.Edges} edges (method {m.Name}, T = {steps})");
            Console.WriteLine("lost in export (kept as metadata where noted):");
            foreach (var line in result.Lost) Console.WriteLine($"  - {line}");
            return Program.Ok;
        }));
        return cmd;
    }
}
