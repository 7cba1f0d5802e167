using System.Numerics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using SpikeSharp.Tensors;

namespace SpikeSharp.Autograd;

/// <summary>
/// Counts the work of the linear ops (convolution, fully connected) run on this thread while a scope is open.
/// ANN mode: multiply-accumulates per layer. Spiking mode (layer-major, <see cref="StartSpiking"/>): an op whose input
/// has B rows (constant analog input, the first layer under direct encoding) adds its MACs at every step; an op on
/// [T·B, …] spike input adds synaptic operations per step t = MACs of one row × fraction of nonzero inputs in the rows of
/// step t. (After average pooling a nonzero input may stand for one to k² spikes; counting it once per fan-out
/// over-counts at most, never under-counts.)
/// </summary>
public sealed class OpCounter : IDisposable
{
    [ThreadStatic] private static OpCounter? t_current;
    private readonly OpCounter? _previous;

    /// <summary>ANN mode: MACs per layer in execution order.</summary>
    public List<(string Op, long Macs)> Layers { get; } = new();

    public long TotalMacs => Layers.Sum(l => l.Macs);

    /// <summary>Spiking mode: batch size and steps per forward call (0 in ANN mode).</summary>
    public int Batch { get; }
    public int Steps { get; }

    /// <summary>Spiking mode: MACs on analog (non-spike) input per step, summed over the batch.</summary>
    public double AnalogMacsPerStep { get; private set; }

    /// <summary>Spiking mode: synaptic operations at each step, summed over the batch.</summary>
    public double[] SynapticOpsByStep { get; }

    private OpCounter(int batch, int steps)
    {
        _previous = t_current;
        (Batch, Steps) = (batch, steps);
        SynapticOpsByStep = new double[steps];
    }

    public static OpCounter Start() => t_current = new OpCounter(0, 0);

    public static OpCounter StartSpiking(int batch, int steps) => t_current = new OpCounter(batch, steps);

    /// <summary>Records one linear op: macsPerRow = MACs for one row (sample, step) of its input.</summary>
    internal static void Add(string op, long macsPerRow, Tensor input)
    {
        if (t_current is not { } c) return;
        int rows = input.Shape[0];
        if (c.Steps == 0) { c.Layers.Add((op, macsPerRow * rows)); return; }
        if (rows == c.Batch) { c.AnalogMacsPerStep += (double)macsPerRow * rows; return; }
        int perRow = input.SizeFrom(1), perStep = perRow * c.Batch;
        for (int t = 0; t < c.Steps && (t + 1) * perStep <= input.Length; t++)
            c.SynapticOpsByStep[t] += (double)macsPerRow * CountNonZero(input.Data.AsSpan(t * perStep, perStep)) / perRow;
    }

    public static long CountNonZero(ReadOnlySpan<float> x)
    {
        long n = 0;
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
            for (ref float r = ref MemoryMarshal.GetReference(x); i <= x.Length - 16; i += 16)
                n += 16 - BitOperations.PopCount(Vector512.Equals(Vector512.LoadUnsafe(ref r, (nuint)i), Vector512<float>.Zero).ExtractMostSignificantBits());
        for (; i < x.Length; i++) if (x[i] != 0) n++;
        return n;
    }

    public void Dispose()
    {
        if (t_current == this) t_current = _previous;
    }
}
