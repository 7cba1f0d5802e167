using SpikeSharp.Autograd;
using SpikeSharp.Conversion;
using SpikeSharp.Nn;
using SpikeSharp.Tensors;

namespace SpikeSharp.Snn;

/// <summary>
/// A converted model: the ANN's module tree with its activations swapped for <see cref="IfNeuron"/>s (parameters
/// shared). <see cref="Run"/> simulates layer-major: the input [B, …] is constant over time (direct encoding), so
/// every layer before the first neuron runs once; the first neuron expands it to [T·B, …].
/// </summary>
public sealed class SpikingNetwork
{
    private readonly List<ModuleSwap> _swaps;
    private readonly IReadOnlyList<SpikingMaxPool> _pools;
    private bool _restored;

    public Module Model { get; }

    /// <summary>Neurons in forward order.</summary>
    public IReadOnlyList<SpikingNeuron> Neurons { get; }

    /// <summary>The integrate-and-fire layers (all of them, unless a method chose another neuron).</summary>
    public IEnumerable<IfNeuron> IfNeurons => Neurons.OfType<IfNeuron>();

    /// <param name="pools">the max pools of spikes, which need to know B and T like the neurons</param>
    public SpikingNetwork(Module model, IReadOnlyList<SpikingNeuron> neurons, List<ModuleSwap> swaps, IReadOnlyList<SpikingMaxPool>? pools = null)
    {
        (Model, Neurons, _swaps, _pools) = (model, neurons, swaps, pools ?? []);
    }

    /// <summary>Clears membrane state and sets batch and steps per call on every neuron (and max pool of spikes).</summary>
    public void Configure(int batch, int steps)
    {
        foreach (var n in Neurons) n.Configure(batch, steps);
        foreach (var p in _pools) p.Configure(batch, steps);
    }

    /// <summary>True during a run whose steps are not counted (pre-simulation, calibration): observers ignore it.</summary>
    public bool InExtraRun { get; private set; }

    /// <summary>Simulates <paramref name="steps"/> steps from the current state (call <see cref="Configure"/> first to
    /// start from v0). Returns output-layer values [steps·B, K], step-major rows (row = t·B + b). An
    /// <paramref name="extra"/> run is reported as extra latency, not as counted steps.</summary>
    public Tensor Run(Tensor images, int steps, bool extra = false)
    {
        InExtraRun = extra;
        try { return RunCore(images, steps, extra); }
        finally { InExtraRun = false; }
    }

    private Tensor RunCore(Tensor images, int steps, bool extra)
    {
        int batch = images.Shape[0];
        foreach (var n in Neurons)
            if (n.Steps != steps) throw new InvalidOperationException("call Configure(batch, steps) before Run");
        OpCounter.BeginRun(extra);
        var y = Model.Forward(new Variable(images)).Value;
        if (y.Shape[0] != batch * steps)
            throw new InvalidOperationException($"output has {y.Shape[0]} rows, expected {batch * steps}: no spiking layer reached the output");
        return y;
    }

    /// <summary>Thrown by a hook (an observer, an input hook) to end an extra run once the layer it watches has run:
    /// calibrations that need one layer's input or output skip the deeper layers.</summary>
    public sealed class StopRun : Exception;

    /// <summary>From v0, simulates <paramref name="steps"/> steps of <paramref name="images"/> as an extra run that a hook
    /// may end early by throwing <see cref="StopRun"/>.</summary>
    public void RunUntilStopped(Tensor images, int steps)
    {
        Configure(images.Shape[0], steps);
        try { Run(images, steps, extra: true); }
        catch (StopRun) { }
    }

    /// <summary>Undoes the conversion: the original activations (and unfolded BN) are back in the model.</summary>
    public void RestoreAnn()
    {
        if (_restored) return;
        for (int i = _swaps.Count - 1; i >= 0; i--) _swaps[i].Undo();
        _restored = true;
    }
}
