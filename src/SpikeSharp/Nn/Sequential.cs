using SpikeSharp.Autograd;

namespace SpikeSharp.Nn;

/// <summary>A module whose forward pass runs its children in registration order.</summary>
public abstract class ModuleChain : Module
{
    public override Variable Forward(Variable x) => Run(x, Children.Count, null, null);

    /// <summary>Index of the convolution this chain ends in (followed only by identities and an eval BN), or −1.</summary>
    internal int ConvolutionTail()
    {
        for (int i = Children.Count - 1; i >= 0; i--)
            if (Children[i].Value is Conv2d) return Fusion.MatchConvolution(Children, i, out _, out _, out int next) && next == Children.Count ? i : -1;
        return -1;
    }

    /// <summary>The BN this chain ends in (a residual branch), or null.</summary>
    internal BatchNorm? TailBatchNorm => Children.Count > 0 ? Children[^1].Value as BatchNorm : null;

    /// <summary>Runs every child but the last (the <see cref="TailBatchNorm"/> a residual block fuses with its add and activation).</summary>
    internal Variable ForwardAllButLast(Variable x) => Run(x, Children.Count - 1, null, null);

    /// <summary>consumer(chain(x) + addend), with the chain's last convolution, its BN, the add and the consumer fused into
    /// one pass (residual blocks in SNN inference). The chain must end in a convolution (<see cref="ConvolutionTail"/>).</summary>
    internal Variable ForwardInto(Variable x, IConvOutputConsumer consumer, Variable addend) => Run(x, ConvolutionTail(), consumer, addend);

    /// <summary>Runs children [0, end), fusing conv → consumer pairs inside, then (with a consumer) the fused tail.</summary>
    private Variable Run(Variable x, int end, IConvOutputConsumer? tailConsumer, Variable? addend)
    {
        var arena = ReleasingArena;
        var children = Children;
        float[]? owned = null; // the latest output made inside this chain (never the chain's input)
        void Next(Variable y)
        {
            if (arena != null && !ReferenceEquals(y.Value.Data, x.Value.Data))
            {
                // y is a new array: the previous intermediate (possibly seen through a reshape) is consumed.
                if (owned != null) arena.Release(owned);
                owned = y.Value.Data;
            }
            x = y;
        }
        for (int i = 0; i < end; i++)
        {
            if (Fusion.ConvolutionsEnabled && Fusion.MatchConvolution(children, i, out var conv, out var convBn, out int next) && next < end
                && children[next].Value is IConvOutputConsumer consumer && consumer.CanFuse(x.Shape[0]))
            {
                Next(Fusion.RunConvolution(conv, convBn, x, null, consumer));
                i = next;
            }
            else if (Fusion.MatchNormalization(children, i, end, out var bn, out var activation))
            {
                Next(activation.ForwardAfterBatchNorm(bn, x, null));
                i++;
            }
            else Next(children[i].Value.Forward(x));
        }
        if (tailConsumer != null)
        {
            Fusion.MatchConvolution(children, end, out var conv, out var convBn, out _);
            Next(Fusion.RunConvolution(conv, convBn, x, addend, tailConsumer));
        }
        return x;
    }
}

/// <summary>Runs children in order; children are named "0", "1", … as in PyTorch.</summary>
public sealed class Sequential : ModuleChain
{
    public Sequential(params Module[] modules)
    {
        foreach (var m in modules) Add(m);
    }

    public int Count => Children.Count;

    public Module this[int index] => Children[index].Value;

    public Sequential Add(Module module)
    {
        AddModule(Children.Count.ToString(System.Globalization.CultureInfo.InvariantCulture), module);
        return this;
    }
}

/// <summary>Returns its input (an empty shortcut).</summary>
public sealed class Identity : Module
{
    public override Variable Forward(Variable x) => x;
}
