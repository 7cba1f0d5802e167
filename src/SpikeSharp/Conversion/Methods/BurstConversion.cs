using SpikeSharp.Snn;

namespace SpikeSharp.Conversion.Methods;

/// <summary>
/// Burst (group) neurons (Lv et al., ICASSP 2024; docs/conversion-methods.md "burst"): each activation becomes a
/// <see cref="BurstNeuron"/> emitting up to m unit spikes of θ/m per step. No calibration, no extra steps; a burst of k
/// counts as k spikes and k synaptic operations per fan-out.
/// </summary>
[ConversionMethod("burst", 7)]
public sealed class BurstConversion(int maxBurst = BurstConversion.DefaultMaxBurst) : ConversionMethod
{
    public BurstConversion(MethodOptions o) : this(o.Burst) { }

    public const int DefaultMaxBurst = 4;

    public int MaxBurst { get; } = maxBurst >= 1 ? maxBurst : throw new SpikeSharpException($"--burst must be ≥ 1, got {maxBurst}");

    public override string Name => "burst";
    public override string Description => $"burst neurons (Lv et al. 2024): up to m = {MaxBurst} unit spikes of θ/{MaxBurst} per step, v0 = θ/(2m)";
    public override string SpikeKind => $"graded (up to {MaxBurst} unit spikes per step)";
    public override Func<string, Nn.Activation, float, SpikingNeuron> NeuronFactory => (layer, act, theta) => new BurstNeuron(layer, theta, MaxBurst, act);
}
