// evaluate --shard K/N + merge: the merged report of the shards is the report of one run over the whole test set.
using System.Text.Json.Nodes;
using SpikeSharp.Conversion;
using SpikeSharp.Conversion.Methods;
using SpikeSharp.Data;
using SpikeSharp.Reporting;
using Xunit;

namespace SpikeSharp.Tests.Reporting;

public class ShardMergeTests
{
    [Theory]
    [InlineData(10, 3, new[] { 0, 3, 3, 3, 6, 4 })]
    [InlineData(7, 7, new[] { 0, 1, 1, 1, 2, 1, 3, 1, 4, 1, 5, 1, 6, 1 })]
    [InlineData(5, 1, new[] { 0, 5 })]
    public void SlicesAreContiguousCoverTheSetOnceAndDifferByAtMostOne(int total, int count, int[] expected)
    {
        var ranges = Enumerable.Range(1, count).SelectMany(k => new Shard(k, count).Range(total) is var (s, l) ? new[] { s, l } : []).ToArray();
        Assert.Equal(expected, ranges);
    }

    [Theory]
    [InlineData("3", "expected K/N")]
    [InlineData("0/4", "1 ≤ K ≤ N")]
    [InlineData("5/4", "1 ≤ K ≤ N")]
    [InlineData("-1/4", "expected K/N")]
    [InlineData("a/b", "expected K/N")]
    public void BadShardTextIsAClearError(string text, string expected)
    {
        var e = Assert.Throws<SpikeSharpException>(() => Shard.Parse(text));
        Assert.Contains(expected, e.Message);
        Assert.Equal(new Shard(2, 5), Shard.Parse("2/5"));
        Assert.Contains("at most 3", Assert.Throws<SpikeSharpException>(() => new Shard(1, 4).Range(3)).Message);
    }

    private sealed class Fixture : IDisposable
    {
        public readonly Interop.TempDirectory Dir = new();
        public readonly ImageSet Test, Train;

        public Fixture()
        {
            Interop.NirExportTests.SaveCheckpoint(Dir.Combine("ckpt"), "cnn-small");
            var rng = new Random(4);
            ImageDataset Images(int n) => new("mnist", Enumerable.Range(0, n * 64).Select(_ => (byte)rng.Next(256)).ToArray(),
                Enumerable.Range(0, n).Select(i => i % 3).ToArray(), 1, 8, 8, 3);
            (Test, Train) = (Images(41), Images(40));
        }

        public EvaluationReport Evaluate(Shard? shard, bool compare = true) =>
            new ConversionEvaluator { CheckpointDir = Dir.Combine("ckpt"), Test = Test, Train = Train, BatchSize = 16, Shard = shard, CompareWithAnn = compare }
                .Run(Methods(), [1, 2, 4]);

        // Every kind of run: one horizon, pre-simulation, per-sample calibration, training-image calibration, a window
        // per t, graded and signed spikes.
        private static ConversionMethod[] Methods() =>
            [new QcfsConversion(), new SrpCalibration(2), new CosCalibration(2), new FtbcCalibration(), new ParallelConversion(calibrate: true), new BurstConversion(), new SignedConversion()];

        public void Dispose() => Dir.Dispose();
    }

    /// <summary>The report without what depends on wall time, and with the ANN rate errors taken out (returned apart).</summary>
    private static (string Json, double[] AnnErrors) Comparable(JsonObject report)
    {
        var r = (JsonObject)report.DeepClone();
        foreach (var key in new[] { "test_data_loading", "shard", "merged_shards", "checkpoint" }) r.Remove(key);
        var errors = new List<double>();
        foreach (var m in r["snn"]!.AsArray().Cast<JsonObject>())
        {
            foreach (var key in new[] { "seconds", "images_per_second", "time_breakdown", "runs" }) m.Remove(key);
            foreach (var l in m["ann_error_by_layer"]!.AsArray().Cast<JsonObject>())
            {
                errors.Add(l["mean_abs_error"]!.GetValue<double>());
                l.Remove("mean_abs_error");
            }
        }
        return (r.ToJsonString(), errors.ToArray());
    }

    [Fact]
    public void MergedShardsGiveTheReportOfOneRun_ForEveryKindOfMethod()
    {
        using var f = new Fixture();
        var whole = f.Evaluate(null);
        var parts = Enumerable.Range(1, 3).Select(k => f.Evaluate(new Shard(k, 3))).ToList();
        Assert.Equal([13, 14, 14], parts.Select(p => p.TestImages));
        // Through JSON text, as the files travel.
        var merged = ShardMerge.Merge(parts.Select((p, k) => ($"part{k}.json", JsonNode.Parse(p.ToJson().ToJsonString())!.AsObject())).Reverse().ToList());
        Assert.Equal(3, merged.MergedShards);
        Assert.Equal(41, merged.TestImages);
        var (expected, expectedErrors) = Comparable(whole.ToJson());
        var (actual, actualErrors) = Comparable(merged.ToJson());
        Assert.Equal(expected, actual);
        Assert.Equal(expectedErrors.Length, actualErrors.Length);
        Assert.NotEmpty(expectedErrors);
        // The rate error is summed in float32 per chunk, and the chunks differ: equal to float rounding.
        for (int i = 0; i < expectedErrors.Length; i++) Assert.True(Math.Abs(expectedErrors[i] - actualErrors[i]) <= 1e-5 * expectedErrors[i], $"{expectedErrors[i]} vs {actualErrors[i]}");
        Assert.Equal(parts.Sum(p => p.Snn[0].Seconds), merged.Snn[0].Seconds, 9);
        Assert.Equal(whole.Snn.Select(s => s.CalibrationSummary), merged.Snn.Select(s => s.CalibrationSummary));
        // A plain run's JSON carries no raw counts; a shard's does.
        Assert.Null(whole.ToJson()["snn"]![0]!["runs"]);
        Assert.NotNull(parts[0].ToJson()["snn"]![0]!["runs"]);
    }

    [Fact]
    public void MergeRefusesIncompleteRepeatedForeignAndNonShardParts()
    {
        using var f = new Fixture();
        var parts = Enumerable.Range(1, 2).Select(k => f.Evaluate(new Shard(k, 2), compare: false).ToJson()).ToList();
        Assert.Contains("shard(s) 2/2 missing", Assert.Throws<SpikeSharpException>(() => ShardMerge.Merge([("a.json", parts[0])])).Message);
        Assert.Contains("more than once", Assert.Throws<SpikeSharpException>(() => ShardMerge.Merge([("a.json", parts[0]), ("b.json", parts[0]), ("c.json", parts[1])])).Message);
        var foreign = (JsonObject)parts[1].DeepClone();
        foreign["shard"]!["checkpoint_sha256"] = "0000";
        var e = Assert.Throws<SpikeSharpException>(() => ShardMerge.Merge([("a.json", parts[0]), ("b.json", foreign)]));
        Assert.Contains("b.json", e.Message);
        Assert.Contains("different checkpoints", e.Message);
        var plain = f.Evaluate(null, compare: false).ToJson();
        Assert.Contains("not a shard report", Assert.Throws<InvalidFileException>(() => ShardMerge.Merge([("plain.json", plain)])).Message);
        var otherMethod = (JsonObject)parts[1].DeepClone();
        otherMethod["snn"]![1]!["description"] = "SRP with other options";
        Assert.Contains("differ in method 'srp'", Assert.Throws<SpikeSharpException>(() => ShardMerge.Merge([("a.json", parts[0]), ("b.json", otherMethod)])).Message);
        var broken = (JsonObject)parts[1].DeepClone();
        broken["snn"]![0]!["runs"]![0]!["correct_by_step"] = new JsonArray(1, 2);
        var bad = Assert.Throws<InvalidFileException>(() => ShardMerge.Merge([("a.json", parts[0]), ("b.json", broken)]));
        Assert.Contains("b.json", bad.Message);
        Assert.Contains("correct_by_step", bad.Message);
        Assert.Contains("expected 4", bad.Message);
    }
}
