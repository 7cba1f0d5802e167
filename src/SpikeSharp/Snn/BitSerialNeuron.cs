using System.Runtime.Intrinsics;
using SpikeSharp.Autograd;
using SpikeSharp.Nn;
using SpikeSharp.Tensors;

namespace SpikeSharp.Snn;

/// <summary>
/// Bit-serial neuron (Datta et al. 2023; spec §5, partly a reconstruction): T = log2(L+1) steps carry the T bits of
/// the QCFS level k, most significant first. u = z + λ/(2L) (the "BN bias shift", applied here at the neuron's input,
/// which equals shifting the bias of the layer that feeds it); for j = 0..T−1: θ_j = (λ/L)·2^(T−1−j),
/// s_j = [u ≥ θ_j], u −= θ_j·s_j. Then Σ_j θ_j·s_j = λ·clip(floor(z·L/λ + ½), 0, L)/L = QCFS_L(z) and Σ_j s_j =
/// popcount(k). Layer-major: the layer's current z is the MEAN of its T input rows, and step j emits T·θ_j·s_j, so the
/// mean over steps of any linear map of the outputs equals that map of Σ_j θ_j·s_j (biases added once, as in the ANN).
/// </summary>
public sealed class BitSerialNeuron : SpikingNeuron
{
    public int Levels { get; }
    public int Bits { get; }

    public BitSerialNeuron(string layerName, float threshold, int levels, Activation? source = null) : base(layerName, threshold, source)
    {
        Bits = BitsFor(levels) ?? throw new SpikeSharpException($"layer '{layerName}': bit-serial conversion needs L = 2^T − 1 levels (1, 3, 7, 15, 31, …), got L = {levels}");
        Levels = levels;
    }

    /// <summary>T with 2^T − 1 = levels, or null.</summary>
    public static int? BitsFor(int levels)
    {
        for (int t = 1; t <= 24; t++) if ((1 << t) - 1 == levels) return t;
        return null;
    }

    public override void ResetState() { }

    public override Variable Forward(Variable x)
    {
        if (Steps != Bits) throw new SpikeSharpException($"layer '{LayerName}': a bit-serial layer with L = {Levels} runs exactly T = {Bits} steps, not {Steps}");
        bool constant = IsConstantInput(x.Value);
        int n = Batch * x.Value.SizeFrom(1), steps = Steps;
        var outShape = (int[])x.Shape.Clone();
        outShape[0] = Batch * steps;
        var y = Tensor.Scratch(outShape);
        float[] xin = x.Value.Data, yout = y.Data;
        float unit = Threshold / Levels;
        var u = Tensor.Scratch(n).Data; // every entry is written before it is read
        var step = new BitSerialStep(unit, steps);
        var counts = ForEachTile(n, (start, end, c) =>
        {
            // The layer's current z: its input, or the mean of its T input rows, kept in u, which is also the potential:
            // step 0 reads z[i] before it sets u[i] = z[i] + λ/(2L), and later steps do not read the current.
            float[] z = xin;
            if (!constant)
            {
                z = u;
                for (int i = start; i < end; i++)
                {
                    float sum = 0;
                    for (int t = 0; t < steps; t++) sum += xin[t * n + i];
                    z[i] = sum / steps;
                }
            }
            NeuronKernel.Run(step, z, true, u, yout, steps, n, start, end - start, c);
        });
        Emit(counts, y);
        return new Variable(y);
    }
}

/// <summary>The bit-serial step j: the current z arrives whole at j = 0 (u = z + λ/(2L)); then s_j = [u ≥ θ_j],
/// u −= θ_j·s_j with θ_j = (λ/L)·2^(T−1−j), output T·θ_j·s_j.</summary>
public readonly record struct BitSerialStep(float Unit, int Bits) : INeuronStep
{
    public bool Vectorized => false;

    public float Step(int i, int t, ref float v, float current, out int spikes)
    {
        if (t == 0) v = current + Unit / 2;
        float theta = Unit * (1 << (Bits - 1 - t));
        bool fire = IfStep.Fires(v, theta, strict: false);
        if (fire) v -= theta;
        spikes = fire ? 1 : 0;
        return fire ? Bits * theta : 0f;
    }

    public Vector512<float> Step(int i, int t, ref Vector512<float> v, Vector512<float> current, out int spikes) => throw new NotSupportedException();
}
