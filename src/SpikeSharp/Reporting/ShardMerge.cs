using System.Text.Json;
using System.Text.Json.Nodes;
using SpikeSharp.Data;
using SpikeSharp.Snn;

namespace SpikeSharp.Reporting;

/// <summary>
/// Combines the reports of <c>evaluate --shard K/N</c> (one per contiguous slice of the test set) into the report one
/// run over the whole set gives. Each shard's JSON carries its raw totals (correct images by t, spikes by layer and t,
/// SOPs, agreement); they are added, and every derived number (accuracy, rates, energy) is computed from the sums, so
/// the counts are exactly those of one run and the derived values equal to the last bit; only the per-layer ANN rate
/// error (<c>--ann-agreement</c>), summed in float32 per chunk, agrees to about 10⁻⁶ relative. Times add up: they are the
/// compute spent over all shards.
/// </summary>
public static class ShardMerge
{
    /// <summary>The raw totals of one run, as a shard's JSON carries them.</summary>
    public static JsonObject RunToJson(SimulationResult r) => new()
    {
        ["steps"] = r.Steps,
        ["extra_steps"] = r.ExtraSteps,
        ["images"] = r.Images,
        ["correct_by_step"] = Array(r.CorrectByStep),
        ["analog_macs_per_image_step"] = r.AnalogMacsPerImagePerStep,
        ["sops_by_step"] = Array(r.SopsByStep),
        ["extra_sops"] = r.ExtraSops,
        ["ann_agreement"] = r.AnnAgreement,
        ["layers"] = new JsonArray(r.Layers.Select(l => (JsonNode)new JsonObject
        {
            ["layer"] = l.Layer, ["threshold"] = l.Threshold, ["neurons_per_image"] = l.NeuronsPerImage, ["spikes"] = Array(l.SpikesByStep),
            ["ann_error"] = l.AnnError, ["ann_mismatches"] = l.AnnMismatches, ["divergent_neurons"] = l.DivergentNeurons,
        }).ToArray()),
        ["time"] = new JsonObject
        {
            ["wall_seconds"] = r.Time.WallSeconds, ["simulate_seconds"] = r.Time.SimulateSeconds,
            ["ann_forward_seconds"] = r.Time.AnnForwardSeconds, ["ann_compare_seconds"] = r.Time.AnnCompareSeconds,
        },
    };

    private static JsonArray Array<T>(IEnumerable<T> values) => new(values.Select(v => JsonValue.Create(v)).ToArray<JsonNode?>());

    /// <summary>Reads shard reports from files and merges them.</summary>
    public static EvaluationReport MergeFiles(IReadOnlyList<string> paths)
    {
        var parts = new List<(string, JsonObject)>();
        foreach (var path in paths)
        {
            if (!File.Exists(path)) throw new SpikeSharpException($"{path} not found; expected the --json file of an `evaluate --shard K/N` run");
            try { parts.Add((path, JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new InvalidFileException(path, "expected a JSON object"))); }
            catch (JsonException e) { throw new InvalidFileException(path, $"invalid JSON: {e.Message}", e); }
        }
        return Merge(parts);
    }

    /// <summary>Merges the shard reports <paramref name="parts"/> (path, parsed JSON); the paths name them in errors.</summary>
    /// <exception cref="SpikeSharpException">A part is not a shard report, a shard is missing or repeated, or the parts
    /// disagree on the checkpoint, the data or the methods.</exception>
    public static EvaluationReport Merge(IReadOnlyList<(string Path, JsonObject Json)> parts)
    {
        if (parts.Count == 0) throw new SpikeSharpException("merge needs the JSON reports of every shard");
        var shards = parts.Select(p => new Part(p.Path, p.Json)).OrderBy(p => p.Shard.Index).ToList();
        var first = shards[0];
        int count = first.Shard.Count;
        foreach (var s in shards)
        {
            if (s.Shard.Count != count) throw new SpikeSharpException($"{s.Path} is shard {s.Shard.Index}/{s.Shard.Count} but {first.Path} is one of {count}: the parts come from different splits");
            s.Expect("checkpoint_sha256", s.Shard.CheckpointSha256, first.Shard.CheckpointSha256, first.Path, "shards of different checkpoints");
            s.Expect("total_images", s.Shard.TotalImages, first.Shard.TotalImages, first.Path, "shards of different test sets");
            foreach (var field in new[] { "model", "dataset", "energy_model" }) s.Expect(field, s.Str(s.Root, field), first.Str(first.Root, field), first.Path, "shards of different evaluations");
            s.Expect("macs_per_image", s.Get<long>(s.Root, "macs_per_image"), first.Get<long>(first.Root, "macs_per_image"), first.Path, "shards of different networks");
        }
        var indices = shards.Select(s => s.Shard.Index).ToList();
        var missing = Enumerable.Range(1, count).Except(indices).ToList();
        var repeated = indices.GroupBy(i => i).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        if (repeated.Count > 0) throw new SpikeSharpException($"shard(s) {string.Join(", ", repeated.Select(i => $"{i}/{count}"))} given more than once: " +
            string.Join(", ", shards.Where(s => repeated.Contains(s.Shard.Index)).Select(s => s.Path)));
        if (missing.Count > 0) throw new SpikeSharpException($"shard(s) {string.Join(", ", missing.Select(i => $"{i}/{count}"))} missing: merge needs all {count}");
        int next = 0;
        foreach (var s in shards)
        {
            if (s.Shard.FirstImage != next) throw new SpikeSharpException($"{s.Path}: shard {s.Shard.Index}/{count} starts at test image {s.Shard.FirstImage}, expected {next} after the shards before it");
            next += s.Get<int>(s.Root, "test_images");
        }
        if (next != first.Shard.TotalImages) throw new SpikeSharpException($"the shards cover {next} test images, expected {first.Shard.TotalImages}");

        var energy = EnergyModel.Get(first.Str(first.Root, "energy_model"));
        var methods = shards.Select(s => s.Methods()).ToList();
        var reports = new List<SnnReport>();
        for (int m = 0; m < methods[0].Count; m++)
        {
            var head = methods[0][m];
            foreach (var (s, list) in shards.Zip(methods))
            {
                if (list.Count != methods[0].Count) throw new SpikeSharpException($"{s.Path} evaluated {list.Count} methods, {first.Path} {methods[0].Count}: run every shard with the same --method list");
                list[m].ExpectSameAs(head);
            }
            var runs = new SortedDictionary<int, SimulationResult>();
            foreach (int steps in head.Runs.Keys)
                runs[steps] = SimulationResult.Combine(methods.Select(l => l[m].Runs[steps]).ToList());
            reports.Add(SnnReport.From(head.Facts, head.CalibrationImages, head.CalibrationData, runs, head.Latency.Keys, energy,
                methods.Sum(l => l[m].Seconds), t => head.Latency[t]));
        }
        long annCorrect = shards.Sum(s => s.Get<long>(s.Root, "ann_correct"));
        int total = first.Shard.TotalImages;
        return new EvaluationReport(first.Str(first.Root, "model"), first.Str(first.Root, "dataset"), total, (double)annCorrect / total,
            first.Get<long>(first.Root, "macs_per_image"), energy, reports, first.Str(first.Root, "checkpoint"), MergeLoading(shards))
        {
            AnnCorrect = annCorrect,
            MergedShards = count,
        };
    }

    private static LoaderStatistics? MergeLoading(List<Part> shards)
    {
        var all = shards.Select(s => s.Root["test_data_loading"] as JsonObject).ToList();
        if (all.Any(a => a == null)) return null;
        return new LoaderStatistics(all.Sum(a => a!["images"]!.GetValue<long>()), all.Sum(a => a!["read_seconds"]!.GetValue<double>()),
            all.Sum(a => a!["compute_waited_seconds"]!.GetValue<double>()), all[0]!["threads"]!.GetValue<int>());
    }

    /// <summary>One shard's report, read with errors that name the file and the field.</summary>
    private sealed class Part
    {
        public string Path { get; }
        public JsonObject Root { get; }
        public EvaluationShard Shard { get; }

        public Part(string path, JsonObject root)
        {
            // Values built in memory keep their CLR type (a latency written as double does not read as int); parsed
            // text converts, so work on the text form, as the files are.
            (Path, Root) = (path, JsonNode.Parse(root.ToJsonString())!.AsObject());
            var s = Root["shard"] as JsonObject
                ?? throw new InvalidFileException(path, "not a shard report (no 'shard' object); write shards with `evaluate --shard K/N --json FILE`");
            Shard = new EvaluationShard(Get<int>(s, "index"), Get<int>(s, "count"), Get<int>(s, "first_image"), Get<int>(s, "total_images"),
                Get<string>(s, "checkpoint_sha256"));
        }

        public T Get<T>(JsonObject parent, string field)
        {
            var node = parent[field] ?? throw new InvalidFileException(Path, $"missing field '{Where(parent, field)}'");
            try { return node.GetValue<T>(); }
            catch (Exception e) when (e is InvalidOperationException or FormatException)
            { throw new InvalidFileException(Path, $"field '{Where(parent, field)}' is {node.GetValueKind()}; expected {typeof(T).Name}"); }
        }

        public string Str(JsonObject parent, string field) => Get<string>(parent, field);

        public T? Optional<T>(JsonObject parent, string field) where T : struct => parent[field] is null ? null : Get<T>(parent, field);

        public JsonArray Array(JsonObject parent, string field) =>
            parent[field] as JsonArray ?? throw new InvalidFileException(Path, $"missing array '{Where(parent, field)}'");

        public JsonObject Object(JsonNode? node, string what) => node as JsonObject ?? throw new InvalidFileException(Path, $"{what} must be an object");

        private static string Where(JsonNode parent, string field) => parent.GetPath() is "$" ? field : $"{parent.GetPath().TrimStart('$', '.')}.{field}";

        public void Expect<T>(string field, T value, T expected, string otherPath, string what)
        {
            if (!EqualityComparer<T>.Default.Equals(value, expected))
                throw new SpikeSharpException($"{Path}: '{field}' is {value}, but {expected} in {otherPath}: {what} cannot be merged");
        }

        public List<MethodPart> Methods() => Array(Root, "snn").Select((n, i) => new MethodPart(this, Object(n, $"snn[{i}]"))).ToList();

        public SimulationResult Run(JsonObject r)
        {
            int steps = Get<int>(r, "steps");
            T[] Vector<T>(JsonObject o, string field)
            {
                var values = Array(o, field).Select((v, i) => v is null ? throw new InvalidFileException(Path, $"'{field}[{i}]' is null") : v.GetValue<T>()).ToArray();
                return values.Length == steps ? values : throw new InvalidFileException(Path, $"'{Where(o, field)}' has {values.Length} entries, expected {steps} (one per step)");
            }
            var layers = Array(r, "layers").Select((n, i) =>
            {
                var l = Object(n, $"layers[{i}]");
                return new LayerActivity(Str(l, "layer"), Get<float>(l, "threshold"), Get<long>(l, "neurons_per_image"), Vector<long>(l, "spikes"),
                    Optional<double>(l, "ann_error"), Optional<long>(l, "ann_mismatches"), Get<long>(l, "divergent_neurons"));
            }).ToList();
            var time = Object(r["time"], "'time'");
            return new SimulationResult(Get<int>(r, "images"), steps, Vector<long>(r, "correct_by_step"), layers, Get<double>(r, "analog_macs_per_image_step"),
                Vector<double>(r, "sops_by_step"), Get<int>(r, "extra_steps"), Get<double>(r, "extra_sops"), Optional<long>(r, "ann_agreement"))
            {
                Time = new(Get<double>(time, "wall_seconds"), Get<double>(time, "simulate_seconds"), Get<double>(time, "ann_forward_seconds"), Get<double>(time, "ann_compare_seconds")),
            };
        }
    }

    /// <summary>One method's entry in a shard's report.</summary>
    private sealed class MethodPart
    {
        private readonly Part _part;
        public MethodFacts Facts { get; }
        public int CalibrationImages { get; }
        public string CalibrationData { get; }
        public SortedDictionary<int, int> Latency { get; } = new();
        public SortedDictionary<int, SimulationResult> Runs { get; } = new();
        public double Seconds { get; }

        public MethodPart(Part part, JsonObject m)
        {
            _part = part;
            Facts = new MethodFacts(part.Str(m, "method"), part.Str(m, "description"), part.Str(m, "spike_kind"), part.Get<bool>(m, "window_per_t"),
                m["calibration_summary"] is null ? null : part.Str(m, "calibration_summary"));
            CalibrationImages = part.Get<int>(m, "calibration_images");
            CalibrationData = part.Str(m, "calibration_data");
            Seconds = part.Get<double>(m, "seconds");
            foreach (var (t, v) in part.Object(m["latency_steps_by_t"], $"'{Facts.Name}.latency_steps_by_t'"))
                Latency[int.TryParse(t, out int step) ? step : throw new InvalidFileException(part.Path, $"'latency_steps_by_t' key '{t}' is not a step")] =
                    v?.GetValue<int>() ?? throw new InvalidFileException(part.Path, $"'latency_steps_by_t.{t}' is null");
            var runs = m["runs"] as JsonArray ?? throw new InvalidFileException(part.Path, $"method '{Facts.Name}' has no 'runs' (raw counts): not written by `evaluate --shard`");
            foreach (var (n, i) in runs.Select((n, i) => (n, i)))
            {
                var r = part.Run(part.Object(n, $"'{Facts.Name}.runs[{i}]'"));
                Runs[r.Steps] = r;
            }
            if (Runs.Count == 0) throw new InvalidFileException(part.Path, $"method '{Facts.Name}' has an empty 'runs' list");
        }

        /// <summary>Everything but the counts must be the same in every shard: the method, its calibration (the same
        /// training images and seed everywhere), the steps reported and simulated.</summary>
        public void ExpectSameAs(MethodPart head)
        {
            string Which() => $"{_part.Path} and {head._part.Path} differ in method '{head.Facts.Name}'";
            if (Facts != head.Facts) throw new SpikeSharpException($"{Which()}: {Facts} vs {head.Facts}; run every shard with the same options");
            if (CalibrationImages != head.CalibrationImages || CalibrationData != head.CalibrationData)
                throw new SpikeSharpException($"{Which()}: calibrated on {CalibrationImages} ({CalibrationData}) vs {head.CalibrationImages} ({head.CalibrationData}) images");
            if (!Latency.SequenceEqual(head.Latency)) throw new SpikeSharpException($"{Which()}: reported steps t {string.Join(",", Latency.Keys)} vs {string.Join(",", head.Latency.Keys)}");
            if (!Runs.Keys.SequenceEqual(head.Runs.Keys)) throw new SpikeSharpException($"{Which()}: simulated horizons {string.Join(",", Runs.Keys)} vs {string.Join(",", head.Runs.Keys)}");
        }
    }
}
