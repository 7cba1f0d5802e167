using System.Numerics;
using SpikeSharp.Autograd;
using SpikeSharp.Tensors;

namespace SpikeSharp.Nn;

/// <summary>
/// The fine-grained spike-count L1 of Datta et al. (spec §5, "hoyer_loss" in their code): for every QCFS output h
/// with level k = h·L/λ, loss_spk = Σ popcount(k), the number of spikes the bit-serial SNN will emit. Surrogate
/// gradient ∂loss_spk/∂k := 1 (each unit of k gets the weight, like an L1 on k), so ∂(β·loss_spk)/∂h = β·L/λ;
/// NOTE: λ is treated as constant inside k (assumption; the paper body was not available). While a scope is active,
/// QCFS layers add their counts here and, when a tape records and β &gt; 0, the gradient.
/// </summary>
public sealed class SpikeCountRegularizer : IDisposable
{
    [ThreadStatic] private static SpikeCountRegularizer? t_current;
    private readonly SpikeCountRegularizer? _previous;

    public float Beta { get; }

    /// <summary>Σ popcount(k) over all QCFS outputs since the last <see cref="Reset"/>.</summary>
    public long SpikeCount { get; private set; }

    private SpikeCountRegularizer(float beta)
    {
        if (!(beta >= 0)) throw new SpikeSharpException($"spike-count β must be ≥ 0, got {beta}");
        (Beta, _previous) = (beta, t_current);
    }

    public static SpikeCountRegularizer Start(float beta) => t_current = new SpikeCountRegularizer(beta);

    public void Reset() => SpikeCount = 0;

    /// <summary>β·Σ popcount(k) for the counts since the last reset.</summary>
    public double Loss => Beta * (double)SpikeCount;

    /// <summary>popcount(k) for one QCFS value h (k = round(h·L/λ)).</summary>
    public static int Popcount(float h, float lambda, int levels) => BitOperations.PopCount((uint)Math.Max(0, (int)MathF.Round(h * levels / lambda)));

    /// <summary>Counts the spikes of a QCFS output and, if recording, adds β·L/λ to its gradient.</summary>
    internal static Variable Apply(Variable y, float lambda, int levels)
    {
        if (t_current is not { } reg) return y;
        long count = 0;
        foreach (float h in y.Value.Data) count += Popcount(h, lambda, levels);
        reg.SpikeCount += count;
        if (reg.Beta == 0 || !Tape.IsRecording(y)) return y;
        var result = new Variable(y.Value, requiresGrad: true);
        float g = reg.Beta * levels / lambda;
        Tape.Record(() =>
        {
            if (result.Grad != null) y.AccumulateGrad(result.Grad.Data);
            var gy = y.GradBuffer().Data;
            TensorPrimitives.Add(gy, g, gy);
        });
        return result;
    }

    public void Dispose()
    {
        if (t_current == this) t_current = _previous;
    }
}
