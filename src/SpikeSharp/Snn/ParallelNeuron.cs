using SpikeSharp.Autograd;
using SpikeSharp.Nn;
using SpikeSharp.Tensors;

namespace SpikeSharp.Snn;

/// <summary>
/// Parallel spiking neuron (Hao et al., ICML 2025; docs/conversion-methods.md "parallel"): the layer first receives its
/// whole input window of T steps; with x̄ the mean input, step t = 1..T fires iff (T/t)·x̄ + (θ/2 + T·δ_in)/t ≥ θ, i.e.
/// t ≤ T·(x̄ + δ_in)/θ + ½, so the first k = clip(⌊T·(x̄ + δ_in)/θ + ½⌋, 0, T) steps fire, each emitting θ + δ_th.
/// δ_in and δ_th are per-channel calibration shifts (zero without calibration), and with them the rate equals the
/// T-level quantizer, the QCFS ANN exactly when T = L. The computation follows the authors' formula in float32
/// (T/t and (θ/2 + T·δ_in)/t per step). Not causal: a layer cannot fire before its window is complete, so a network
/// of D spiking layers answers after D·T steps. One call must carry the whole window.
/// </summary>
public sealed class ParallelNeuron(string layerName, float threshold, Activation? source = null) : SpikingNeuron(layerName, threshold, source)
{
    /// <summary>Per-channel input shift δ_in [C] (null: none).</summary>
    public float[]? InputShift { get; set; }

    /// <summary>Per-channel spike-size shift δ_th [C] (null: none).</summary>
    public float[]? SpikeShift { get; set; }

    private bool _ran;

    public override void ResetState() => _ran = false;

    public override Variable Forward(Variable x)
    {
        if (_ran) throw new InvalidOperationException($"neuron '{LayerName}': a parallel neuron takes its whole window in one call");
        _ran = true;
        bool constant = IsConstantInput(x.Value);
        int perSample = x.Value.SizeFrom(1), n = Batch * perSample, steps = Steps;
        int channels = x.Value.Shape[1], plane = perSample / channels;
        CheckShift(InputShift, channels, "input");
        CheckShift(SpikeShift, channels, "spike-size");
        float theta = Threshold;
        float[] xin = x.Value.Data, dIn = InputShift ?? [], dTh = SpikeShift ?? [];
        var y = OutputFor(x.Value);
        float[] yout = y.Data;
        var counts = ForEachTile(n, (start, end, c) =>
        {
            for (int i = start; i < end; i++)
            {
                // The mean of the window in float32, summed in step order (a constant input is summed T times too,
                // as the authors' code sees it repeated).
                float sum = 0f;
                for (int t = 0; t < steps; t++) sum += constant ? xin[i] : xin[t * n + i];
                float mean = sum / steps;
                int ch = i % perSample / plane;
                float shiftIn = dIn.Length > 0 ? dIn[ch] : 0f, amplitude = theta + (dTh.Length > 0 ? dTh[ch] : 0f);
                float bias = 0.5f * theta + steps * shiftIn;
                for (int t = 1; t <= steps; t++)
                {
                    bool fire = (float)steps / t * mean + bias / t >= theta;
                    yout[(t - 1) * n + i] = fire ? amplitude : 0f;
                    if (fire) c[t - 1]++;
                }
            }
        });
        Emit(counts, y);
        return new Variable(y);
    }

    private void CheckShift(float[]? shift, int channels, string what)
    {
        if (shift != null && shift.Length != channels)
            throw new ArgumentException($"neuron '{LayerName}': {what} shift has {shift.Length} channels, the input {channels}");
    }
}
