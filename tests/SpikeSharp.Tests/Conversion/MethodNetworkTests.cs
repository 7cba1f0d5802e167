// QCFS, SRP and COS on the built-in architectures (ResNet-20, VGG-16, cnn-small at small widths) against the step-major
// reference simulator implementing spec §0, §2 and §3: every neuron's spike at every step, the accuracy by t, SOPs and
// analog MACs must agree exactly (the weights, BN and thresholds are made dyadic, so both compute exactly).
using SpikeSharp.Conversion;
using SpikeSharp.Conversion.Methods;
using SpikeSharp.Data;
using SpikeSharp.Models;
using SpikeSharp.Nn;
using SpikeSharp.Snn;
using SpikeSharp.Tests.Snn;
using Xunit;

namespace SpikeSharp.Tests.Conversion;

public class MethodNetworkTests
{
    private const int Classes = 10, Images = 5, Steps = 6;

    private static ModelSpec Spec(string arch) => arch switch
    {
        "resnet20" => new ModelSpec("resnet20", 2, 8, 8, Classes, 0.25f, ActivationSpec.Qcfs(4, 1f)),
        "vgg16" => new ModelSpec("vgg16", 1, 32, 32, Classes, 0.0625f, ActivationSpec.Qcfs(4, 1f)),
        _ => new ModelSpec("cnn-small", 1, 8, 8, Classes, 0.25f, ActivationSpec.Qcfs(4, 1f)),
    };

    private static (SpikingNetwork Snn, ImageDataset Data, float[][] Inputs, TransformSpec Transform, int[] Shape) Build(string arch, int seed)
    {
        var spec = Spec(arch);
        var model = ModelFactory.Create(spec, seed);
        ReferenceNets.MakeDyadic(model, seed, powerOfTwoThresholds: true);
        var (data, inputs, transform) = ReferenceNets.Images(seed, Images, spec.InChannels, spec.Height, Classes);
        return (Converter.Convert(model), data, inputs, transform, [spec.InChannels, spec.Height, spec.Width]);
    }

    private static ReferenceSnn.Result Reference(SpikingNetwork snn, ConversionMethod method, float[][] inputs, int[] shape, int[] labels) =>
        method switch
        {
            SrpCalibration srp => new ReferenceSnn(snn.Model).RunSrp(inputs, shape, labels, Steps, srp.PresimSteps),
            CosCalibration cos => new ReferenceSnn(snn.Model).RunCos(inputs, shape, labels, Steps, cos.PresimSteps),
            _ => new ReferenceSnn(snn.Model).Run(inputs, shape, labels, Steps),
        };

    public static TheoryData<string, string> Cases()
    {
        var d = new TheoryData<string, string>();
        foreach (var arch in new[] { "resnet20", "vgg16", "cnn-small" })
            foreach (var method in new[] { "qcfs", "srp", "cos" }) d.Add(arch, method);
        return d;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void EveryNeuronAndStepMatchesTheReference(string arch, string methodName)
    {
        var method = ConversionMethods.Create(methodName, new MethodOptions(Presim: 3));
        var (snn, data, inputs, transform, shape) = Build(arch, seed: 1);
        var expected = Reference(snn, method, inputs, shape, data.Labels);
        Assert.True(expected.MinMargin > 1e-5, $"a potential came within {expected.MinMargin} of θ: the case is not exact");
        // Deep layers must fire, or a deep mismatch could not show.
        Assert.True(expected.Layers.Length >= 3 && Enumerable.Range(1, Steps).Sum(t => expected.SpikesAt(expected.Layers.Length - 1, t)) > 0,
            $"{arch}: the last spiking layer never fires");
        var actual = SimulatorPropertyTests.ProductionSpikes(snn, method, ReferenceNets.Batch(inputs, shape[0], shape[1]), Steps);
        SimulatorPropertyTests.AssertSameSpikes(expected, actual, $"{arch} {methodName}");
        using var loader = new DataLoader(data, 3, transform, shuffle: false, train: false, seed: 0);
        var result = new Simulator { MaxRows = 2 * Steps }.Run(snn, loader, Steps, method: method);
        SimulatorPropertyTests.AssertSimulatorMatches(expected, result, $"{arch} {methodName}");
        Assert.Equal(method.ExtraSteps, result.ExtraSteps);
    }

    [Fact]
    public void SrpAndCosChangeTheSpikesOfTheseNetworks()
    {
        // Otherwise the method comparisons above would also pass for a method that does nothing.
        foreach (var arch in new[] { "resnet20", "vgg16" })
        {
            var (snn, data, inputs, _, shape) = Build(arch, seed: 1);
            var plain = Reference(snn, new QcfsConversion(), inputs, shape, data.Labels);
            foreach (var method in new ConversionMethod[] { new SrpCalibration(3), new CosCalibration(3) })
            {
                var other = Reference(snn, method, inputs, shape, data.Labels);
                bool differs = plain.Spikes.Zip(other.Spikes).Any(l => l.First.Zip(l.Second).Any(t => !t.First.SequenceEqual(t.Second)));
                Assert.True(differs, $"{arch} {method.Name}: the same spikes as plain QCFS");
            }
        }
    }
}
