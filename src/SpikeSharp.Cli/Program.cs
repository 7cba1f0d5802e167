using System.CommandLine;
using SpikeSharp.Cli.Commands;

namespace SpikeSharp.Cli;

/// <summary>Entry point of the <c>spikesharp</c> tool. Exit codes (CLI.md): 0 success, 1 the work failed,
/// 2 bad usage or bad input (a one-line message naming the file or flag, no stack trace).</summary>
public static class Program
{
    public const int Ok = 0, WorkFailed = 1, BadInput = 2;

    public static int Main(string[] args)
    {
        var root = new RootCommand("SpikeSharp: train ANNs with quantized activations, convert them to spiking networks that are " +
            "accurate after a few time steps, and report accuracy per step, spikes and energy.")
        {
            TrainCommand.Create(),
            EvaluateCommand.Create(),
            MergeCommand.Create(),
            DemoCommand.Create(),
            ReportCommand.Create(),
            BenchCommand.Create(),
            ImportCommand.Create(),
            ExportCommand.Create(),
        };
        var parse = root.Parse(args);
        if (parse.Errors.Count > 0)
        {
            foreach (var e in parse.Errors) Console.Error.WriteLine($"error: {e.Message}");
            Console.Error.WriteLine("hint: run 'spikesharp --help' or 'spikesharp <command> --help' for the flags and an example.");
            return BadInput;
        }
        return parse.Invoke();
    }

    /// <summary>Runs a command body, mapping user errors to exit code 2 and failures to 1 with one-line messages.
    /// Set SPIKESHARP_DEBUG=1 to see stack traces.</summary>
    public static int Guard(Func<int> body)
    {
        bool debug = Environment.GetEnvironmentVariable("SPIKESHARP_DEBUG") == "1";
        try { return body(); }
        catch (SpikeSharpException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            if (debug) Console.Error.WriteLine(e);
            return BadInput;
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("interrupted");
            return WorkFailed;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            if (debug) Console.Error.WriteLine(e);
            return BadInput;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"internal error ({e.GetType().Name}): {e.Message}");
            Console.Error.WriteLine(debug ? e.ToString() : "set SPIKESHARP_DEBUG=1 for the stack trace, and please report it");
            return WorkFailed;
        }
    }
}
