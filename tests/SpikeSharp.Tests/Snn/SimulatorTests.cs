using SpikeSharp.Conversion;
using SpikeSharp.Conversion.Methods;
using SpikeSharp.Data;
using SpikeSharp.Models;
using SpikeSharp.Nn;
using SpikeSharp.Snn;
using Xunit;

namespace SpikeSharp.Tests.Snn;

/// <summary>The simulator's bookkeeping beyond what the reference comparison covers: ANN comparison and energy.</summary>
public class SimulatorTests
{
    [Fact]
    public void AnAnnOfAnotherShapeIsAnErrorNotAZeroError()
    {
        var spec = new ModelSpec("cnn-small", 2, 8, 8, 4, 0.25f, ActivationSpec.Qcfs(4, 1f));
        var snn = Converter.Convert(ModelFactory.Create(spec));
        var other = ModelFactory.Create(spec with { WidthMultiplier = 0.5f }); // same layer names, twice the channels
        var (data, _, transform) = ReferenceNets.Images(3, 4, 2, 8, 4);
        using var loader = new DataLoader(data, 4, transform, shuffle: false, train: false, seed: 0);
        var e = Assert.Throws<SpikeSharpException>(() => new Simulator().Run(snn, loader, 4, other));
        Assert.Contains("features.2", e.Message);
        Assert.Contains("the ANN the SNN was converted from", e.Message);
    }

    [Fact]
    public void UserMonitorsRunBesideTheSimulatorsAndStayAttached()
    {
        var spec = new ModelSpec("cnn-small", 2, 8, 8, 4, 0.25f, ActivationSpec.Qcfs(4, 1f));
        var snn = Converter.Convert(ModelFactory.Create(spec, seed: 5));
        var (data, _, transform) = ReferenceNets.Images(3, 6, 2, 8, 4);
        using var loader = new DataLoader(data, 3, transform, shuffle: false, train: false, seed: 0);
        long seen = 0, second = 0;
        using var first = snn.Neurons[0].Attach((_, counts, _) => seen += counts.Sum());
        using var other = snn.Neurons[0].Attach((_, _, _) => second++);
        var result = new Simulator().Run(snn, loader, 4);
        Assert.Equal(result.Layers[0].SpikesByStep.Sum(), seen); // the probe run of the analog MACs is not reported
        Assert.Equal(2, second); // two batches of 3
        Assert.Equal(2, snn.Neurons[0].Monitors.Count); // the simulator detached only its own
    }

    [Fact]
    public void TheRightAnnIsComparedOnEveryLayer()
    {
        // T = L = 4 on the first layer (constant input) is exact; deeper layers may differ, but every layer is compared.
        var spec = new ModelSpec("cnn-small", 2, 8, 8, 4, 0.25f, ActivationSpec.Qcfs(4, 1f));
        var ann = ModelFactory.Create(spec, seed: 5);
        var snn = Converter.Convert(ModelFactory.Create(spec, seed: 5));
        var (data, _, transform) = ReferenceNets.Images(3, 6, 2, 8, 4);
        using var loader = new DataLoader(data, 3, transform, shuffle: false, train: false, seed: 0);
        var r = new Simulator().Run(snn, loader, 4, ann);
        Assert.All(r.Layers, l => Assert.NotNull(l.AnnError));
        Assert.Equal(0, r.Layers[0].AnnMismatches);
        Assert.Equal(0.0, r.Layers[0].AnnError!.Value, 6);
        Assert.NotNull(r.AnnAgreement);
    }

    [Fact]
    public void EnergyIsAnalogMacsEveryStepPlusSopsOfCountedAndExtraSteps()
    {
        var r = new SimulationResult(10, 3, [1, 2, 3], [], AnalogMacsPerImagePerStep: 1000, SopsByStep: [100, 200, 400], ExtraSteps: 2, ExtraSops: 70);
        var e = new EnergyModel("test", MacPj: 4.6, AcPj: 0.9);
        Assert.Equal(1000 * (2 + 2) * 4.6 + (10 + 20 + 7) * 0.9, r.EnergyPj(e, 2), 9);
        Assert.Equal(70, r.Sops(3));
        Assert.Equal(0.2, r.Accuracy(2));
        Assert.Equal(4.6 * 123, EnergyModel.Fp32.Ann(123), 9);
        Assert.Equal(EnergyModel.Int8, EnergyModel.Get("int8"));
    }
}
