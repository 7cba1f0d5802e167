using SpikeSharp.Autograd;
using SpikeSharp.Conversion.Methods;
using SpikeSharp.Snn;
using SpikeSharp.Tensors;
using Xunit;

namespace SpikeSharp.Tests.Conversion;

/// <summary>Spec §8(c) cases 6–8: unevenness, SRP masking and COS offsets on single neurons (θ = 1, v0 = ½).</summary>
public class LowLatencyMethodTests
{
    /// <summary>One neuron driven by a time-varying input; returns (spikes per step, final potential).</summary>
    private static (float[] Spikes, float Residual) Simulate(float[] inputs, float[]? offset = null, float[]? mask = null)
    {
        var neuron = new IfNeuron("l", 1f) { InitialOffset = offset, OutputMask = mask };
        neuron.Configure(1, inputs.Length);
        var y = neuron.Forward(new Variable(new Tensor((float[])inputs.Clone(), inputs.Length, 1))).Value.Data;
        return (y, neuron.Potential![0]);
    }

    private static float[] CosOffset(float[] inputs, int rho)
    {
        var neuron = new IfNeuron("l", 1f);
        neuron.Configure(1, inputs.Length);
        return new CosCalibration(rho).Offsets(neuron, inputs, constant: false);
    }

    [Fact]
    public void Case6_UnevenInputFiresAlthoughTheAnnOutputsZero()
    {
        var (spikes, residual) = Simulate([1f, -1f]);
        Assert.Equal(1f, spikes.Sum());
        Assert.Equal(-0.5f, residual);
    }

    [Fact]
    public void Case7_SrpMasksANeuronWhoseResidualIsNotPositive()
    {
        var (_, residual) = Simulate([1f, -1f]);
        var mask = SrpCalibration.Mask([residual], 1f);
        Assert.Equal(0f, mask[0]);
        Assert.Equal(0f, Simulate([1f, -1f], mask: mask).Spikes.Sum());
        Assert.Equal(1f, SrpCalibration.Mask([0.3f], 1f)[0]);
    }

    [Theory]
    [InlineData(new[] { 1f, -1f }, -1f, 0f)]
    [InlineData(new[] { 0f, 2.2f }, 1f, 2f)]
    [InlineData(new[] { 2.5f, -2.5f }, -2.001f, 0f)]
    public void Case8_CosShiftsTheInitialPotential(float[] inputs, float expectedOffset, float expectedSpikes)
    {
        var offset = CosOffset(inputs, rho: 2);
        Assert.Equal(expectedOffset, offset[0], 4);
        Assert.Equal(expectedSpikes, Simulate(inputs, offset).Spikes.Sum());
    }

    [Fact]
    public void CosSaturatedNeuronStartsAtTheReferenceSentinel_AndIsNotReportedAsDiverged()
    {
        // Inputs 2, 2, 2, 2 with ρ = 2: v 2.5 → fire, 2.5 → fire; r = 1.5 ≥ 1 with no silent step. The reference code's
        // Q sentinel is −1000, so v0 = ½ + max(1, 1.001 + 1000): the neuron fires on every step (∞ before the fix).
        float[] inputs = [2f, 2f, 2f, 2f];
        var offset = CosOffset(inputs, rho: 2);
        Assert.Equal(1001.001f, offset[0], 2);
        var neuron = new IfNeuron("l", 1f) { InitialOffset = offset };
        neuron.Configure(1, inputs.Length);
        var y = neuron.Forward(new Variable(new Tensor((float[])inputs.Clone(), inputs.Length, 1))).Value.Data;
        Assert.Equal([1f, 1f, 1f, 1f], y);
        Assert.Equal(0, neuron.DivergentNeurons); // a large v0 is the method's choice, not a broken conversion
        Assert.True(float.IsFinite(neuron.Potential![0]));
    }

    [Fact]
    public void CosRefusesMoreCalibrationStepsThanTheHorizon()
    {
        var e = Assert.Throws<SpikeSharpException>(() => new CosCalibration(8).Validate(4));
        Assert.Contains("ρ = 8", e.Message);
    }

    [Fact]
    public void SrpWithZeroPresimIsPlainQcfs()
    {
        Assert.Equal(0, new SrpCalibration(0).ExtraSteps);
        Assert.Throws<SpikeSharpException>(() => new SrpCalibration(-1));
        var snn = SpikeSharp.Conversion.Converter.Convert(Snn.ReferenceNets.Random(11, 2, 8, 4));
        var (_, inputs, _) = Snn.ReferenceNets.Images(11, 6, 2, 8, 4);
        var batch = Snn.ReferenceNets.Batch(inputs, 2, 8);
        var qcfs = Snn.SimulatorPropertyTests.ProductionSpikes(snn, new QcfsConversion(), batch, 6);
        var srp = Snn.SimulatorPropertyTests.ProductionSpikes(snn, new SrpCalibration(0), batch, 6);
        Assert.Equal(qcfs.SelectMany(l => l.SelectMany(t => t)), srp.SelectMany(l => l.SelectMany(t => t)));
        Assert.Contains(qcfs.SelectMany(l => l.SelectMany(t => t)), s => s == 1);
        Assert.Equal(new QcfsConversion().Simulate(snn, batch, 6).Data, new SrpCalibration(0).Simulate(snn, batch, 6).Data);
        Assert.All(snn.IfNeurons, n => Assert.Null(n.OutputMask));
    }
}
