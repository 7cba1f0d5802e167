using System.Numerics;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using SpikeSharp.Tensors;

namespace SpikeSharp.Autograd;

/// <summary>
/// Counts the work of the linear ops (convolution, fully connected) run on this thread while a scope is open.
/// ANN mode: multiply-accumulates per layer. Spiking mode (layer-major, <see cref="StartSpiking"/>): ops before the
/// first neuron of a run see the analog image (direct encoding) and count MACs; ops after it see spikes and count
/// synaptic operations per step t = MACs of one row × fraction of nonzero inputs in the rows of step t; an input that
/// carries a <see cref="Tensor.SpikeUnit"/> (bursts) counts |x| / unit spikes per element instead of one. (After average
/// pooling a nonzero input may stand for one to k² spikes; counting it once per fan-out over-counts binary spikes.)
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

    /// <summary>Spiking mode: MACs on analog (non-spike) input, summed over the batch and over forward calls. A constant
    /// input is computed once per call, so for a single call of any length this is the analog MACs of one step.</summary>
    public double AnalogMacsPerStep { get; private set; }

    /// <summary>Spiking mode: synaptic operations at each step, summed over the batch.</summary>
    public double[] SynapticOpsByStep { get; }

    /// <summary>Spiking mode: synaptic operations of runs with another number of steps (pre-simulation, calibration).</summary>
    public double ExtraSynapticOps { get; private set; }

    private OpCounter(int batch, int steps)
    {
        _previous = t_current;
        (Batch, Steps) = (batch, steps);
        SynapticOpsByStep = new double[steps];
    }

    public static OpCounter Start() => t_current = new OpCounter(0, 0);

    public static OpCounter StartSpiking(int batch, int steps) => t_current = new OpCounter(batch, steps);

    private bool _pastFirstNeuron, _extraRun;

    /// <summary>A spiking forward pass starts: the next ops see the analog input. An extra run (pre-simulation,
    /// calibration) is counted apart from the counted steps.</summary>
    internal static void BeginRun(bool extra)
    {
        if (t_current is { } c) (c._pastFirstNeuron, c._extraRun) = (false, extra);
    }

    /// <summary>A neuron layer ran: the ops after it see spikes.</summary>
    internal static void NeuronReached()
    {
        if (t_current is { } c) c._pastFirstNeuron = true;
    }

    /// <summary>Records one linear op: macsPerRow = MACs for one row (sample, step) of its input.</summary>
    internal static void Add(string op, long macsPerRow, Tensor input)
    {
        if (t_current is not { } c) return;
        int rows = input.Shape[0];
        if (c.Steps == 0) { c.Layers.Add((op, macsPerRow * rows)); return; }
        // A constant analog input is computed once but stands for one MAC pass per step of the run that consumes it.
        if (!c._pastFirstNeuron) { c.AnalogMacsPerStep += (double)macsPerRow * rows; return; }
        int perRow = input.SizeFrom(1), perStep = perRow * c.Batch;
        if (c._extraRun || rows != c.Batch * c.Steps)
        {
            c.ExtraSynapticOps += (double)macsPerRow * CountSpikes(input.Data, input.SpikeUnit) / perRow;
            return;
        }
        for (int t = 0; t < c.Steps; t++)
            c.SynapticOpsByStep[t] += (double)macsPerRow * CountSpikes(input.Data.AsSpan(t * perStep, perStep), input.SpikeUnit) / perRow;
    }

    /// <summary>Spike events in <paramref name="x"/>: nonzero values, or with a unit, Σ round(|x| / unit).</summary>
    public static double CountSpikes(ReadOnlySpan<float> x, float unit)
    {
        if (unit <= 0) return CountNonZero(x);
        double n = 0;
        foreach (float v in x) n += MathF.Round(MathF.Abs(v) / unit);
        return n;
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
