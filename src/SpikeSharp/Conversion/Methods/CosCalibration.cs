using SpikeSharp.Snn;
using SpikeSharp.Tensors;

namespace SpikeSharp.Conversion.Methods;

/// <summary>
/// COS, calibrating offset spikes (Hao et al., ICLR 2023; spec §3). Layer by layer (the simulation is layer-major,
/// so each layer sees the full output sequence of the already calibrated layer before it): from v = θ/2 run ρ steps
/// on the layer's first ρ inputs and record the spike count c, the smallest pre-reset potential on firing steps P,
/// the largest potential on silent steps Q and the residual r. In units of θ: one spike too many (r &lt; 0, c ≥ 1) →
/// v0 = ½ − max(1, P − 0.999); one too few (r ≥ 1) → v0 = ½ + max(1, 1.001 − Q); else ½. Then replay all T steps
/// from the new per-sample, per-neuron v0. With k rounds, round j repeats this with the bounds r &lt; −(j−1), c &gt; j−1
/// and r ≥ j (the reference code's disabled scaffolding; 1 round is the paper's default). Requires ρ ≤ T. P and Q
/// start from the reference code's sentinels ±1000, not ±∞: a neuron that fired on every step and still has r ≥ 1 gets
/// v0 = ½ + 1001.001 (it fires throughout), as there.
/// </summary>
[ConversionMethod("cos", 2)]
public sealed class CosCalibration : ConversionMethod
{
    public CosCalibration(MethodOptions o) : this(o.Presim) { }

    /// <summary>The reference code's stand-in for "no firing step" (P) and, negated, "no silent step" (Q).</summary>
    private const float NoStep = 1000f;

    public int PresimSteps { get; }
    public int Rounds { get; }

    public CosCalibration(int presimSteps = 4, int rounds = 1)
    {
        if (presimSteps < 1) throw new SpikeSharpException($"--presim must be ≥ 1 for cos, got {presimSteps}");
        if (rounds < 1) throw new SpikeSharpException($"COS needs at least one round, got {rounds}");
        (PresimSteps, Rounds) = (presimSteps, rounds);
    }

    public override string Name => "cos";
    public override string Description => $"COS (Hao et al. ICLR 2023, spec §3): ρ = {PresimSteps} calibration steps per layer, per-neuron initial-potential offsets" + (Rounds > 1 ? $", {Rounds} rounds" : "");
    public override int ExtraSteps => PresimSteps;

    public override void Validate(int steps)
    {
        if (PresimSteps > steps)
            throw new SpikeSharpException($"cos: ρ = {PresimSteps} calibration steps exceed the horizon T = {steps}; COS replays the first ρ inputs, so ρ ≤ T (lower --presim or raise --timesteps)");
    }

    public override Tensor Simulate(SpikingNetwork snn, Tensor images, int steps)
    {
        foreach (var n in snn.IfNeurons) n.BeforeRun = (neuron, input, constant) => neuron.InitialOffset = Offsets(neuron, input.Data, constant);
        try
        {
            snn.Configure(images.Shape[0], steps);
            return snn.Run(images, steps);
        }
        finally
        {
            foreach (var n in snn.IfNeurons) { n.BeforeRun = null; n.InitialOffset = null; }
        }
    }

    /// <summary>Per sample and neuron: the shift of v0 in absolute units (θ·(v0 − ½)) for the layer's input sequence
    /// ([T·B·S], or [B·S] when constant).</summary>
    public float[] Offsets(IfNeuron neuron, ReadOnlySpan<float> input, bool constant)
    {
        int n = constant ? input.Length : input.Length / neuron.Steps;
        float theta = neuron.Threshold, start = neuron.InitialFraction;
        bool strict = neuron.Rule == FireRule.Greater;
        var v0 = new float[n];
        Array.Fill(v0, start);
        for (int round = 1; round <= Rounds; round++)
            for (int i = 0; i < n; i++)
            {
                float v = v0[i], pMin = NoStep, qMax = -NoStep;
                int count = 0;
                for (int t = 0; t < PresimSteps; t++)
                {
                    v += (constant ? input[i] : input[t * n + i]) / theta;
                    if (IfStep.Fires(v, 1f, strict)) { pMin = Math.Min(pMin, v); v -= 1f; count++; } // IF in units of θ
                    else qMax = Math.Max(qMax, v);
                }
                if (v < -(round - 1) && count > round - 1) v0[i] -= Math.Max(1f, pMin - 0.999f);
                else if (v >= round) v0[i] += Math.Max(1f, 1.001f - qMax);
            }
        var offsets = new float[n];
        for (int i = 0; i < n; i++) offsets[i] = (v0[i] - start) * theta;
        return offsets;
    }
}
