using SpikeSharp.Autograd;

namespace SpikeSharp.Nn;

/// <summary>A module whose forward pass runs its children in registration order.</summary>
public abstract class ModuleChain : Module
{
    public override Variable Forward(Variable x)
    {
        foreach (var (_, m) in Children) x = m.Forward(x);
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
