using SpikeSharp.Tensors;

namespace SpikeSharp.Autograd.Ops;

/// <summary>Shape-preserving primitives without parameters: residual add, reshape (flatten) and dropout.</summary>
public static class ElementwiseOps
{
    /// <summary>y = a + b (same shape).</summary>
    public static Variable Add(Variable a, Variable b)
    {
        if (!a.Value.SameShape(b.Value)) throw new ArgumentException($"add: shapes {a.Value.ShapeString} and {b.Value.ShapeString} differ");
        var y = Tensor.Scratch(a.Shape);
        using (Profiler.Measure("add", a.Value))
            TensorPrimitives.Add(a.Value.Data, b.Value.Data, y.Data);
        bool record = Tape.IsRecording(a, b);
        var result = new Variable(y, record);
        if (record)
            Tape.Record(() =>
            {
                if (result.Grad == null) return;
                if (a.RequiresGrad) a.AccumulateGrad(result.Grad.Data);
                if (b.RequiresGrad) b.AccumulateGrad(result.Grad.Data);
            });
        return result;
    }

    /// <summary>y = the inputs joined along dim 1 (channels): [N, C1, …] ‖ [N, C2, …] → [N, C1 + C2, …]; the other
    /// dimensions must agree.</summary>
    public static Variable Concat(IReadOnlyList<Variable> xs)
    {
        if (xs.Count == 0) throw new ArgumentException("concat: no inputs");
        var first = xs[0].Shape;
        int n = first[0], inner = xs[0].Value.Length / Math.Max(1, first[0] * first[1]);
        foreach (var x in xs)
            if (x.Shape.Length != first.Length || x.Shape[0] != n || !x.Shape.Skip(2).SequenceEqual(first.Skip(2)))
                throw new ArgumentException($"concat: shapes {string.Join(", ", xs.Select(v => v.Value.ShapeString))} differ outside dim 1");
        var shape = (int[])first.Clone();
        shape[1] = xs.Sum(x => x.Shape[1]);
        var y = Tensor.Scratch(shape);
        int rowOut = shape[1] * inner;
        using (Profiler.Measure("concat", y))
            for (int b = 0; b < n; b++)
            {
                int offset = 0;
                foreach (var x in xs)
                {
                    int rowIn = x.Shape[1] * inner;
                    x.Value.Data.AsSpan(b * rowIn, rowIn).CopyTo(y.Data.AsSpan(b * rowOut + offset, rowIn));
                    offset += rowIn;
                }
            }
        bool record = Tape.Current != null && xs.Any(x => x.RequiresGrad);
        var result = new Variable(y, record);
        if (record)
            Tape.Record(() =>
            {
                if (result.Grad == null) return;
                int offset = 0;
                foreach (var x in xs)
                {
                    int rowIn = x.Shape[1] * inner;
                    if (x.RequiresGrad)
                    {
                        var g = Tensor.Scratch(x.Shape).Data;
                        for (int b = 0; b < n; b++) result.Grad.Data.AsSpan(b * rowOut + offset, rowIn).CopyTo(g.AsSpan(b * rowIn, rowIn));
                        x.AccumulateGrad(g);
                    }
                    offset += rowIn;
                }
            });
        return result;
    }

    /// <summary>The same data viewed with a new shape (-1 infers one dimension).</summary>
    public static Variable Reshape(Variable x, params int[] shape)
    {
        var y = x.Value.Reshape(shape);
        bool record = Tape.IsRecording(x);
        var result = new Variable(y, record);
        if (record)
            Tape.Record(() => { if (result.Grad != null) x.AccumulateGrad(result.Grad.Data); });
        return result;
    }

    /// <summary>[N, ...] → [N, rest].</summary>
    public static Variable Flatten(Variable x) => Reshape(x, x.Shape[0], -1);

    /// <summary>Inverted dropout: zeroes each element with probability p and scales the rest by 1/(1−p).
    /// The mask comes from <paramref name="rng"/>, so a seeded run is reproducible.</summary>
    public static Variable Dropout(Variable x, float p, Random rng)
    {
        if (p <= 0f) return x;
        if (p >= 1f) throw new ArgumentException($"dropout probability {p} must be < 1");
        var mask = Tensor.Scratch(x.Shape).Data;
        float scale = 1f / (1f - p);
        for (int i = 0; i < mask.Length; i++) mask[i] = rng.NextSingle() < p ? 0f : scale;
        var y = Tensor.Scratch(x.Shape);
        TensorPrimitives.Multiply(x.Value.Data, mask, y.Data);
        bool record = Tape.IsRecording(x);
        var result = new Variable(y, record);
        if (record)
            Tape.Record(() =>
            {
                if (result.Grad == null) return;
                var g = Tensor.Scratch(x.Shape).Data;
                TensorPrimitives.Multiply(result.Grad.Data, mask, g);
                x.AccumulateGrad(g);
            });
        return result;
    }
}
