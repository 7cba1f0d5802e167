using SpikeSharp.Autograd;

namespace SpikeSharp.Nn;

/// <summary>A module whose forward pass runs its children in registration order.</summary>
public abstract class ModuleChain : Module
{
    public override Variable Forward(Variable x)
    {
        var arena = ReleasingArena;
        float[]? owned = null; // the latest output made inside this chain (never the chain's input)
        foreach (var (_, m) in Children)
        {
            var y = m.Forward(x);
            if (arena != null && !ReferenceEquals(y.Value.Data, x.Value.Data))
            {
                // y is a new array: the previous intermediate (possibly seen through a reshape) is consumed.
                if (owned != null) arena.Release(owned);
                owned = y.Value.Data;
            }
            x = y;
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
