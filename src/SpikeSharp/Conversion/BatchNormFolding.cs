using SpikeSharp.Nn;
using SpikeSharp.Tensors;

namespace SpikeSharp.Conversion;

/// <summary>
/// Folds eval-mode batch norm into the preceding convolution or linear layer (spec §0): W' = W·γ/σ per output
/// channel, b' = γ(b − μ)/σ + β, σ = sqrt(var + eps). The folded layer is a new module (the ANN's tensors stay
/// untouched) and the BN is replaced by <see cref="Identity"/>; <see cref="ModuleSwap"/>s undo it.
/// </summary>
public static class BatchNormFolding
{
    public static List<ModuleSwap> Fold(Module root)
    {
        var swaps = new List<ModuleSwap>();
        foreach (var (_, parent) in root.NamedModules().ToList())
        {
            var children = parent.Children;
            for (int i = 0; i + 1 < children.Count; i++)
            {
                if (children[i + 1].Value is not BatchNorm bn || !parent.FeedsOnlyNext(i)) continue;
                Module? folded = children[i].Value switch
                {
                    Conv2d conv => FoldConv(conv, bn),
                    Linear lin => FoldLinear(lin, bn),
                    _ => null,
                };
                if (folded == null) continue;
                swaps.Add(ModuleSwap.Apply(parent, children[i].Key, folded));
                swaps.Add(ModuleSwap.Apply(parent, children[i + 1].Key, new Identity()));
            }
        }
        return swaps;
    }

    private static (float[] scale, float[] shift) Affine(BatchNorm bn)
    {
        int c = bn.Channels;
        float[] scale = new float[c], shift = new float[c];
        for (int i = 0; i < c; i++)
        {
            scale[i] = bn.Weight.Value.Data[i] / MathF.Sqrt(bn.RunningVar.Data[i] + bn.Eps);
            shift[i] = bn.Bias.Value.Data[i] - bn.RunningMean.Data[i] * scale[i];
        }
        return (scale, shift);
    }

    private static Conv2d FoldConv(Conv2d conv, BatchNorm bn)
    {
        var (scale, shift) = Affine(bn);
        var folded = new Conv2d(conv.InChannels, conv.OutChannels, conv.KernelSize, conv.Stride, conv.Padding, bias: true, dilation: conv.Dilation, groups: conv.Groups);
        int per = conv.Weight.Value.SizeFrom(1);
        for (int o = 0; o < conv.OutChannels; o++)
        {
            TensorPrimitives.Multiply(conv.Weight.Value.Data.AsSpan(o * per, per), scale[o], folded.Weight.Value.Data.AsSpan(o * per, per));
            float b = conv.Bias?.Value.Data[o] ?? 0f;
            folded.Bias!.Value.Data[o] = b * scale[o] + shift[o];
        }
        return folded;
    }

    private static Linear FoldLinear(Linear lin, BatchNorm bn)
    {
        var (scale, shift) = Affine(bn);
        var folded = new Linear(lin.InFeatures, lin.OutFeatures, bias: true);
        for (int o = 0; o < lin.OutFeatures; o++)
        {
            TensorPrimitives.Multiply(lin.Weight.Value.Data.AsSpan(o * lin.InFeatures, lin.InFeatures), scale[o],
                folded.Weight.Value.Data.AsSpan(o * lin.InFeatures, lin.InFeatures));
            folded.Bias!.Value.Data[o] = (lin.Bias?.Value.Data[o] ?? 0f) * scale[o] + shift[o];
        }
        return folded;
    }
}

/// <summary>One replaced child, remembered so conversion can be undone and the ANN restored.</summary>
public sealed record ModuleSwap(Module Parent, string Name, Module Original, Module Replacement)
{
    public static ModuleSwap Apply(Module parent, string name, Module replacement)
    {
        var original = parent.Children.First(c => c.Key == name).Value;
        parent.ReplaceChild(name, replacement);
        return new ModuleSwap(parent, name, original, replacement);
    }

    public void Undo() => Parent.ReplaceChild(Name, Original);
}
