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
        var norm = Normalization.Of(x.Value, gamma, beta, runningMean, runningVar, training, momentum, eps);
        var y = Tensor.Scratch(x.Shape);
        BatchNormKernels.Affine(x.Value.Data, norm.N, norm.C, norm.S, norm.Scale, norm.Shift, y.Data);

        bool record = Tape.IsRecording(x, gamma, beta);
        var result = new Variable(y, record);
        if (record)
            Tape.Record(() =>
            {
                var gy = result.Grad;
                if (gy == null) return;
                using var _ = Profiler.Measure("bn bwd", x.Value);
                float[] sumGy = new float[norm.C], sumGyXhat = new float[norm.C];
                BatchNormKernels.GradSums(x.Value.Data, gy.Data, norm.N, norm.C, norm.S, norm.Mean, norm.InvStd, sumGy, sumGyXhat);
                norm.Backward(x, gamma, beta, gy.Data, sumGy, sumGyXhat);
            });
        return result;
    }

    /// <summary>
    /// f(BN(x) [+ addend]) as one op, for BN → activation and a residual block's BN → + shortcut → activation. Each image's
    /// pre-activation is made in cache and never stored: forward reads x (twice, with the statistics) and writes f's
    /// output, where separate ops write and re-read BN's output and the sum. Backward recomputes the pre-activation.
    /// Outputs and the gradients of x, γ, β and the addend have the same bits as the separate ops; f's parameter
    /// gradients are summed per image instead of per chunk, so they can differ in the last bits.
    /// </summary>
    public static Variable ForwardActivation(Variable x, Variable gamma, Variable beta, float[] runningMean, float[] runningVar,
        bool training, float momentum, float eps, Variable? addend, IActivationFunction f)
    {
        using var _ = Profiler.Measure(f, addend == null ? "fwd after bn" : "fwd after bn + add", x.Value);
        if (addend != null && !addend.Shape.AsSpan().SequenceEqual(x.Shape))
            throw new ArgumentException($"batchnorm + add: the addend {addend.Value.ShapeString} does not match the input {x.Value.ShapeString}");
        var norm = Normalization.Of(x.Value, gamma, beta, runningMean, runningVar, training, momentum, eps);
        int image = norm.C * norm.S;
        float[] xd = x.Value.Data;
        float[]? sd = addend?.Value.Data;
        var a = Tensor.Scratch(x.Shape);
        float[] ad = a.Data;
        // Image i's pre-activation, BN(x) [+ addend], in this worker's scratch.
        Span<float> PreActivation(int i)
        {
            var z = ThreadScratch.Get(0, image).AsSpan(0, image);
            BatchNormKernels.AffineImage(xd.AsSpan(i * image, image), sd != null ? sd.AsSpan(i * image, image) : default, norm.Scale, norm.Shift, z);
            return z;
        }
        WorkerPool.Shared.For(norm.N, (i, _) => f.Forward(PreActivation(i), ad.AsSpan(i * image, image)));

        var ps = f.ActivationParameters;
        bool record = Tape.IsRecording(x, gamma, beta) || (Tape.Current != null && ((addend?.RequiresGrad ?? false) || ps.Any(p => p.RequiresGrad)));
        var result = new Variable(a, record);
        if (record)
            Tape.Record(() =>
            {
                var ga = result.Grad;
                if (ga == null) return;
                using var _ = Profiler.Measure(f, addend == null ? "bwd after bn" : "bwd after bn + add", x.Value);
                int c = norm.C, stride = 2 * c + ps.Count;
                var gz = Tensor.Scratch(x.Shape); // ∂loss/∂(BN(x) + addend)
                // Per image: Σgz and Σgz·(x − μ) per channel, then f's parameter sums; reduced in image order below so the
                // result does not depend on scheduling.
                var partial = new float[norm.N * stride];
                WorkerPool.Shared.For(norm.N, (i, _) =>
                {
                    var g = gz.Data.AsSpan(i * image, image);
                    g.Clear();
                    var p = partial.AsSpan(i * stride, stride);
                    f.Backward(PreActivation(i), ad.AsSpan(i * image, image), ga.Data.AsSpan(i * image, image), g, p[(2 * c)..]);
                    for (int ch = 0; ch < c; ch++)
                        (p[ch], p[c + ch]) = BatchNormKernels.GradSumsPlane(g.Slice(ch * norm.S, norm.S), xd.AsSpan(i * image + ch * norm.S, norm.S), norm.Mean[ch]);
                });
                float[] sumGy = new float[c], sumGyXhat = new float[c];
                for (int ch = 0; ch < c; ch++)
                {
                    double sa = 0, sb = 0;
                    for (int i = 0; i < norm.N; i++) { sa += partial[i * stride + ch]; sb += partial[i * stride + c + ch]; }
                    sumGy[ch] = (float)sa;
                    sumGyXhat[ch] = (float)(sb * norm.InvStd[ch]);
                }
                ActivationOp.AddParameterGradients(ps, partial, norm.N, stride, 2 * c);
                norm.Backward(x, gamma, beta, gz.Data, sumGy, sumGyXhat);
                if (addend is { RequiresGrad: true }) addend.AccumulateOwnedGrad(gz);
            });
        return result;
    }

    /// <summary>Eval mode as y = scale·x + shift per channel, computed exactly as <see cref="Forward"/> does (fused
    /// inference relies on the same rounding).</summary>
    public static (float[] Scale, float[] Shift) EvalAffine(float[] gamma, float[] beta, float[] runningMean, float[] runningVar, float eps)
    {
        int c = gamma.Length;
        float[] invStd = new float[c], scale = new float[c], shift = new float[c];
        for (int ch = 0; ch < c; ch++) invStd[ch] = InverseStd(runningVar[ch], eps);
        Fold(gamma, beta, runningMean, invStd, scale, shift);
        return (scale, shift);
    }

    private static float InverseStd(float variance, float eps) => 1f / MathF.Sqrt(variance + eps);

    private static void Fold(float[] gamma, float[] beta, float[] mean, float[] invStd, float[] scale, float[] shift)
    {
        for (int ch = 0; ch < gamma.Length; ch++) { scale[ch] = gamma[ch] * invStd[ch]; shift[ch] = beta[ch] - mean[ch] * scale[ch]; }
    }

    /// <summary>One call's statistics (batch or running) and the per-channel affine map y = scale·x + shift they give.</summary>
    private sealed record Normalization(int N, int C, int S, bool Training, float[] Mean, float[] InvStd, float[] Scale, float[] Shift)
    {
        /// <summary>Checks x, computes the statistics and, in training, updates the running averages.</summary>
        public static Normalization Of(Tensor x, Variable gamma, Variable beta, float[] runningMean, float[] runningVar,
            bool training, float momentum, float eps)
        {
            var xs = x.Shape;
            if (xs.Length < 2 || xs[1] != gamma.Value.Length)
                throw new ArgumentException($"batchnorm: input {x.ShapeString} does not have {gamma.Value.Length} channels in dim 1");
            int n = xs[0], c = xs[1], s = x.SizeFrom(2);
            float[] mean = new float[c], invStd = new float[c], scale = new float[c], shift = new float[c];
            if (training)
            {
                if ((long)n * s < 2) throw new ArgumentException($"batchnorm in training mode needs more than one value per channel, got input {x.ShapeString}");
                var variance = new float[c];
                BatchNormKernels.Statistics(x.Data, n, c, s, mean, variance);
                float unbias = (float)((double)n * s / (n * s - 1));
                for (int ch = 0; ch < c; ch++)
                {
                    invStd[ch] = InverseStd(variance[ch], eps);
                    runningMean[ch] = (1 - momentum) * runningMean[ch] + momentum * mean[ch];
                    runningVar[ch] = (1 - momentum) * runningVar[ch] + momentum * variance[ch] * unbias;
                }
            }
            else
            {
                for (int ch = 0; ch < c; ch++) { mean[ch] = runningMean[ch]; invStd[ch] = InverseStd(runningVar[ch], eps); }
            }
            Fold(gamma.Value.Data, beta.Value.Data, mean, invStd, scale, shift);
            return new Normalization(n, c, s, training, mean, invStd, scale, shift);
        }

        /// <summary>γ, β and x gradients from gy (∂loss/∂output) and its per-channel sums Σgy and Σgy·x̂.</summary>
        public void Backward(Variable x, Variable gamma, Variable beta, float[] gy, float[] sumGy, float[] sumGyXhat)
        {
            if (gamma.RequiresGrad) gamma.AccumulateGrad(sumGyXhat);
            if (beta.RequiresGrad) beta.AccumulateGrad(sumGy);
            if (!x.RequiresGrad) return;
            float[] a = new float[C], b = new float[C], d = new float[C];
            float count = (float)N * S;
            for (int ch = 0; ch < C; ch++)
            {
                a[ch] = Scale[ch];
                if (Training)
                {
                    // gx = scale·(gy − Σgy/M − x̂·Σ(gy·x̂)/M), x̂ = (x − μ)·invStd, written as a·gy + b·x + d.
                    b[ch] = -Scale[ch] * InvStd[ch] * sumGyXhat[ch] / count;
                    d[ch] = -Scale[ch] * sumGy[ch] / count - b[ch] * Mean[ch];
                }
            }
            var (gx, accumulate) = x.GradTarget();
            BatchNormKernels.AffineGrad(gy, x.Value.Data, N, C, S, a, b, d, gx, accumulate);
        }
    }
}
