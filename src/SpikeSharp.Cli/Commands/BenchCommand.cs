using System.CommandLine;
using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using SpikeSharp.Bench;

namespace SpikeSharp.Cli.Commands;

/// <summary><c>spikesharp bench</c>: runs the benchmark suite and, with --compare-torch, the PyTorch baseline in the
/// same invocation, printing ratios (CLI.md schema).</summary>
internal static class BenchCommand
{
    public static Command Create()
    {
        var json = CliOptions.JsonOut();
        var compare = CliOptions.Make<bool>("--compare-torch", "also run ../shared/bench/torch_baseline.py (Debian python3-torch) and print ratios");
        var compareOrt = CliOptions.Make<bool>("--compare-ort", "also run ONNX Runtime on the ann_* networks (build it first: dotnet build -c Release bench/SpikeSharp.OrtBench)");
        var only = CliOptions.Make<string[]>("--only", $"run only these benchmarks: {string.Join(", ", BenchSuite.All.Select(e => e.Name))}");
        only.AllowMultipleArgumentsPerToken = true;
        var batch = CliOptions.Make<int>("--batch", "batch size", 128);
        var reps = CliOptions.Make<int>("--reps", "timed repetitions (median reported)", 5);
        var profile = CliOptions.Make<bool>("--profile", "also time each operation and shape in one extra repetition (per-layer GFLOP/s)");
        var torchScript = CliOptions.Make<string?>("--torch-script", "path of torch_baseline.py (default: found in a shared/bench folder above the current directory)");
        var cmd = new Command("bench", "Benchmark kernels, training steps and SNN inference; optionally side by side with PyTorch.\n\nExample:\n  " +
            "spikesharp bench --compare-torch --json bench.json")
        { json, compare, compareOrt, only, batch, reps, profile, torchScript };
        cmd.SetAction(r => Program.Guard(() =>
        {
            int b = r.GetValue(batch), n = r.GetValue(reps);
            if (b <= 1 || n <= 0) throw new SpikeSharpException("--batch must be > 1 and --reps > 0");
            var selected = r.GetValue(only) ?? [];
            var ctx = new BenchSuite.BenchContext(b, n, Warmup: 2, r.GetValue(profile));
            double peak = MachinePeak.Fp32Gflops();
            Console.Error.WriteLine($"measured fp32 peak: {peak:0} GFLOP/s on {Tensors.WorkerPool.Shared.Count} workers (FMA loop)");
            var rows = BenchSuite.Run(selected, ctx, msg => Console.Error.WriteLine(msg)).ToList();
            long peakMb = Process.GetCurrentProcess().PeakWorkingSet64 >> 20;
            Dictionary<string, JsonObject>? torch = null;
            string? torchNote = null;
            if (r.GetValue(compare)) (torch, torchNote) = RunTorch(r.GetValue(torchScript), ctx, selected);
            if (r.GetValue(compareOrt)) rows.AddRange(RunOrt(ctx, selected));
            Print(rows, torch, torchNote, peak);
            foreach (var row in rows.Where(row => row.Profile != null)) PrintProfile(row);
            Console.WriteLine($"peak working set: {peakMb} MiB; threads {Tensors.WorkerPool.Shared.Count}; fp32 peak {peak:0} GFLOP/s measured in this run; ms = median, min = fastest repetition; speedup = PyTorch's fastest / ours' fastest");
            var doc = new JsonObject
            {
                ["threads"] = Tensors.WorkerPool.Shared.Count,
                ["batch"] = b,
                ["peak_gflops"] = peak,
                ["peak_source"] = "measured in this run: a 512-bit FMA loop on every worker",
                ["peak_working_set_mb"] = peakMb,
                ["rows"] = new JsonArray(rows.Select(row => (JsonNode)RowJson(row, torch, peak)).ToArray()),
            };
            if (torchNote != null) doc["torch_note"] = torchNote;
            CliOptions.WriteJson(r.GetValue(json), doc);
            return Program.Ok;
        }));
        return cmd;
    }

    /// <summary>PyTorch's fastest repetition where the baseline reports it, else its median.</summary>
    private static double TorchSeconds(JsonObject t) => (t["seconds_min"] ?? t["seconds"])!.GetValue<double>();

    private static JsonObject RowJson(BenchRow row, Dictionary<string, JsonObject>? torch, double peak)
    {
        var o = new JsonObject { ["bench"] = row.Bench, ["seconds"] = row.Seconds, ["seconds_min"] = row.SecondsMin };
        if (row.Gflops is { } g) { o["gflops"] = g; o["percent_of_peak"] = row.PercentOf(peak); }
        if (row.ImagesPerSecond is { } ips) o["images_per_s"] = ips;
        if (row.Note is { } note) o["note"] = note;
        if (row.Profile is { } prof)
            o["profile"] = new JsonArray(prof.Select(e => (JsonNode)new JsonObject
            {
                ["op"] = e.Op, ["shape"] = e.Shape, ["calls"] = e.Calls, ["seconds"] = e.Seconds,
                ["gflops"] = e.Flops > 0 ? e.Flops / e.Seconds / 1e9 : null,
            }).ToArray());
        if (torch != null && torch.TryGetValue(row.Bench, out var t))
        {
            o["torch_seconds"] = t["seconds"]!.GetValue<double>();
            o["torch_seconds_min"] = t["seconds_min"]?.GetValue<double>();
            o["speedup_vs_torch"] = TorchSeconds(t) / (row.SecondsMin ?? row.Seconds);
        }
        return o;
    }

    private static void Print(List<BenchRow> rows, Dictionary<string, JsonObject>? torch, string? torchNote, double peak)
    {
        Console.WriteLine($"{"bench",-28} {"ms",9} {"min ms",9} {"GFLOP/s",9} {"% peak",7} {"images/s",9} {"torch min",9} {"speedup",8}");
        foreach (var row in rows)
        {
            string F(double? v, string fmt) => v is { } d ? d.ToString(fmt, CultureInfo.InvariantCulture) : "-";
            double? tsec = torch != null && torch.TryGetValue(row.Bench, out var t) ? TorchSeconds(t) : null;
            Console.WriteLine($"{row.Bench,-28} {row.Seconds * 1000,9:0.0} {F(row.SecondsMin * 1000, "0.0"),9} {F(row.Gflops, "0.0"),9} {F(row.PercentOf(peak), "0"),7} " +
                $"{F(row.ImagesPerSecond, "0.0"),9} {F(tsec * 1000, "0.0"),9} {F(tsec / (row.SecondsMin ?? row.Seconds), "0.00'x'"),8}");
        }
        foreach (var row in rows.Where(r => r.Note != null)) Console.WriteLine($"{row.Bench}: {row.Note}");
        foreach (var ort in rows.Where(r => r.Bench.StartsWith("ort_", StringComparison.Ordinal)))
            if (rows.FirstOrDefault(r => r.Bench == ort.Bench[4..]) is { } ours)
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"{ours.Bench} vs ONNX Runtime: {(ort.SecondsMin ?? ort.Seconds) / (ours.SecondsMin ?? ours.Seconds):0.00}x (fastest repetitions), {ort.Seconds / ours.Seconds:0.00}x (medians)"));
        if (torchNote != null) Console.WriteLine($"torch: {torchNote}");
    }

    /// <summary>Per-operation table of one profiled repetition: where the time goes and each layer's efficiency.</summary>
    private static void PrintProfile(BenchRow row)
    {
        double total = row.Profile!.Sum(e => e.Seconds);
        Console.WriteLine($"\nprofile of {row.Bench} (one repetition, {total * 1000:0.0} ms):");
        int opWidth = row.Profile!.Max(e => e.Op.Length);
        Console.WriteLine($"  {"op".PadRight(opWidth)} {"shape",-34} {"calls",5} {"ms",8} {"%",5} {"GFLOP/s",8}");
        foreach (var e in row.Profile!)
            Console.WriteLine($"  {e.Op.PadRight(opWidth)} {e.Shape,-34} {e.Calls,5} {e.Seconds * 1000,8:0.00} {e.Seconds / total * 100,5:0.0} " +
                $"{(e.Flops > 0 ? (e.Flops / e.Seconds / 1e9).ToString("0", CultureInfo.InvariantCulture) : "-"),8}");
    }

    /// <summary>ONNX Runtime on the networks of the ann_* rows, in its own process (bench/SpikeSharp.OrtBench), same
    /// batch and thread count; its rows are named ort_ann_* and the note gives ours ÷ theirs by fastest repetition.</summary>
    private static IEnumerable<BenchRow> RunOrt(BenchSuite.BenchContext ctx, string[] selected)
    {
        var models = new[] { "resnet20", "vgg16" }.Where(m => selected.Length == 0 || selected.Contains($"ann_{m}") || selected.Contains($"ort_ann_{m}")).ToList();
        if (models.Count == 0) yield break;
        string? dll = FindUp(Path.Combine("bench", "SpikeSharp.OrtBench", "bin", "Release", "net10.0", "SpikeSharp.OrtBench.dll"));
        if (dll == null)
        {
            Console.Error.WriteLine("ONNX Runtime comparison skipped: build it first with 'dotnet build -c Release bench/SpikeSharp.OrtBench' (in the repository)");
            yield break;
        }
        string outFile = Path.Combine(Path.GetTempPath(), $"ort_bench_{Environment.ProcessId}.json");
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardError = true };
        foreach (var a in new[] { dll, "--batch", ctx.Batch.ToString(CultureInfo.InvariantCulture), "--reps", ctx.Reps.ToString(CultureInfo.InvariantCulture),
                     "--threads", Tensors.WorkerPool.Shared.Count.ToString(CultureInfo.InvariantCulture), "--models", string.Join(",", models), "--json", outFile })
            psi.ArgumentList.Add(a);
        Console.Error.WriteLine($"running ONNX Runtime: {dll}");
        using (var p = Process.Start(psi)!)
        {
            string stderr = p.StandardError.ReadToEnd();
            p.WaitForExit();
            if (p.ExitCode != 0)
            {
                Console.Error.WriteLine($"ONNX Runtime comparison failed (exit {p.ExitCode}): {stderr.Trim().Split('\n').LastOrDefault()}");
                yield break;
            }
        }
        var doc = JsonNode.Parse(File.ReadAllText(outFile))!.AsObject();
        foreach (var row in doc["rows"]!.AsArray().Select(n => n!.AsObject()))
            yield return new BenchRow(row["bench"]!.GetValue<string>(), row["seconds"]!.GetValue<double>(), ImagesPerSecond: row["images_per_s"]!.GetValue<double>(),
                Note: $"ONNX Runtime {doc["onnxruntime"]}, {doc["threads"]} intra-op threads, our ONNX export of the same network")
            { SecondsMin = row["seconds_min"]!.GetValue<double>() };
    }

    /// <summary>Runs the PyTorch baseline with OPENBLAS_CORETYPE unset (it halves OpenBLAS speed here).</summary>
    private static (Dictionary<string, JsonObject>?, string) RunTorch(string? script, BenchSuite.BenchContext ctx, string[] selected)
    {
        script ??= FindUp(Path.Combine("shared", "bench", "torch_baseline.py"));
        if (script == null || !File.Exists(script))
            return (null, "baseline script not found (pass --torch-script PATH)");
        string outFile = Path.Combine(Path.GetTempPath(), $"torch_baseline_{Environment.ProcessId}.json");
        var psi = new ProcessStartInfo("/usr/bin/python3") { RedirectStandardOutput = true, RedirectStandardError = true };
        psi.ArgumentList.Add(script);
        foreach (var a in new[] { "--threads", Tensors.WorkerPool.Shared.Count.ToString(CultureInfo.InvariantCulture), "--batch",
                     ctx.Batch.ToString(CultureInfo.InvariantCulture), "--reps", ctx.Reps.ToString(CultureInfo.InvariantCulture), "--json", outFile })
            psi.ArgumentList.Add(a);
        // The baseline always measures the conv row; it needs at least one model, the cheaper one when none is asked for.
        var models = new[] { "vgg16", "resnet20" }.Where(m => selected.Length == 0 || selected.Any(s => s.Contains(m))).DefaultIfEmpty("resnet20");
        psi.ArgumentList.Add("--models");
        foreach (var m in models) psi.ArgumentList.Add(m);
        psi.Environment.Remove("OPENBLAS_CORETYPE");
        Console.Error.WriteLine($"running PyTorch baseline: {script}");
        try
        {
            using var p = Process.Start(psi)!;
            string stdout = p.StandardOutput.ReadToEnd(), stderr = p.StandardError.ReadToEnd();
            p.WaitForExit();
            if (p.ExitCode != 0) return (null, $"baseline failed (exit {p.ExitCode}): {stderr.Trim().Split('\n').LastOrDefault()}");
            var doc = JsonNode.Parse(File.ReadAllText(outFile))!.AsObject();
            var rows = doc["rows"]!.AsArray().Select(n => n!.AsObject()).ToDictionary(o => o["bench"]!.GetValue<string>());
            return (rows, $"torch {doc["torch"]} with {doc["threads"]} threads, same batch, same machine, same run");
        }
        catch (Exception e) when (e is System.ComponentModel.Win32Exception or IOException)
        {
            return (null, $"could not run python3: {e.Message} (apt-get install python3-torch)");
        }
        finally { try { File.Delete(outFile); } catch { /* best effort */ } }
    }

    private static string? FindUp(string relative)
    {
        for (var dir = new DirectoryInfo(Directory.GetCurrentDirectory()); dir != null; dir = dir.Parent)
        {
            string candidate = Path.Combine(dir.FullName, relative);
            if (File.Exists(candidate)) return candidate;
        }
        return null;
    }
}
