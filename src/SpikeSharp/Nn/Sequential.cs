using SpikeSharp.Autograd;

namespace SpikeSharp.Nn;

/// <summary>Runs children in order, one by one; children are named "0", "1", … as in PyTorch. (Fusion and early
/// release of intermediates are the graph executor's: build a <see cref="Graphs.Graph"/> for a network that should run
/// at full speed.)</summary>
public sealed class Sequential : Module
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

    public override Variable Forward(Variable x)
    {
        foreach (var (_, child) in Children) x = child.Forward(x);
        return x;
    }
}

/// <summary>Returns its input (an empty shortcut).</summary>
public sealed class Identity : Module
{
    public override Variable Forward(Variable x) => x;
}
