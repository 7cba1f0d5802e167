using SpikeSharp.Tensors;

namespace SpikeSharp.Nn;

/// <summary>While a recorder is active on this thread, every <see cref="Activation"/> stores a copy of its output
/// (threshold balancing, ANN-vs-SNN comparison, calibration methods). Modules know nothing of who records.</summary>
public sealed class ActivationRecorder : IDisposable
{
    [ThreadStatic] private static ActivationRecorder? t_current;
    private readonly ActivationRecorder? _previous;
    private readonly Dictionary<Module, List<Tensor>> _outputs = new(ReferenceEqualityComparer.Instance);

    private ActivationRecorder() => _previous = t_current;

    public static ActivationRecorder Start() => t_current = new ActivationRecorder();

    internal static void Record(Module layer, Tensor output)
    {
        if (t_current is not { } r) return;
        if (!r._outputs.TryGetValue(layer, out var list)) r._outputs[layer] = list = new List<Tensor>();
        list.Add(output.Clone());
    }

    /// <summary>Outputs of one layer, one tensor per forward call, in call order.</summary>
    public IReadOnlyList<Tensor> Outputs(Module layer) => _outputs.TryGetValue(layer, out var l) ? l : [];

    public void Dispose()
    {
        if (t_current == this) t_current = _previous;
    }
}
