using SpikeSharp.Snn;

namespace SpikeSharp.Conversion.Methods;

/// <summary>
/// Layer-wise BPTT of dual-phase Phase II (spec §4b), reduced to the initial potentials: for one IF layer, given its
/// recorded input currents I[t, b, i] and the ANN activations a[b, i], train the per-neuron offset of v0 so the SNN
/// rate r[b, i] = Σ_t θ·s_t / T matches a under the per-sample loss KL(softmax(a_b) ‖ log_softmax(r_b)). The spike uses
/// the tanh surrogate ∂s/∂m = (α/θ)·½(1 − tanh²(α(m − θ)/θ)), α = 2.5, through the soft reset (v = m − θ·s) and back
/// through time. Adam; early stopping on the validation loss. NOTE: the paper also trains the layer's weights and bias;
/// here they stay fixed (deviation, see docs/conversion-methods.md).
/// </summary>
public sealed class LayerwiseBptt
{
    public float Alpha { get; init; } = 2.5f;
    public float LearningRate { get; init; } = 1e-2f;
    public int MaxEpochs { get; init; } = 30;
    public int Patience { get; init; } = 5;
    public int BatchSize { get; init; } = 128;

    /// <summary>One layer's data: currents [T, N, S] (or [N, S] constant), ANN targets [N, S].</summary>
    public sealed record LayerData(float[] Currents, bool Constant, float[] Targets, int Samples, int Neurons, int Steps);

    /// <summary>Trains the offsets (absolute units, length S) in place; returns (validation loss before, after).</summary>
    public (double Before, double After) Train(IfNeuron neuron, float[] offsets, LayerData train, LayerData valid)
    {
        int s = train.Neurons;
        var grad = new float[s];
        var m1 = new float[s];
        var m2 = new float[s];
        var best = (float[])offsets.Clone();
        double before = Loss(neuron, offsets, valid, null), bestLoss = before;
        int bad = 0, step = 0;
        for (int epoch = 0; epoch < MaxEpochs && bad < Patience; epoch++)
        {
            for (int b0 = 0; b0 < train.Samples; b0 += BatchSize)
            {
                Array.Clear(grad);
                Loss(neuron, offsets, train, grad, b0, Math.Min(BatchSize, train.Samples - b0));
                step++;
                float c1 = 1 - MathF.Pow(0.9f, step), c2 = 1 - MathF.Pow(0.999f, step), lr = LearningRate * neuron.Threshold;
                for (int i = 0; i < s; i++)
                {
                    m1[i] = 0.9f * m1[i] + 0.1f * grad[i];
                    m2[i] = 0.999f * m2[i] + 0.001f * grad[i] * grad[i];
                    offsets[i] -= lr * (m1[i] / c1) / (MathF.Sqrt(m2[i] / c2) + 1e-8f);
                }
            }
            double val = Loss(neuron, offsets, valid, null);
            if (val < bestLoss - 1e-9) { bestLoss = val; Array.Copy(offsets, best, s); bad = 0; }
            else bad++;
        }
        Array.Copy(best, offsets, s);
        return (before, bestLoss);
    }

    /// <summary>Mean per-sample KL over samples [b0, b0+count) (all when count is 0); adds ∂loss/∂offset into grad.</summary>
    public double Loss(IfNeuron neuron, float[] offsets, LayerData d, float[]? grad, int b0 = 0, int count = 0)
    {
        if (count == 0) count = d.Samples;
        int s = d.Neurons, steps = d.Steps;
        float theta = neuron.Threshold, v0 = neuron.InitialFraction * theta;
        bool strict = neuron.Rule == FireRule.Greater;
        var partialGrad = grad == null ? null : new float[Tensors.WorkerPool.Shared.Count * s];
        var losses = new double[count];
        Tensors.WorkerPool.Shared.For(count, (k, worker) =>
        {
            int b = b0 + k;
            var m = Tensors.ThreadScratch.Get(4, steps * s);
            var rate = Tensors.ThreadScratch.Get(5, s).AsSpan(0, s);
            rate.Clear();
            for (int i = 0; i < s; i++)
            {
                float v = v0 + offsets[i];
                for (int t = 0; t < steps; t++)
                {
                    v += d.Constant ? d.Currents[b * s + i] : d.Currents[((long)t * d.Samples + b) * s + i];
                    m[t * s + i] = v;
                    if (strict ? v > theta : v >= theta) { v -= theta; rate[i] += theta; }
                }
                rate[i] /= steps;
            }
            var target = d.Targets.AsSpan(b * s, s);
            var p = Tensors.ThreadScratch.Get(6, s).AsSpan(0, s);
            var q = Tensors.ThreadScratch.Get(7, s).AsSpan(0, s);
            TensorPrimitives.SoftMax(target, p);
            TensorPrimitives.SoftMax(rate, q);
            double kl = 0;
            for (int i = 0; i < s; i++) if (p[i] > 0) kl += p[i] * (Math.Log(p[i]) - Math.Log(Math.Max(q[i], 1e-30f)));
            losses[k] = kl;
            if (partialGrad == null) return;
            var g = partialGrad.AsSpan(worker * s, s);
            for (int i = 0; i < s; i++)
            {
                // ∂KL/∂r_i = q_i − p_i (mean over the batch); r = Σ θ s_t / T.
                float gr = (q[i] - p[i]) / count, gv = 0;
                for (int t = steps - 1; t >= 0; t--)
                {
                    float u = Alpha * (m[t * s + i] - theta) / theta, th = MathF.Tanh(u);
                    float ds = Alpha / theta * 0.5f * (1 - th * th);
                    gv = gv * (1 - theta * ds) + theta / steps * gr * ds;
                }
                g[i] += gv;
            }
        });
        if (grad != null)
            for (int w = 0; w < Tensors.WorkerPool.Shared.Count; w++) TensorPrimitives.Add(grad, partialGrad.AsSpan(w * s, s), grad);
        return losses.Sum() / count;
    }
}
