using SpikeSharp.Nn;
using SpikeSharp.Tensors;

namespace SpikeSharp.Snn;

/// <summary>
/// A layer of spiking neurons that replaced one activation of an ANN. Layer-major: <see cref="Module.Forward"/> takes
/// the layer's input sequence [T·B, …] (or [B, …] constant over the T steps) and returns [T·B, …]. State persists
/// across calls until <see cref="ResetState"/>; observers get spike counts per step and the output.
/// </summary>
public abstract class SpikingNeuron : Module
{
    private int _batch = 1, _steps = 1;

    /// <summary>Name of the layer in the model (for reports).</summary>
    public string LayerName { get; }

    /// <summary>Firing threshold θ (the λ of the activation it replaced).</summary>
    public float Threshold { get; set; }

    /// <summary>The activation this neuron replaced.</summary>
    public Activation? Source { get; }

    private readonly List<Action<SpikingNeuron, long[], Tensor>> _monitors = new();

    /// <summary>The monitors attached (<see cref="Attach"/>), in order.</summary>
    public IReadOnlyList<Action<SpikingNeuron, long[], Tensor>> Monitors => _monitors;

    /// <summary>While true (a probe run of the simulator), monitors are not called.</summary>
    internal bool MonitorsPaused { get; set; }

    /// <summary>Attaches a monitor that receives (neuron, spike counts per step summed over the batch, output [T·B, …])
    /// after every Forward, beside any others (the simulator's counters, a spike raster, a calibration); disposing the
    /// result detaches it. A monitor may end an extra run by throwing <see cref="SpikingNetwork.StopRun"/>.</summary>
    public IDisposable Attach(Action<SpikingNeuron, long[], Tensor> monitor)
    {
        _monitors.Add(monitor);
        return new Detacher(this, monitor);
    }

    private sealed class Detacher(SpikingNeuron neuron, Action<SpikingNeuron, long[], Tensor> monitor) : IDisposable
    {
        public void Dispose() => neuron._monitors.Remove(monitor);
    }

    protected SpikingNeuron(string layerName, float threshold, Activation? source)
    {
        if (!(threshold > 0) || float.IsInfinity(threshold))
            throw new SpikeSharpException($"layer '{layerName}': threshold {threshold} must be positive and finite");
        (LayerName, Threshold, Source) = (layerName, threshold, source);
    }

    public int Steps => _steps;
    public int Batch => _batch;

    /// <summary>Sets batch size and steps per Forward call and clears the state.</summary>
    public void Configure(int batch, int steps)
    {
        if (batch <= 0 || steps <= 0) throw new ArgumentOutOfRangeException(nameof(steps), $"batch {batch} and steps {steps} must be positive");
        (_batch, _steps) = (batch, steps);
        ResetState();
    }

    public abstract void ResetState();

    /// <summary>True if the input holds one row per sample (constant over time); checks the row count.</summary>
    protected bool IsConstantInput(Tensor x)
    {
        int rows = x.Shape[0];
        if (rows == _batch) return true;
        if (rows != _batch * _steps)
            throw new ArgumentException($"neuron '{LayerName}': input has {rows} rows, expected batch {_batch} or steps×batch {_steps * _batch}");
        return false;
    }

    /// <summary>One tile of neurons [start, end) of a layer-major call: its spike counts go to <c>counts</c> [T].</summary>
    protected delegate void TileBody(int start, int end, Span<long> counts);

    /// <summary>Runs <paramref name="body"/> over tiles of the <paramref name="n"/> = B·S neurons on the worker pool and
    /// returns the spike counts per step summed in a fixed order (results do not depend on the thread count).</summary>
    protected long[] ForEachTile(int n, TileBody body)
    {
        const int Tile = 4096;
        int tiles = (n + Tile - 1) / Tile, steps = Steps;
        var partial = new long[tiles * steps];
        WorkerPool.Shared.For(tiles, (tile, _) => body(tile * Tile, Math.Min(n, (tile + 1) * Tile), partial.AsSpan(tile * steps, steps)));
        var counts = new long[steps];
        for (int tile = 0; tile < tiles; tile++)
            for (int t = 0; t < steps; t++) counts[t] += partial[tile * steps + t];
        return counts;
    }

    /// <summary>The output [T·B, …] for an input shaped like <paramref name="x"/>.</summary>
    protected Tensor OutputFor(Tensor x)
    {
        var shape = (int[])x.Shape.Clone();
        shape[0] = Batch * Steps;
        return Tensor.Scratch(shape);
    }

    /// <summary>Reports a finished Forward to the op counter and the monitors.</summary>
    protected void Emit(long[] counts, Tensor output)
    {
        Autograd.OpCounter.NeuronReached();
        if (MonitorsPaused) return;
        for (int i = 0; i < _monitors.Count; i++) _monitors[i](this, counts, output);
    }
}
