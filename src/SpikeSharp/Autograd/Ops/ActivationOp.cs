using SpikeSharp.Tensors;

namespace SpikeSharp.Autograd.Ops;

/// <summary>
/// An elementwise activation with scalar parameters (e.g. QCFS's λ), defined by its forward and backward over
/// spans. New activations implement this and run through <see cref="ActivationOp"/>; the tape needs no change.
/// </summary>
public interface IActivationFunction
{
    /// <summary>Scalar parameters the activation learns (may be empty).</summary>
    IReadOnlyList<Parameter> ActivationParameters { get; }

    /// <summary>y[i] = f(x[i]).</summary>
    void Forward(ReadOnlySpan<float> x, Span<float> y);

    /// <summary>gx[i] += gy[i]·∂f/∂x(x[i]) and gParams[j] += Σᵢ gy[i]·∂f/∂pⱼ(x[i]); y is the forward output.</summary>
    void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> gy, Span<float> gx, Span<float> gParams);
}

/// <summary>Runs an <see cref="IActivationFunction"/> over a tensor in parallel chunks and records its backward.</summary>
public static class ActivationOp
{
    private const int Chunk = 1 << 15;

    public static Variable Forward(Variable x, IActivationFunction f, WorkerPool? pool = null)
    {
        pool ??= WorkerPool.Shared;
        using var _ = Profiler.Measure(f, "fwd", x.Value);
        var y = Tensor.Scratch(x.Shape);
        float[] xd = x.Value.Data, yd = y.Data;
        int chunks = (xd.Length + Chunk - 1) / Chunk;
        pool.For(chunks, (c, _) =>
        {
            int s = c * Chunk, len = Math.Min(Chunk, xd.Length - s);
            f.Forward(xd.AsSpan(s, len), yd.AsSpan(s, len));
        });
        var ps = f.ActivationParameters;
        bool paramsNeedGrad = ps.Any(p => p.RequiresGrad);
        bool record = Tape.Current != null && (x.RequiresGrad || paramsNeedGrad);
        var result = new Variable(y, record);
        if (record)
            Tape.Record(() =>
            {
                var gy = result.Grad;
                if (gy == null) return;
                using var _ = Profiler.Measure(f, "bwd", x.Value);
                var (gx, accumulate) = x.RequiresGrad ? x.GradTarget() : (Tensor.Scratch(x.Shape).Data, false);
                // Parameter gradients are summed per chunk, then reduced in chunk order
                // so the result does not depend on scheduling.
                var partial = new float[chunks * ps.Count];
                pool.For(chunks, (c, _) =>
                {
                    int s = c * Chunk, len = Math.Min(Chunk, xd.Length - s);
                    if (!accumulate) gx.AsSpan(s, len).Clear(); // cleared chunk by chunk, in cache, just before the rule adds into it
                    f.Backward(xd.AsSpan(s, len), yd.AsSpan(s, len), gy.Data.AsSpan(s, len), gx.AsSpan(s, len),
                        partial.AsSpan(c * ps.Count, ps.Count));
                });
                AddParameterGradients(ps, partial, chunks, ps.Count, 0);
            });
        return result;
    }

    /// <summary>Adds each scalar parameter's gradient, summed over per-item partials (item k's sum for parameter j at
    /// partial[k·stride + offset + j]) in item order, so the result does not depend on scheduling.</summary>
    internal static void AddParameterGradients(IReadOnlyList<Parameter> ps, float[] partial, int items, int stride, int offset)
    {
        for (int j = 0; j < ps.Count; j++)
        {
            if (!ps[j].RequiresGrad) continue;
            float sum = 0;
            for (int k = 0; k < items; k++) sum += partial[k * stride + offset + j];
            ps[j].GradBuffer().Data[0] += sum;
        }
    }
}
