// Evaluation must not depend on the number of worker threads (SPIKESHARP_THREADS).
using System.Text.Json.Nodes;
using SpikeSharp.Tests.Cli;
using Xunit;

namespace SpikeSharp.Tests.Reliability;

[Collection("cli")]
public sealed class ThreadCountTests : IDisposable
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "spikesharp-threads-" + Guid.NewGuid().ToString("N"));

    public void Dispose()
    {
        try { Directory.Delete(_dir, true); } catch (DirectoryNotFoundException) { }
    }

    [Fact]
    public void EvaluationWithOneAndThreeThreadsIsBitIdentical()
    {
        string run = Path.Combine(_dir, "run");
        var (code, _, err) = CliTests.Run("train", "--model", "cnn-small", "--dataset", "mnist", "--data", CliTests.DataDir, "--out", run,
            "--preset", "qcfs", "--augment", "none", "--epochs", "1", "--batch", "64", "--limit", "256", "--width", "0.5");
        Assert.True(code == 0, err);
        string Evaluate(int threads)
        {
            string json = Path.Combine(_dir, $"eval{threads}.json");
            var (c, e) = ChildCli.Run(["evaluate", "--checkpoint", Path.Combine(run, "last"), "--data", CliTests.DataDir, "--method", "qcfs",
                "--timesteps", "1,2,4,8", "--limit", "300", "--batch", "100", "--json", json],
                new Dictionary<string, string> { ["SPIKESHARP_THREADS"] = threads.ToString() });
            Assert.True(c == 0, e);
            // Everything but wall-clock time must match bit for bit: accuracies, spike counts per layer and step, SOPs, energy.
            var doc = JsonNode.Parse(File.ReadAllText(json))!.AsObject();
            foreach (var snn in doc["snn"]!.AsArray())
                foreach (var timing in new[] { "seconds", "images_per_second", "time_breakdown" }) snn!.AsObject().Remove(timing);
            doc.Remove("seconds");
            doc.Remove("ann_seconds");
            Assert.Equal(300 * 2, (long)doc["test_data_loading"]!["images"]!); // the ANN pass and the qcfs pass
            doc.Remove("test_data_loading"); // loader timings
            return doc.ToJsonString();
        }
        string one = Evaluate(1);
        Assert.Contains("\"spikes_by_layer_and_t\"", one);
        Assert.Contains("\"divergent_neurons\":0", one);
        Assert.Equal(one, Evaluate(3)); // 3 workers on 2 cores: tiles and images split differently from 1

    }
}
