// Golden test of SRP and COS on a small ResNet-20: PyTorch implementations of spec §2 (step-major, as the authors'
// code) and §3 (layer-major, as the authors' code) in tools/make_method_fixtures.py, with the same dyadic weights. Every
// neuron's spike count and every layer's spikes per step must match exactly; the fixture records how many exact ties
// m = θ it contains, so the ≥ rule is pinned too.
using SpikeSharp.Conversion;
using SpikeSharp.Conversion.Methods;
using SpikeSharp.Interop;
using SpikeSharp.Models;
using SpikeSharp.Nn;
using SpikeSharp.Snn;
using SpikeSharp.Tensors;
using Xunit;

namespace SpikeSharp.Tests.Golden;

public class MethodGoldenTests
{
    private static readonly string FixturePath = Path.Combine(AppContext.BaseDirectory, "Fixtures", "torch", "methods_resnet20.safetensors");

    private static readonly ModelSpec Spec = new("resnet20", 1, 8, 8, 10, 0.25f, ActivationSpec.Qcfs(4, 1f));

    [Theory]
    [InlineData("srp")]
    [InlineData("cos")]
    public void SpikeCountsOfEveryNeuronMatchPyTorch(string name)
    {
        var f = Safetensors.Read(FixturePath);
        int steps = int.Parse(f.Metadata["steps"]), presim = int.Parse(f.Metadata["presim"]), batch = int.Parse(f.Metadata["batch"]);
        Assert.True(long.Parse(f.Metadata[name + "_ties"]) > 0, "the fixture has no tie m = θ");
        var model = ModelFactory.Create(Spec);
        model.LoadStateDict(f.Tensors.Where(kv => kv.Key.Contains('.')).ToDictionary(kv => kv.Key, kv => kv.Value));
        var snn = Converter.Convert(model);
        Assert.Equal(f.Metadata["neuron_layers"].Split(','), snn.Neurons.Select(n => n.LayerName));
        ConversionMethod method = name == "srp" ? new SrpCalibration(presim) : new CosCalibration(presim);

        var outputs = new Tensor?[snn.Neurons.Count];
        var monitors = snn.Neurons.Select((n, layer) => n.Attach((_, _, output) => { if (!snn.InExtraRun) outputs[layer] = output.Clone(); })).ToList();
        var y = method.Simulate(snn, f.Get("x").Clone(), steps);
        foreach (var m in monitors) m.Dispose();

        for (int k = 0; k < outputs.Length; k++)
        {
            var output = outputs[k]!;
            int per = output.Length / (steps * batch);
            var perStep = Enumerable.Range(0, steps).Select(t => (float)output.Data.AsSpan(t * batch * per, batch * per).ToArray().Count(v => v != 0));
            Assert.Equal(f.Get($"{name}_spikes_layer{k}").Data, perStep.ToArray());
            var counts = new float[batch * per];
            for (int t = 0; t < steps; t++)
                for (int i = 0; i < batch * per; i++) if (output.Data[t * batch * per + i] != 0) counts[i]++;
            var expected = f.Get($"{name}_counts_layer{k}").Data;
            int first = Enumerable.Range(0, counts.Length).FirstOrDefault(i => counts[i] != expected[i], -1);
            Assert.True(first < 0, $"{name} layer {k} ({snn.Neurons[k].LayerName}) neuron {first}: {(first < 0 ? 0 : counts[first])} spikes, PyTorch {(first < 0 ? 0 : expected[first])}");
        }
        var logits = new float[batch * 10];
        for (int t = 0; t < steps; t++)
            for (int i = 0; i < logits.Length; i++) logits[i] += y.Data[t * logits.Length + i] / steps;
        TestUtil.AssertClose(f.Get($"{name}_logits").Data, logits, atol: 1e-5, what: $"{name} logits");
    }
}
