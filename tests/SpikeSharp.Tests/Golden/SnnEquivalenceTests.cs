// Golden test of the whole QCFS pipeline: SpikeSharp's cnn-small QCFS ANN and its converted SNN against PyTorch with
// the same weights (tools/make_snn_fixtures.py). The SNN must reproduce PyTorch's spikes exactly: per layer and step,
// and per neuron. The fixture's weights are dyadic so that no membrane potential comes within 1e-3·θ of the threshold
// (recorded as margin_snn), which makes exact equality a fair demand of two float implementations.
using SpikeSharp.Autograd;
using SpikeSharp.Conversion;
using SpikeSharp.Interop;
using SpikeSharp.Models;
using SpikeSharp.Nn;
using SpikeSharp.Snn;
using SpikeSharp.Tensors;
using Xunit;

namespace SpikeSharp.Tests.Golden;

public class SnnEquivalenceTests
{
    private static readonly string FixturePath = Path.Combine(AppContext.BaseDirectory, "Fixtures", "torch", "snn_cnn_small.safetensors");

    private static readonly ModelSpec Spec = new("cnn-small", 1, 8, 8, 10, 0.25f, ActivationSpec.Qcfs(4, 1f));

    private const int Batch = 16;

    /// <summary>The QCFS layers in forward order; the fixture calls them layer0, layer1, layer2.</summary>
    private static readonly string[] NeuronLayers = ["features.2", "features.6", "classifier.2"];

    /// <summary>SpikeSharp's state-dict keys for <see cref="Spec"/>, in order (PyTorch's names, no num_batches_tracked).</summary>
    private static readonly string[] ModelKeys =
    [
        "features.0.weight",
        "features.1.weight", "features.1.bias", "features.1.running_mean", "features.1.running_var",
        "features.2.lambda",
        "features.4.weight",
        "features.5.weight", "features.5.bias", "features.5.running_mean", "features.5.running_var",
        "features.6.lambda",
        "classifier.1.weight", "classifier.1.bias",
        "classifier.2.lambda",
        "classifier.3.weight", "classifier.3.bias",
    ];

    private static SafetensorsFile Fixture() => Safetensors.Read(FixturePath);

    private static bool IsWeight(string name) => name.Contains('.');

    private static Module LoadModel(SafetensorsFile f)
    {
        var model = ModelFactory.Create(Spec);
        model.LoadStateDict(f.Tensors.Where(kv => IsWeight(kv.Key)).ToDictionary(kv => kv.Key, kv => kv.Value));
        model.Eval();
        return model;
    }

    [Fact]
    public void StateDictKeys_MatchTheFixture()
    {
        var model = ModelFactory.Create(Spec);
        Assert.Equal(ModelKeys, model.StateDict().Select(kv => kv.Key));
        var f = Fixture();
        Assert.Equal(ModelKeys.Order(StringComparer.Ordinal), f.Tensors.Keys.Where(IsWeight).Order(StringComparer.Ordinal));
        foreach (var (key, t) in model.StateDict())
            Assert.True(f.Get(key).SameShape(t), $"{key}: fixture {f.Get(key).ShapeString}, model {t.ShapeString}");
        Assert.Equal("cnn-small", f.Metadata["model"]);
        Assert.Equal("4", f.Metadata["levels"]);
        Assert.Equal(string.Join(",", NeuronLayers), f.Metadata["neuron_layers"]);
    }

    [Fact]
    public void Fixture_ThresholdMarginIsRecorded()
    {
        var f = Fixture();
        double margin = double.Parse(f.Metadata["margin_snn"], System.Globalization.CultureInfo.InvariantCulture);
        Assert.True(margin >= 1e-4, $"fixture margin {margin} is below 1e-4: spike counts could differ by rounding alone");
    }

    [Fact]
    public void QcfsAnn_MatchesTorchLogits()
    {
        var f = Fixture();
        var model = LoadModel(f);
        var y = model.Forward(new Variable(f.Get("x").Clone())).Value;
        Assert.Equal(new[] { Batch, 10 }, y.Shape);
        TestUtil.AssertClose(f.Get("ann_logits").Data, y.Data, atol: 1e-5, what: "ann logits");
    }

    [Theory]
    [InlineData(4)]
    [InlineData(8)]
    public void Snn_MatchesTorchSpikesExactly(int steps)
    {
        var f = Fixture();
        var model = LoadModel(f);
        var snn = Converter.Convert(model);
        Assert.Equal(NeuronLayers, snn.Neurons.Select(n => n.LayerName));
        for (int k = 0; k < NeuronLayers.Length; k++)
            Assert.Equal(f.Get(NeuronLayers[k] + ".lambda").Data[0], snn.Neurons[k].Threshold);

        snn.Configure(Batch, steps);
        var perStep = new List<long[]>[NeuronLayers.Length];
        var outputs = new List<Tensor>[NeuronLayers.Length];
        for (int k = 0; k < NeuronLayers.Length; k++)
        {
            (perStep[k], outputs[k]) = (new List<long[]>(), new List<Tensor>());
            int layer = k;
            // The output lives in scratch memory: copy it.
            snn.Neurons[k].Attach((_, counts, output) => { perStep[layer].Add((long[])counts.Clone()); outputs[layer].Add(output.Clone()); });
        }
        var y = snn.Run(f.Get("x").Clone(), steps);
        Assert.Equal(new[] { steps * Batch, 10 }, y.Shape);

        for (int k = 0; k < NeuronLayers.Length; k++)
        {
            string what = $"T={steps} layer{k} ({NeuronLayers[k]})";
            Assert.True(perStep[k].Count == 1, $"{what}: observer called {perStep[k].Count} times, expected once (layer-major)");
            float theta = snn.Neurons[k].Threshold;

            var expectedPerStep = f.Get($"spikes_T{steps}_layer{k}").Data;
            Assert.Equal(expectedPerStep.Select(v => (long)v), perStep[k][0]);

            var expectedCounts = f.Get($"counts_T{steps}_layer{k}");
            var output = outputs[k][0];
            Assert.Equal(steps * Batch, output.Shape[0]);
            Assert.Equal(expectedCounts.Shape.Skip(1), output.Shape.Skip(1));
            int perSample = expectedCounts.Length / Batch;
            var counts = new float[expectedCounts.Length];
            for (int t = 0; t < steps; t++)
                for (int i = 0; i < counts.Length; i++)
                {
                    float o = output.Data[t * counts.Length + i];
                    Assert.True(o == 0f || o == theta, $"{what}: output {o} at step {t}, neuron {i} is neither 0 nor θ = {theta}");
                    if (o != 0f) counts[i]++;
                }
            int mismatches = 0, first = -1;
            for (int i = 0; i < counts.Length; i++)
                if (counts[i] != expectedCounts.Data[i]) { mismatches++; if (first < 0) first = i; }
            Assert.True(mismatches == 0,
                $"{what}: {mismatches} of {counts.Length} neurons differ; first: sample {first / perSample}, neuron {first % perSample}: " +
                $"{(first < 0 ? 0 : counts[first])} spikes, PyTorch {(first < 0 ? 0 : expectedCounts.Data[first])}");
            // Total spikes agree with the per-step counts.
            Assert.Equal(perStep[k][0].Sum(), (long)counts.Sum());
        }

        var mean = new float[Batch * 10];
        for (int t = 0; t < steps; t++)
            for (int i = 0; i < mean.Length; i++) mean[i] += y.Data[t * mean.Length + i] / steps;
        TestUtil.AssertClose(f.Get($"snn_logits_T{steps}").Data, mean, atol: 1e-4, what: $"T={steps} mean logits");
    }
}
