using SpikeSharp.Snn;

namespace SpikeSharp.Conversion.Methods;

/// <summary>
/// Signed neurons (Fast-SNN, Hu et al. 2023; docs/conversion-methods.md "signed"): each activation becomes a
/// <see cref="SignedNeuron"/> with θ = λ and v0 = θ/2 that can take back a spike fired too early with a negative one.
/// No calibration, no extra steps.
/// </summary>
[ConversionMethod("signed", 6)]
public sealed class SignedConversion : ConversionMethod
{
    public SignedConversion(MethodOptions o) : this() { }

    public SignedConversion() { }

    public override string Name => "signed";
    public override string Description => $"signed neurons (Fast-SNN, Hu et al. 2023): v0 = θ/2, ±θ spikes, a negative spike when v ≤ −{SignedNeuron.NegativeEpsilon} after a net positive count";
    public override string SpikeKind => "signed";
    public override Func<string, Nn.Activation, float, SpikingNeuron> NeuronFactory => (layer, act, theta) => new SignedNeuron(layer, theta, act);
}
