using SpikeSharp.Snn;
using SpikeSharp.Tensors;

namespace SpikeSharp.Conversion.Methods;

/// <summary>
/// SRP, residual membrane potential pre-simulation (Hao et al., AAAI 2023; spec §2). Per batch: simulate the whole
/// network for τ steps from v0 = θ/2 (outputs discarded; deeper layers see unmasked spikes); mask each neuron, per
/// sample, whose normalized residual v(τ)/θ ≤ 10⁻³ (the ANN would output 0); reset to θ/2 and simulate T counted
/// steps with those outputs suppressed (the neurons still integrate and reset). Latency τ + T.
/// </summary>
[ConversionMethod("srp", 1)]
public sealed class SrpCalibration(int presimSteps = 4) : ConversionMethod
{
    public SrpCalibration(MethodOptions o) : this(o.Presim) { }

    /// <summary>Residuals above this (in units of θ) keep a neuron's output on.</summary>
    public const float ResidualEpsilon = 1e-3f;

    public int PresimSteps { get; } = presimSteps >= 0 ? presimSteps : throw new SpikeSharpException($"--presim must be ≥ 0 for srp, got {presimSteps}");

    public override string Name => "srp";
    public override string Description => $"SRP (Hao et al. AAAI 2023, spec §2): τ = {PresimSteps} pre-simulation steps, output masks from the residual potential";
    public override int ExtraSteps => PresimSteps;

    public override Tensor Simulate(SpikingNetwork snn, Tensor images, int steps)
    {
        int batch = images.Shape[0];
        if (PresimSteps > 0)
        {
            snn.Configure(batch, PresimSteps);
            snn.Run(images, PresimSteps, extra: true);
            foreach (var n in snn.IfNeurons) n.OutputMask = Mask(n.Potential!, n.Threshold);
        }
        try
        {
            snn.Configure(batch, steps);
            return snn.Run(images, steps);
        }
        finally
        {
            foreach (var n in snn.IfNeurons) n.OutputMask = null;
        }
    }

    /// <summary>m = 1 where v/θ &gt; 10⁻³, else 0.</summary>
    public static float[] Mask(ReadOnlySpan<float> potential, float theta)
    {
        var m = new float[potential.Length];
        for (int i = 0; i < m.Length; i++) m[i] = potential[i] / theta > ResidualEpsilon ? 1f : 0f;
        return m;
    }
}
