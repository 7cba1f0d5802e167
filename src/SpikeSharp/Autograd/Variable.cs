using SpikeSharp.Tensors;

namespace SpikeSharp.Autograd;

/// <summary>
/// A tensor in the computation graph: its value, and (after <see cref="Tape.Backward"/>) the gradient of the
/// loss with respect to it. Variables created by ops while a <see cref="Tape"/> records and any input requires
/// a gradient require one too.
/// </summary>
public class Variable
{
    public Tensor Value { get; }
    public bool RequiresGrad { get; }

    /// <summary>∂loss/∂value, allocated on first accumulation; null if no gradient reached this variable.</summary>
    public Tensor? Grad { get; private set; }

    public Variable(Tensor value, bool requiresGrad = false)
    {
        Value = value;
        RequiresGrad = requiresGrad;
    }

    public int[] Shape => Value.Shape;

    /// <summary>The gradient buffer, zero-initialized on first use; ops add into it.</summary>
    public Tensor GradBuffer() => Grad ??= Tensor.Scratch(Value.Shape, clear: true);

    /// <summary>Where a backward rule puts ∂loss/∂value: the existing gradient to add into (<c>Accumulate</c> true), or a
    /// new, uninitialized buffer the rule must overwrite completely. Clearing activation-sized gradients first cost a
    /// tenth of a ResNet-20 training step.</summary>
    public (float[] Data, bool Accumulate) GradTarget()
    {
        if (Grad != null) return (Grad.Data, true);
        Grad = Tensor.Scratch(Value.Shape);
        return (Grad.Data, false);
    }

    /// <summary>Adds g into the gradient (shapes must match in element count).</summary>
    public void AccumulateGrad(ReadOnlySpan<float> g)
    {
        if (g.Length != Value.Length) throw new ArgumentException($"gradient of length {g.Length} for a value of shape {Value.ShapeString}");
        var (dst, accumulate) = GradTarget();
        if (accumulate) System.Numerics.Tensors.TensorPrimitives.Add(dst, g, dst);
        else g.CopyTo(dst);
    }

    /// <summary>Adds g into the gradient; where there is none yet, g itself becomes it (no copy), so the caller must not
    /// change g afterwards.</summary>
    public void AccumulateOwnedGrad(Tensor g)
    {
        if (Grad != null) AccumulateGrad(g.Data);
        else if (g.Shape.AsSpan().SequenceEqual(Value.Shape)) Grad = g;
        else throw new ArgumentException($"gradient of shape {g.ShapeString} for a value of shape {Value.ShapeString}");
    }

    public void ZeroGrad() => Grad = null;

    public static implicit operator Variable(Tensor t) => new(t);

    public override string ToString() => $"Variable{Value.ShapeString}{(RequiresGrad ? " (grad)" : "")}";
}

/// <summary>A trainable tensor owned by a module. <see cref="WeightDecay"/> says whether optimizers apply weight
/// decay to it (BN and threshold parameters can be exempted).</summary>
public sealed class Parameter : Variable
{
    public bool WeightDecay { get; set; }

    public Parameter(Tensor value, bool weightDecay = true) : base(value, requiresGrad: true) => WeightDecay = weightDecay;

    /// <summary>Replaces the values in place (shapes must match), keeping references held by optimizers valid.</summary>
    public void Assign(ReadOnlySpan<float> values)
    {
        if (values.Length != Value.Length) throw new ArgumentException($"cannot assign {values.Length} values to a parameter of shape {Value.ShapeString}");
        values.CopyTo(Value.Data);
    }
}
