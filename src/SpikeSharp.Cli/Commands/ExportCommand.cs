using System.CommandLine;

namespace SpikeSharp.Cli.Commands;

/// <summary><c>spikesharp export</c>: writes a converted SNN for neuromorphic toolchains (CLI.md).</summary>
internal static class ExportCommand
{
    public static Command Create()
    {
        var checkpoint = CliOptions.Make<string>("--checkpoint", "checkpoint directory", required: true);
        var format = CliOptions.Make<string>("--format", "output format: nir", required: true);
        var outFile = CliOptions.Make<string>("--out", "file to write", required: true);
        var method = CliOptions.Make<string>("--method", "conversion method", "qcfs");
        var timesteps = CliOptions.Make<int>("--timesteps", "time steps T the SNN is meant to run", 4);
        var cmd = new Command("export", "Export a checkpoint's converted SNN.") { checkpoint, format, outFile, method, timesteps };
        cmd.SetAction(r => Program.Guard(() => throw new SpikeSharpException("export is not implemented yet")));
        return cmd;
    }
}
