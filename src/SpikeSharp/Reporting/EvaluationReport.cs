using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using SpikeSharp.Snn;

namespace SpikeSharp.Reporting;

/// <summary>One method's SNN results in a report (CLI.md JSON "snn" entries). Keys of the per-t maps are counted steps t.</summary>
public sealed record SnnReport(string Method, string Description, int ExtraSteps, int CalibrationImages, string CalibrationData,
    SortedDictionary<int, double> AccuracyByT, IReadOnlyList<(string Layer, double Rate)> FiringRateByLayer,
    SortedDictionary<int, double> FiringRateByT, SortedDictionary<int, double> SopsByT, SortedDictionary<int, double> EnergyPjByT,
    IReadOnlyList<LayerActivity> Layers, double Seconds, int Images = 0, long? AnnAgreement = null, string? CalibrationSummary = null)
{
    /// <summary>binary, signed or graded spikes (<see cref="Conversion.Methods.ConversionMethod.SpikeKind"/>).</summary>
    public string SpikeKind { get; init; } = "binary";

    /// <summary>Steps from the input's onset to the output at each counted t (extra steps included; D·t for parallel).</summary>
    public SortedDictionary<int, int> LatencyByT { get; init; } = new();

    /// <summary>Whether each t was simulated as its own window (parallel neurons) instead of read from one run.</summary>
    public bool WindowPerT { get; init; }

    /// <summary>Where the simulation's wall time went, summed over the method's runs.</summary>
    public SimulationTime Time { get; init; } = SimulationTime.Zero;

    /// <summary>Test images simulated per second of simulation wall time (every window of a windowed method counts).</summary>
    public double? ImagesPerSecond => Time.WallSeconds > 0 ? Images * (WindowPerT ? LatencyByT.Count : 1) / Time.WallSeconds : null;

    /// <summary>The runs the report was computed from, by horizon (what an evaluation shard writes for the merge).</summary>
    public IReadOnlyDictionary<int, SimulationResult> Runs { get; init; } = new SortedDictionary<int, SimulationResult>();

    /// <summary>The report of <paramref name="method"/> from its runs: one per window (each read at its last step t),
    /// or one of the longest horizon read at every t. <paramref name="depth"/> is the number of spiking layers.</summary>
    public static SnnReport From(Conversion.Methods.ConversionMethod method, int calibrationImages, string calibrationData,
        SortedDictionary<int, SimulationResult> runs, IEnumerable<int> timesteps, EnergyModel energy, double seconds, int depth) =>
        From(MethodFacts.Of(method), calibrationImages, calibrationData, runs, timesteps, energy, seconds, t => method.Latency(t, depth));

    /// <summary>The report from a method's <paramref name="facts"/> and its runs; <paramref name="latency"/> gives the
    /// steps from the input to the output at each t.</summary>
    public static SnnReport From(MethodFacts facts, int calibrationImages, string calibrationData,
        SortedDictionary<int, SimulationResult> runs, IEnumerable<int> timesteps, EnergyModel energy, double seconds, Func<int, int> latency)
    {
        var longest = runs.Values.Last();
        SimulationResult At(int t) => runs.TryGetValue(t, out var w) ? w : longest;
        var ts = timesteps.Where(t => t <= longest.Steps).ToList();
        return new SnnReport(facts.Name, facts.Description, longest.ExtraSteps, calibrationImages, calibrationData,
            new(ts.ToDictionary(t => t, t => At(t).Accuracy(t))),
            longest.Layers.Select(l => (l.Layer, l.FiringRate(longest.Images, longest.Steps))).ToList(),
            new(ts.ToDictionary(t => t, t => At(t).FiringRate(t))),
            new(ts.ToDictionary(t => t, t => At(t).Sops(t) + At(t).ExtraSopsPerImage)),
            new(ts.ToDictionary(t => t, t => At(t).EnergyPj(energy, t))),
            longest.Layers, seconds, longest.Images, longest.AnnAgreement, facts.CalibrationSummary)
        {
            SpikeKind = facts.SpikeKind,
            WindowPerT = facts.WindowPerT,
            Time = runs.Values.Aggregate(SimulationTime.Zero, (sum, r) => sum + r.Time),
            LatencyByT = new(ts.ToDictionary(t => t, latency)),
            Runs = runs,
        };
    }
}

/// <summary>What a report states about a conversion method itself, beside what its runs measured.</summary>
public sealed record MethodFacts(string Name, string Description, string SpikeKind, bool WindowPerT, string? CalibrationSummary)
{
    public static MethodFacts Of(Conversion.Methods.ConversionMethod m) => new(m.Name, m.Description, m.SpikeKind, m.WindowPerT, m.CalibrationSummary);
}

/// <summary>Which slice of the test set an evaluation covered (<c>evaluate --shard K/N</c>), and of which checkpoint.</summary>
/// <param name="FirstImage">index of the slice's first image in the whole test set</param>
/// <param name="TotalImages">images in the whole test set</param>
/// <param name="CheckpointSha256"><see cref="Interop.CheckpointFiles.Fingerprint"/> of the evaluated checkpoint</param>
public sealed record EvaluationShard(int Index, int Count, int FirstImage, int TotalImages, string CheckpointSha256);

/// <summary>
/// Results of evaluating one checkpoint: ANN accuracy and, per method, SNN accuracy for every requested t, firing
/// rates, synaptic operations and energy. Serializes to the stable JSON of CLI.md and to a Markdown table.
/// </summary>
public sealed record EvaluationReport(string Model, string Dataset, int TestImages, double AnnAccuracy, long MacsPerImage,
    EnergyModel Energy, IReadOnlyList<SnnReport> Snn, string Checkpoint, Data.LoaderStatistics? TestData = null)
{
    public double AnnEnergyPj => Energy.Ann(MacsPerImage);

    /// <summary>Test images the ANN classifies correctly.</summary>
    public long AnnCorrect { get; init; }

    /// <summary>Set when the report covers one slice of the test set: the JSON then carries each method's raw runs,
    /// which <see cref="ShardMerge"/> combines.</summary>
    public EvaluationShard? Shard { get; init; }

    /// <summary>How many shard reports this one was merged from (null for a single run).</summary>
    public int? MergedShards { get; init; }

    public JsonObject ToJson()
    {
        static JsonObject ByT(SortedDictionary<int, double> d)
        {
            var o = new JsonObject();
            foreach (var (t, v) in d) o[t.ToString(CultureInfo.InvariantCulture)] = v;
            return o;
        }
        var snn = new JsonArray();
        foreach (var s in Snn)
        {
            var entry = new JsonObject
            {
                ["method"] = s.Method,
                ["description"] = s.Description,
                ["extra_steps"] = s.ExtraSteps,
                ["spike_kind"] = s.SpikeKind,
                ["window_per_t"] = s.WindowPerT,
                ["latency_steps_by_t"] = ByT(new SortedDictionary<int, double>(s.LatencyByT.ToDictionary(p => p.Key, p => (double)p.Value))),
                ["calibration_images"] = s.CalibrationImages,
                ["calibration_data"] = s.CalibrationData,
                ["calibration_summary"] = s.CalibrationSummary,
                ["accuracy_by_t"] = ByT(s.AccuracyByT),
                ["firing_rate_by_t"] = ByT(s.FiringRateByT),
                ["firing_rate_by_layer"] = new JsonArray(s.FiringRateByLayer.Select(l => (JsonNode)new JsonObject { ["layer"] = l.Layer, ["rate"] = l.Rate }).ToArray()),
                ["ann_error_by_layer"] = new JsonArray(s.Layers.Where(l => l.AnnError != null)
                    .Select(l => (JsonNode)new JsonObject { ["layer"] = l.Layer, ["mean_abs_error"] = l.AnnError, ["mismatched_values"] = l.AnnMismatches }).ToArray()),
                ["ann_prediction_agreement"] = s.AnnAgreement is { } agree && s.Images > 0 ? (double)agree / s.Images : null,
                ["spikes_by_layer_and_t"] = new JsonArray(s.Layers.Select(l => (JsonNode)new JsonObject
                {
                    ["layer"] = l.Layer, ["threshold"] = l.Threshold, ["neurons_per_image"] = l.NeuronsPerImage, ["divergent_neurons"] = l.DivergentNeurons,
                    ["spikes"] = new JsonArray(l.SpikesByStep.Select(c => (JsonNode)c).ToArray()),
                }).ToArray()),
                ["sops_per_image"] = ByT(s.SopsByT),
                ["energy_pj_per_image"] = ByT(s.EnergyPjByT),
                ["seconds"] = s.Seconds,
                ["images_per_second"] = s.ImagesPerSecond,
                ["time_breakdown"] = new JsonObject
                {
                    ["simulation_wall_seconds"] = s.Time.WallSeconds, ["simulate_seconds"] = s.Time.SimulateSeconds,
                    ["ann_forward_seconds"] = s.Time.AnnForwardSeconds, ["ann_compare_seconds"] = s.Time.AnnCompareSeconds,
                    ["simulate_fraction"] = s.Time.SimulateFraction,
                },
            };
            // A shard's raw counts, which the merge adds up.
            if (Shard != null) entry["runs"] = new JsonArray(s.Runs.Values.Select(r => (JsonNode)ShardMerge.RunToJson(r)).ToArray());
            snn.Add(entry);
        }
        var root = new JsonObject
        {
            ["model"] = Model,
            ["dataset"] = Dataset,
            ["checkpoint"] = Checkpoint,
            ["test_images"] = TestImages,
            ["ann_accuracy"] = AnnAccuracy,
            ["ann_correct"] = AnnCorrect,
            ["macs_per_image"] = MacsPerImage,
            ["ann_energy_pj_per_image"] = AnnEnergyPj,
            ["energy_model"] = Energy.Name,
            ["energy_formula"] = Energy.Formula,
            ["snn"] = snn,
            ["test_data_loading"] = TestData is { } d ? new JsonObject
            {
                ["images"] = d.Images, ["read_seconds"] = d.ReadSeconds, ["images_per_second"] = d.ImagesPerSecond,
                ["threads"] = d.Workers, ["compute_waited_seconds"] = d.WaitSeconds,
            } : null,
        };
        if (Shard is { } sh)
            root["shard"] = new JsonObject
            {
                ["index"] = sh.Index, ["count"] = sh.Count, ["first_image"] = sh.FirstImage, ["total_images"] = sh.TotalImages,
                ["checkpoint_sha256"] = sh.CheckpointSha256,
            };
        if (MergedShards is { } merged) root["merged_shards"] = merged;
        return root;
    }

    /// <summary>The table printed by evaluate and demo: one row per method and t.</summary>
    public string ToTable()
    {
        var sb = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
        if (Shard is { } sh)
            sb.AppendLine($"shard {sh.Index}/{sh.Count}: test images {sh.FirstImage}..{sh.FirstImage + TestImages - 1} of {sh.TotalImages} (merge the shards' JSON with `spikesharp merge`)");
        if (MergedShards is { } m) sb.AppendLine($"merged from {m} shards");
        sb.AppendLine(string.Create(inv, $"{Model} on {Dataset}: {TestImages} test images; ANN accuracy {AnnAccuracy:P2}; {MacsPerImage / 1e6:0.##} M MACs = {AnnEnergyPj / 1e6:0.###} µJ per image"));
        sb.AppendLine($"{"method",-11} {"extra",5} {"t",4} {"latency",7} {"accuracy",9} {"vs ANN",7} {"rate",7} {"SOPs/img",10} {"energy",9} {"vs ANN",7}");
        foreach (var s in Snn)
            foreach (var (t, acc) in s.AccuracyByT)
                sb.AppendLine(string.Create(inv,
                    $"{s.Method,-11} {s.ExtraSteps,5} {t,4} {(s.LatencyByT.TryGetValue(t, out int lat) ? lat : s.ExtraSteps + t),7} {acc,9:P2} {(acc - AnnAccuracy) * 100,7:+0.00;-0.00} {s.FiringRateByT[t],7:0.0000} {s.SopsByT[t] / 1e6,9:0.00}M {s.EnergyPjByT[t] / 1e6,7:0.000}µJ {s.EnergyPjByT[t] / AnnEnergyPj,6:0.00}x"));
        sb.AppendLine($"energy: {Energy.Formula}");
        if (TestData is { Images: > 0 } d)
            sb.AppendLine(string.Create(inv, $"data: {d.Images} test-image reads (the ANN and every method pass) at {d.ImagesPerSecond:0} images/s on {d.Workers} thread(s); compute waited {d.WaitSeconds:0.00} s for data"));
        sb.AppendLine("'extra' = steps simulated before the counted steps t (pre-simulation/calibration); 'latency' = steps from the input to the output at t (extra + t, or D·t for parallel neurons, which wait for each layer's whole window).");
        foreach (var s in Snn.Where(s => s.SpikeKind != "binary" || s.WindowPerT))
            sb.AppendLine($"{s.Method}: {s.SpikeKind} spikes{(s.WindowPerT ? "; each t simulated as its own window" : "")}; every unit spike counts as one spike and one SOP per fan-out");
        return sb.ToString();
    }
}
