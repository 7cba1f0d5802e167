using SpikeSharp.Autograd;
using SpikeSharp.Tensors;

namespace SpikeSharp.Nn;

/// <summary>
/// A layer or a container of layers. Parameters, buffers and children are registered by name in the
/// constructor, so state-dict keys (<c>layer1.0.weight</c>) follow PyTorch's scheme without reflection:
/// a module lists its own parameters, then its buffers, then each child's entries prefixed by the child's name.
/// </summary>
public abstract class Module
{
    private readonly List<KeyValuePair<string, Parameter>> _parameters = new();
    private readonly List<KeyValuePair<string, Tensor>> _buffers = new();
    private readonly List<KeyValuePair<string, Module>> _children = new();

    /// <summary>True in training mode (batch statistics, dropout on); false in eval mode.</summary>
    public bool IsTraining { get; private set; } = true;

    public abstract Variable Forward(Variable x);

    protected Parameter AddParameter(string name, Tensor value, bool weightDecay = true)
    {
        var p = new Parameter(value, weightDecay);
        _parameters.Add(new(name, p));
        return p;
    }

    protected Tensor AddBuffer(string name, Tensor value)
    {
        _buffers.Add(new(name, value));
        return value;
    }

    protected T AddModule<T>(string name, T module) where T : Module
    {
        _children.Add(new(name, module));
        return module;
    }

    /// <summary>Direct children in registration order.</summary>
    public IReadOnlyList<KeyValuePair<string, Module>> Children => _children;

    /// <summary>Replaces a direct child (used by conversion to swap activations for neurons).</summary>
    public void ReplaceChild(string name, Module module)
    {
        int i = _children.FindIndex(kv => kv.Key == name);
        if (i < 0) throw new ArgumentException($"{GetType().Name} has no child '{name}'");
        _children[i] = new(name, module);
        OnChildReplaced(name, module);
    }

    /// <summary>Whether child <paramref name="child"/>'s output goes only into the next child, which reads nothing else
    /// (true in a chain; a graph says per node). BN folding folds a BN only into the layer that feeds it alone.</summary>
    protected internal virtual bool FeedsOnlyNext(int child) => true;

    /// <summary>Lets a module that keeps typed references to its children update them.</summary>
    protected virtual void OnChildReplaced(string name, Module module) { }

    public IEnumerable<KeyValuePair<string, Parameter>> NamedParameters(string prefix = "")
    {
        foreach (var (name, p) in _parameters) yield return new(prefix + name, p);
        foreach (var (name, child) in _children)
            foreach (var kv in child.NamedParameters(prefix + name + ".")) yield return kv;
    }

    public IEnumerable<Parameter> Parameters() => NamedParameters().Select(kv => kv.Value);

    /// <summary>All modules in the tree, depth first, this one first (name "" for the root).</summary>
    public IEnumerable<KeyValuePair<string, Module>> NamedModules(string prefix = "")
    {
        yield return new(prefix.TrimEnd('.'), this);
        foreach (var (name, child) in _children)
            foreach (var kv in child.NamedModules(prefix + name + ".")) yield return kv;
    }

    /// <summary>Parameters and buffers by name, in PyTorch's state_dict order.</summary>
    public IEnumerable<KeyValuePair<string, Tensor>> StateDict(string prefix = "")
    {
        foreach (var (name, p) in _parameters) yield return new(prefix + name, p.Value);
        foreach (var (name, b) in _buffers) yield return new(prefix + name, b);
        foreach (var (name, child) in _children)
            foreach (var kv in child.StateDict(prefix + name + ".")) yield return kv;
    }

    /// <summary>
    /// Copies tensors into this module's parameters and buffers. Like PyTorch's strict loading, missing and
    /// unexpected keys are errors when <paramref name="strict"/>; a shape mismatch is always an error.
    /// </summary>
    public StateDictLoadResult LoadStateDict(IReadOnlyDictionary<string, Tensor> state, bool strict = true)
    {
        var own = StateDict().ToList();
        var missing = new List<string>();
        var mismatched = new List<string>();
        foreach (var (key, target) in own)
        {
            if (!state.TryGetValue(key, out var src)) { missing.Add(key); continue; }
            if (src.Length != target.Length || !src.SameShape(target))
            {
                mismatched.Add($"{key}: checkpoint {src.ShapeString}, model {target.ShapeString}");
                continue;
            }
            src.Data.CopyTo(target.Data, 0);
        }
        var ownKeys = own.Select(kv => kv.Key).ToHashSet();
        var unexpected = state.Keys.Where(k => !ownKeys.Contains(k)).ToList();
        var result = new StateDictLoadResult(missing, unexpected, mismatched);
        if (mismatched.Count > 0 || (strict && (missing.Count > 0 || unexpected.Count > 0)))
            throw new SpikeSharpException("checkpoint does not fit the model: " + result.Describe());
        return result;
    }

    public void Train(bool training = true)
    {
        foreach (var (_, m) in NamedModules()) m.IsTraining = training;
    }

    public void Eval() => Train(false);

    public void ZeroGrad()
    {
        foreach (var p in Parameters()) p.ZeroGrad();
    }
}

/// <summary>What <see cref="Module.LoadStateDict"/> found: keys the model needs but the state lacks, keys the
/// state has but the model does not, and shape mismatches.</summary>
public sealed record StateDictLoadResult(IReadOnlyList<string> Missing, IReadOnlyList<string> Unexpected, IReadOnlyList<string> ShapeMismatches)
{
    public string Describe()
    {
        var parts = new List<string>();
        if (Missing.Count > 0) parts.Add($"missing keys ({Missing.Count}): {string.Join(", ", Missing.Take(10))}{(Missing.Count > 10 ? ", …" : "")}");
        if (Unexpected.Count > 0) parts.Add($"unexpected keys ({Unexpected.Count}): {string.Join(", ", Unexpected.Take(10))}{(Unexpected.Count > 10 ? ", …" : "")}");
        if (ShapeMismatches.Count > 0) parts.Add($"shape mismatches: {string.Join("; ", ShapeMismatches.Take(10))}");
        return parts.Count == 0 ? "all keys matched" : string.Join("; ", parts);
    }
}
