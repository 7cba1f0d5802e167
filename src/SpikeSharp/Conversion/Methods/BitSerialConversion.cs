using SpikeSharp.Nn;
using SpikeSharp.Snn;

namespace SpikeSharp.Conversion.Methods;

/// <summary>
/// Bit-serial conversion (Datta et al. 2023, "When SNN meets ANN"; spec §5): a QCFS network with L = 2^T − 1 levels
/// becomes an SNN of <see cref="BitSerialNeuron"/>s that reproduces the quantized ANN exactly in T steps. The counted
/// horizon must be T (the accuracy at smaller t reflects partial, most-significant-first bits).
/// </summary>
[ConversionMethod("bit-serial", 4)]
public sealed class BitSerialConversion : ConversionMethod
{
    public BitSerialConversion(MethodOptions o) : this() { }

    public BitSerialConversion() { }

    public override string Name => "bit-serial";
    public override string Description => "bit-serial (Datta et al. 2023, spec §5): threshold halves every step, T = log2(L+1) bit-steps, bias shift λ/(2L)";

    public override Func<string, Activation, float, SpikingNeuron> NeuronFactory => (layer, act, theta) =>
        act.Levels is { } levels
            ? new BitSerialNeuron(layer, theta, levels, act)
            : throw new SpikeSharpException($"bit-serial conversion needs QCFS activations with L = 2^T − 1 levels; layer '{layer}' is {act.GetType().Name}");

    public override void ValidateModel(Nn.ActivationSpec activation, int steps) => CheckLevels(activation.Kind == "qcfs" ? activation.Levels : -1, steps);

    /// <summary>Checks the model's L against the horizon before the run (the neurons check again per layer).</summary>
    public static void CheckLevels(int levels, int steps)
    {
        if ((1L << steps) - 1 != levels)
            throw new SpikeSharpException($"bit-serial: the model has L = {levels} levels, which needs T = log2(L+1) = " +
                $"{(BitSerialNeuron.BitsFor(levels) is { } t ? t.ToString(System.Globalization.CultureInfo.InvariantCulture) : "(none: L must be 2^T − 1)")} steps, but the horizon is T = {steps}; " +
                "set --timesteps so its largest value is that T, or train with --preset bit-serial (L = 15, T = 4)");
    }
}
