namespace SpikeSharp.Autograd;

/// <summary>
/// Counts multiply-accumulates of the linear ops (convolution, fully connected) executed on this thread while a
/// scope is open. Used for MACs per image (energy, spec §4 convention) and for benchmark GFLOP/s.
/// </summary>
public sealed class OpCounter : IDisposable
{
    [ThreadStatic] private static OpCounter? t_current;
    private readonly OpCounter? _previous;

    /// <summary>MACs per layer in execution order (layer = op kind and output shape).</summary>
    public List<(string Op, long Macs)> Layers { get; } = new();

    public long TotalMacs => Layers.Sum(l => l.Macs);

    private OpCounter() => _previous = t_current;

    public static OpCounter Start() => t_current = new OpCounter();

    internal static void Add(string op, long macs) => t_current?.Layers.Add((op, macs));

    public void Dispose()
    {
        if (t_current == this) t_current = _previous;
    }
}
