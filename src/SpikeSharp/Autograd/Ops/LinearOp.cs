using SpikeSharp.Tensors;

namespace SpikeSharp.Autograd.Ops;

/// <summary>Fully connected layer y = x·wᵀ + b with its backward rule. Shapes: x [N,In], w [Out,In], b [Out].</summary>
public static class LinearOp
{
    public static Variable Forward(Variable x, Variable w, Variable? b)
    {
        if (x.Shape.Length != 2 || w.Shape.Length != 2 || x.Shape[1] != w.Shape[1])
            throw new ArgumentException($"linear: input {x.Value.ShapeString} does not fit weight {w.Value.ShapeString} (expected [N,{(w.Shape.Length == 2 ? w.Shape[1] : 0)}])");
        int n = x.Shape[0], inF = x.Shape[1], outF = w.Shape[0];
        if (b != null && b.Value.Length != outF) throw new ArgumentException($"linear: bias has {b.Value.Length} elements, expected {outF}");
        using var _ = Profiler.Measure("linear fwd", x.Value);
        var y = Tensor.Scratch(n, outF);
        Gemm.MultiplyParallel(false, true, n, outF, inF, x.Value.Data, inF, w.Value.Data, inF, y.Data, outF);
        OpCounter.Add("linear", (long)outF * inF, x.Value);
        if (b != null)
            for (int i = 0; i < n; i++) TensorPrimitives.Add(y.Data.AsSpan(i * outF, outF), b.Value.Data, y.Data.AsSpan(i * outF, outF));
        bool record = Tape.IsRecording(x, w, b);
        var result = new Variable(y, record);
        if (record)
            Tape.Record(() =>
            {
                var gy = result.Grad;
                if (gy == null) return;
                using var _ = Profiler.Measure("linear bwd", x.Value);
                if (x.RequiresGrad)
                    Gemm.MultiplyParallel(false, false, n, inF, outF, gy.Data, outF, w.Value.Data, inF, x.GradBuffer().Data, inF, accumulate: true);
                if (w.RequiresGrad)
                    Gemm.MultiplyParallel(true, false, outF, inF, n, gy.Data, outF, x.Value.Data, inF, w.GradBuffer().Data, inF, accumulate: true);
                if (b is { RequiresGrad: true })
                {
                    var gb = b.GradBuffer().Data;
                    for (int i = 0; i < n; i++) TensorPrimitives.Add(gb, gy.Data.AsSpan(i * outF, outF), gb);
                }
            });
        return result;
    }
}
