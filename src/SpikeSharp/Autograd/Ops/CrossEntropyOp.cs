using SpikeSharp.Tensors;

namespace SpikeSharp.Autograd.Ops;

/// <summary>Mean softmax cross-entropy of logits [N,K] against integer labels, with optional label smoothing ε
/// (target = (1−ε)·onehot + ε/K, as PyTorch's label_smoothing).</summary>
public static class CrossEntropyOp
{
    public static Variable Forward(Variable logits, ReadOnlySpan<int> labels, float labelSmoothing = 0f)
    {
        if (logits.Shape.Length != 2) throw new ArgumentException($"cross-entropy expects logits [N,K], got {logits.Value.ShapeString}");
        int n = logits.Shape[0], k = logits.Shape[1];
        if (labels.Length != n) throw new ArgumentException($"cross-entropy: {labels.Length} labels for {n} rows of logits");
        var z = logits.Value.Data;
        var probs = new float[n * k];
        double loss = 0;
        float off = labelSmoothing / k, on = 1f - labelSmoothing + off;
        for (int i = 0; i < n; i++)
        {
            int y = labels[i];
            if ((uint)y >= (uint)k) throw new ArgumentException($"label {y} out of range for {k} classes");
            var row = z.AsSpan(i * k, k);
            var p = probs.AsSpan(i * k, k);
            float m = System.Numerics.Tensors.TensorPrimitives.Max(row);
            double sum = 0;
            for (int j = 0; j < k; j++) { p[j] = MathF.Exp(row[j] - m); sum += p[j]; }
            double logSum = Math.Log(sum) + m;
            for (int j = 0; j < k; j++)
            {
                p[j] = (float)(p[j] / sum);
                double target = j == y ? on : off;
                if (target != 0) loss -= target * (row[j] - logSum);
            }
        }
        var result = new Variable(new Tensor(new[] { (float)(loss / n) }, 1), Tape.IsRecording(logits));
        if (result.RequiresGrad)
        {
            int[] labelCopy = labels.ToArray();
            Tape.Record(() =>
            {
                if (result.Grad == null) return;
                float scale = result.Grad.Data[0] / n;
                var g = new float[n * k];
                for (int i = 0; i < n; i++)
                    for (int j = 0; j < k; j++)
                        g[i * k + j] = (probs[i * k + j] - (j == labelCopy[i] ? on : off)) * scale;
                logits.AccumulateGrad(g);
            });
        }
        return result;
    }
}
