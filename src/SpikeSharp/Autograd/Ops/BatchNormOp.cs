using SpikeSharp.Tensors;

namespace SpikeSharp.Autograd.Ops;

/// <summary>
/// Batch normalization of x [N,C] or [N,C,H,W] with its backward rule. Training mode normalizes with the batch
/// statistics (biased variance) and updates the running averages with momentum (unbiased variance, as PyTorch);
/// eval mode applies the running statistics as a per-channel affine map.
/// </summary>
public static class BatchNormOp
{
    public static Variable Forward(Variable x, Variable gamma, Variable beta, float[] runningMean, float[] runningVar,
        bool training, float momentum = 0.1f, float eps = 1e-5f)
    {
        using var _ = Profiler.Measure(training ? "bn fwd (train)" : "bn fwd", x.Value);
        var xs = x.Shape;
        if (xs.Length < 2 || xs[1] != gamma.Value.Length)
            throw new ArgumentException($"batchnorm: input {x.Value.ShapeString} does not have {gamma.Value.Length} channels in dim 1");
        int n = xs[0], c = xs[1], s = x.Value.SizeFrom(2);
        float[] mean = new float[c], invStd = new float[c], scale = new float[c], shift = new float[c];
        if (training)
        {
            if ((long)n * s < 2) throw new ArgumentException($"batchnorm in training mode needs more than one value per channel, got input {x.Value.ShapeString}");
            var variance = new float[c];
            BatchNormKernels.Statistics(x.Value.Data, n, c, s, mean, variance);
            float unbias = (float)((double)n * s / (n * s - 1));
            for (int ch = 0; ch < c; ch++)
            {
                invStd[ch] = InvStd(variance[ch], eps);
                runningMean[ch] = (1 - momentum) * runningMean[ch] + momentum * mean[ch];
                runningVar[ch] = (1 - momentum) * runningVar[ch] + momentum * variance[ch] * unbias;
            }
        }
        else
        {
            for (int ch = 0; ch < c; ch++) { mean[ch] = runningMean[ch]; invStd[ch] = InvStd(runningVar[ch], eps); }
        }
        Fold(gamma.Value.Data, beta.Value.Data, mean, invStd, scale, shift);
        var y = Tensor.Scratch(xs);
        BatchNormKernels.Affine(x.Value.Data, n, c, s, scale, shift, y.Data);

        bool record = Tape.IsRecording(x, gamma, beta);
        var result = new Variable(y, record);
        if (record)
            Tape.Record(() =>
            {
                var gy = result.Grad;
                if (gy == null) return;
                using var _ = Profiler.Measure("bn bwd", x.Value);
                float[] sumGy = new float[c], sumGyXhat = new float[c];
                BatchNormKernels.GradSums(x.Value.Data, gy.Data, n, c, s, mean, invStd, sumGy, sumGyXhat);
                if (gamma.RequiresGrad) gamma.AccumulateGrad(sumGyXhat);
                if (beta.RequiresGrad) beta.AccumulateGrad(sumGy);
                if (!x.RequiresGrad) return;
                float[] a = new float[c], b = new float[c], d = new float[c];
                float count = (float)n * s;
                for (int ch = 0; ch < c; ch++)
                {
                    a[ch] = scale[ch];
                    if (training)
                    {
                        // gx = scale·(gy − Σgy/M − x̂·Σ(gy·x̂)/M), x̂ = (x − μ)·invStd, written as a·gy + b·x + d.
                        b[ch] = -scale[ch] * invStd[ch] * sumGyXhat[ch] / count;
                        d[ch] = -scale[ch] * sumGy[ch] / count - b[ch] * mean[ch];
                    }
                }
                var (gx, accumulate) = x.GradTarget();
                BatchNormKernels.AffineGrad(gy.Data, x.Value.Data, n, c, s, a, b, d, gx, accumulate);
            });
        return result;
    }

    /// <summary>Eval mode as y = scale·x + shift per channel, computed exactly as <see cref="Forward"/> does (fused
    /// inference relies on the same rounding).</summary>
    public static (float[] Scale, float[] Shift) EvalAffine(float[] gamma, float[] beta, float[] runningMean, float[] runningVar, float eps)
    {
        int c = gamma.Length;
        float[] invStd = new float[c], scale = new float[c], shift = new float[c];
        for (int ch = 0; ch < c; ch++) invStd[ch] = InvStd(runningVar[ch], eps);
        Fold(gamma, beta, runningMean, invStd, scale, shift);
        return (scale, shift);
    }

    private static float InvStd(float variance, float eps) => 1f / MathF.Sqrt(variance + eps);

    private static void Fold(float[] gamma, float[] beta, float[] mean, float[] invStd, float[] scale, float[] shift)
    {
        for (int ch = 0; ch < gamma.Length; ch++) { scale[ch] = gamma[ch] * invStd[ch]; shift[ch] = beta[ch] - mean[ch] * scale[ch]; }
    }
}
