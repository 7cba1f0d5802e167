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

    /// <summary>The report of <paramref name="method"/> from its runs: one per window (each read at its last step t),
    /// or one of the longest horizon read at every t. <paramref name="depth"/> is the number of spiking layers.</summary>
    public static SnnReport From(Conversion.Methods.ConversionMethod method, int calibrationImages, string calibrationData,
        SortedDictionary<int, SimulationResult> runs, IEnumerable<int> timesteps, EnergyModel energy, double seconds, int depth)
    {
        var longest = runs.Values.Last();
        SimulationResult At(int t) => runs.TryGetValue(t, out var w) ? w : longest;
        var ts = timesteps.Where(t => t <= longest.Steps).ToList();
        return new SnnReport(method.Name, method.Description, longest.ExtraSteps, calibrationImages, calibrationData,
            new(ts.ToDictionary(t => t, t => At(t).Accuracy(t))),
            longest.Layers.Select(l => (l.Layer, l.FiringRate(longest.Images, longest.Steps))).ToList(),
            new(ts.ToDictionary(t => t, t => At(t).FiringRate(t))),
            new(ts.ToDictionary(t => t, t => At(t).Sops(t) + At(t).ExtraSopsPerImage)),
            new(ts.ToDictionary(t => t, t => At(t).EnergyPj(energy, t))),
            longest.Layers, seconds, longest.Images, longest.AnnAgreement, method.CalibrationSummary)
        {
            SpikeKind = method.SpikeKind,
            WindowPerT = method.WindowPerT,
            Time = runs.Values.Aggregate(SimulationTime.Zero, (sum, r) => sum + r.Time),
            LatencyByT = new(ts.ToDictionary(t => t, t => method.Latency(t, depth))),
        };
    }
}

/// <summary>
/// Results of evaluating one checkpoint: ANN accuracy and, per method, SNN accuracy for every requested t, firing
/// rates, synaptic operations and energy. Serializes to the stable JSON of CLI.md and to a Markdown table.
/// </summary>
public sealed record EvaluationReport(string Model, string Dataset, int TestImages, double AnnAccuracy, long MacsPerImage,
    EnergyModel Energy, IReadOnlyList<SnnReport> Snn, string Checkpoint, Data.LoaderStatistics? TestData = null)
{
    public double AnnEnergyPj => Energy.Ann(MacsPerImage);

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
            snn.Add(new JsonObject
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
            });
        return new JsonObject
        {
            ["model"] = Model,
            ["dataset"] = Dataset,
            ["checkpoint"] = Checkpoint,
            ["test_images"] = TestImages,
            ["ann_accuracy"] = AnnAccuracy,
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
    }

    /// <summary>The table printed by evaluate and demo: one row per method and t.</summary>
    public string ToTable()
    {
        var sb = new StringBuilder();
        var inv = CultureInfo.InvariantCulture;
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
