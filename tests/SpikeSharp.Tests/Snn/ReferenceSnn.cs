// A slow, obviously correct reference simulator used only by tests: step-major (one image, one step, one neuron at a
// time), double precision, with its own convolution, pooling and IF loops written from the spec (§0, §2, §3). It
// reads only the structure and parameters of a converted module tree, never the production kernels, fusions, arena
// or op counter, so a bug there shows up as a difference from it.
using SpikeSharp.Models;
using SpikeSharp.Nn;
using SpikeSharp.Snn;

namespace SpikeSharp.Tests.Snn;

/// <summary>
/// Per image, per step t = 1..T: the input (constant over time, direct encoding) goes through the modules in order;
/// each spiking layer does m = v + I, s = [m ≥ θ], v = m − θ·s, emits θ·s (times an SRP mask); v(0) = θ/2 plus a
/// per-sample, per-neuron offset (COS). SOPs follow the documented convention of <c>OpCounter</c>: a linear op after
/// the first spiking layer costs (its MACs per image ÷ its input size) per nonzero input; the ops before it see the
/// analog image and cost their MACs every step.
/// </summary>
internal sealed class ReferenceSnn
{
    /// <summary>Spikes [layer][t][b·S + i] (0/1, as emitted), summed logits, and the accounting of one run.</summary>
    public sealed record Result(int Images, int Steps, string[] Layers, byte[][][] Spikes, double[][] Logits, long[] CorrectByStep,
        double[] SopsPerImageByStep, double AnalogMacsPerImageStep, double[][] Residual, double MinMargin)
    {
        /// <summary>Spikes of a layer at step t (1-based), summed over images and neurons.</summary>
        public long SpikesAt(int layer, int t) => Spikes[layer][t - 1].Sum(s => (long)s);
    }

    private readonly Module _model;
    private readonly List<(string Name, SpikingNeuron Neuron)> _neurons = new();

    /// <summary>v(0) as a fraction of θ (spec §0: ½).</summary>
    public double InitialFraction { get; init; } = 0.5;

    /// <summary>Fire on m &gt; θ instead of m ≥ θ (dual-phase).</summary>
    public bool Strict { get; init; }

    public ReferenceSnn(Module converted)
    {
        _model = converted;
        foreach (var (name, m) in converted.NamedModules())
            if (m is SpikingNeuron n) _neurons.Add((name, n));
    }

    public IReadOnlyList<string> LayerNames => _neurons.Select(n => n.Name).ToList();

    // Per-run state.
    private sealed class State
    {
        public required int Image;
        public required Dictionary<SpikingNeuron, double[]> V;
        public required Dictionary<SpikingNeuron, byte[]>? Emitted; // this step's spikes per layer (after the mask)
        public Dictionary<SpikingNeuron, double[]>? Mask;            // per neuron of this image
        public Dictionary<SpikingNeuron, double[]>? Offsets;         // v0 shifts per neuron of this image
        public Func<SpikingNeuron, double[], bool>? Tap;             // sees a layer's input current; false stops the step
        public bool PastFirstNeuron;
        public double Sops, AnalogMacs, MinMargin = double.PositiveInfinity;
    }

    /// <summary>Plain IF (QCFS) simulation of T counted steps.</summary>
    public Result Run(float[][] images, int[] shape, int[] labels, int steps) =>
        Simulate(images, shape, labels, steps, offsets: null, masks: null);

    /// <summary>IF simulation from v0 = θ/2 plus a per-neuron offset (absolute units) shared by all images (dual-phase).</summary>
    public Result RunWithOffsets(float[][] images, int[] shape, int[] labels, int steps, IReadOnlyDictionary<SpikingNeuron, double[]> offsets) =>
        Simulate(images, shape, labels, steps, images.Select(_ => offsets.ToDictionary(kv => kv.Key, kv => kv.Value)).ToArray(), masks: null);

    /// <summary>SRP (spec §2): τ plain steps, mask = [v(τ)/θ &gt; 10⁻³] per sample and neuron, reset to v0, T masked steps.</summary>
    public Result RunSrp(float[][] images, int[] shape, int[] labels, int steps, int presim)
    {
        Dictionary<SpikingNeuron, double[]>[]? masks = null;
        if (presim > 0)
        {
            var pre = Simulate(images, shape, labels, presim, offsets: null, masks: null);
            masks = new Dictionary<SpikingNeuron, double[]>[images.Length];
            for (int b = 0; b < images.Length; b++)
            {
                masks[b] = new();
                for (int l = 0; l < _neurons.Count; l++)
                {
                    var n = _neurons[l].Neuron;
                    masks[b][n] = pre.Residual[l].Skip(b * PerImage(l, pre)).Take(PerImage(l, pre))
                        .Select(v => v / n.Threshold > 1e-3 ? 1.0 : 0.0).ToArray();
                }
            }
        }
        return Simulate(images, shape, labels, steps, offsets: null, masks);
    }

    /// <summary>COS (spec §3), layer by layer in forward order: re-simulate step-major with the earlier layers'
    /// offsets, record this layer's first ρ input currents, apply the one-round offset rule (normalized units); then
    /// simulate all T steps from the calibrated v0.</summary>
    public Result RunCos(float[][] images, int[] shape, int[] labels, int steps, int rho)
    {
        var offsets = new Dictionary<SpikingNeuron, double[]>[images.Length];
        for (int b = 0; b < images.Length; b++) offsets[b] = new();
        foreach (var (_, neuron) in _neurons)
        {
            for (int b = 0; b < images.Length; b++)
            {
                var currents = new List<double[]>();
                var state = NewState(b, offsets[b], null);
                state.Tap = (n, current) =>
                {
                    if (n != neuron) return true;
                    currents.Add((double[])current.Clone());
                    return false; // deeper layers are not needed
                };
                for (int t = 0; t < rho; t++) Step(images[b], shape, state);
                double theta = neuron.Threshold;
                var off = new double[currents[0].Length];
                for (int i = 0; i < off.Length; i++)
                {
                    double v = 0.5, pMin = 1000, qMax = -1000; // the reference code's sentinels for "no such step"
                    int c = 0;
                    for (int t = 0; t < rho; t++)
                    {
                        v += currents[t][i] / theta;
                        if (Strict ? v > 1 : v >= 1) { pMin = Math.Min(pMin, v); v -= 1; c++; }
                        else qMax = Math.Max(qMax, v);
                    }
                    // The reference code's constants are float32 (0.999, 1.001).
                    double v0 = v < 0 && c >= 1 ? 0.5 - Math.Max(1, pMin - 0.999f) : v >= 1 ? 0.5 + Math.Max(1, 1.001f - qMax) : 0.5;
                    off[i] = (v0 - 0.5) * theta;
                }
                offsets[b][neuron] = off;
            }
        }
        return Simulate(images, shape, labels, steps, offsets, masks: null);
    }

    private static int PerImage(int layer, Result r) => r.Residual[layer].Length / r.Images;

    private State NewState(int image, Dictionary<SpikingNeuron, double[]>? offsets, Dictionary<SpikingNeuron, double[]>? mask) => new()
    {
        Image = image,
        V = new(),
        Emitted = new(),
        Mask = mask,
        Offsets = offsets,
    };

    private Result Simulate(float[][] images, int[] shape, int[] labels, int steps, Dictionary<SpikingNeuron, double[]>[]? offsets,
        Dictionary<SpikingNeuron, double[]>[]? masks)
    {
        int layers = _neurons.Count;
        var spikes = new List<byte>[layers, steps];
        for (int l = 0; l < layers; l++) for (int t = 0; t < steps; t++) spikes[l, t] = new List<byte>();
        var logits = new double[steps][];
        var correct = new long[steps];
        var sops = new double[steps];
        var residual = new List<double>[layers];
        for (int l = 0; l < layers; l++) residual[l] = new List<double>();
        double analog = 0, margin = double.PositiveInfinity;
        var logitRows = new List<double>[steps];
        for (int t = 0; t < steps; t++) logitRows[t] = new List<double>();
        for (int b = 0; b < images.Length; b++)
        {
            var state = NewState(b, offsets?[b], masks?[b]);
            double[]? sum = null;
            for (int t = 0; t < steps; t++)
            {
                state.Sops = 0;
                state.AnalogMacs = 0;
                var y = Step(images[b], shape, state);
                sops[t] += state.Sops;
                if (b == 0 && t == 0) analog = state.AnalogMacs;
                for (int l = 0; l < layers; l++) spikes[l, t].AddRange(state.Emitted![_neurons[l].Neuron]);
                logitRows[t].AddRange(y);
                sum ??= new double[y.Length];
                for (int k = 0; k < y.Length; k++) sum[k] += y[k];
                if (ArgMax(sum) == labels[b]) correct[t]++;
            }
            for (int l = 0; l < layers; l++) residual[l].AddRange(state.V[_neurons[l].Neuron]);
            margin = Math.Min(margin, state.MinMargin);
        }
        for (int t = 0; t < steps; t++) logits[t] = logitRows[t].ToArray();
        var byLayer = new byte[layers][][];
        for (int l = 0; l < layers; l++) byLayer[l] = Enumerable.Range(0, steps).Select(t => spikes[l, t].ToArray()).ToArray();
        return new Result(images.Length, steps, LayerNames.ToArray(), byLayer, logits, correct,
            sops.Select(s => s / Math.Max(1, images.Length)).ToArray(), analog, residual.Select(r => r.ToArray()).ToArray(), margin);
    }

    /// <summary>First index of the maximum (as the production's accuracy count).</summary>
    public static int ArgMax(double[] x)
    {
        int best = 0;
        for (int k = 1; k < x.Length; k++) if (x[k] > x[best]) best = k;
        return best;
    }

    /// <summary>One step of one image through the whole network; returns the output layer's values.</summary>
    private double[] Step(float[] image, int[] shape, State s)
    {
        s.PastFirstNeuron = false;
        var x = new Value(image.Select(v => (double)v).ToArray(), shape);
        try { return Eval(_model, x, s).Data; }
        catch (StopStep) { return []; }
    }

    private sealed class StopStep : Exception;

    /// <summary>A tensor of one image: data and shape [C, H, W] or [F].</summary>
    private sealed record Value(double[] Data, int[] Shape);

    private Value Eval(Module m, Value x, State s)
    {
        switch (m)
        {
            case SpikingNeuron n: return Fire(n, x, s);
            case SpikeSharp.Graphs.GraphModel graph:
            {
                // Node by node in graph order; an add sums its operands.
                var values = new Dictionary<string, Value> { [graph.Graph.InputName] = x };
                foreach (var (node, i) in graph.Graph.Nodes.Select((n, i) => (n, i)))
                {
                    var inputs = node.Inputs.Select(n => values[n]).ToArray();
                    values[node.Name] = node.Op == "add"
                        ? new Value(inputs[0].Data.Zip(inputs[1].Data, (a, b) => a + b).ToArray(), inputs[0].Shape)
                        : Eval(graph.Children[i].Value, inputs[0], s);
                }
                return values[graph.Graph.Output];
            }
            case Sequential chain:
                foreach (var (_, child) in chain.Children) x = Eval(child, x, s);
                return x;
            case Conv2d conv: return Conv(conv, x, s);
            case Linear fc: return Dense(fc, x, s);
            case BatchNorm bn: return Norm(bn, x);
            case AvgPool2d pool: return AvgPool(pool.KernelSize, pool.KernelSize, pool.Stride, x);
            case GlobalAvgPool2d: return AvgPool(x.Shape[1], x.Shape[2], Math.Max(x.Shape[1], x.Shape[2]), x);
            case Flatten: return new Value(x.Data, [x.Data.Length]);
            case Dropout or Identity: return x;
            default: throw new NotSupportedException($"reference simulator: no rule for {m.GetType().Name}");
        }
    }

    private Value Fire(SpikingNeuron n, Value current, State s)
    {
        if (s.Tap != null && !s.Tap(n, current.Data)) throw new StopStep();
        double theta = n.Threshold;
        if (!s.V.TryGetValue(n, out var v))
        {
            v = new double[current.Data.Length];
            var off = s.Offsets != null && s.Offsets.TryGetValue(n, out var o) ? o : null;
            for (int i = 0; i < v.Length; i++) v[i] = InitialFraction * theta + (off?[i] ?? 0);
            s.V[n] = v;
        }
        var mask = s.Mask != null && s.Mask.TryGetValue(n, out var mk) ? mk : null;
        var y = new double[v.Length];
        var emitted = new byte[v.Length];
        for (int i = 0; i < v.Length; i++)
        {
            double m = v[i] + current.Data[i];
            if (m != theta) s.MinMargin = Math.Min(s.MinMargin, Math.Abs(m - theta));
            bool fire = Strict ? m > theta : m >= theta;
            v[i] = fire ? m - theta : m;
            bool emit = fire && (mask == null || mask[i] != 0);
            y[i] = emit ? theta : 0;
            emitted[i] = emit ? (byte)1 : (byte)0;
        }
        s.Emitted![n] = emitted;
        s.PastFirstNeuron = true;
        return new Value(y, current.Shape);
    }

    /// <summary>Adds the cost of a linear op with the given MACs per image on input x.</summary>
    private static void Count(State s, double macs, Value x)
    {
        if (!s.PastFirstNeuron) { s.AnalogMacs += macs; return; }
        int nonzero = x.Data.Count(v => v != 0);
        s.Sops += macs / x.Data.Length * nonzero;
    }

    private static Value Conv(Conv2d conv, Value x, State s)
    {
        int cin = x.Shape[0], h = x.Shape[1], w = x.Shape[2], k = conv.KernelSize, st = conv.Stride, p = conv.Padding, cout = conv.OutChannels;
        int ho = (h + 2 * p - k) / st + 1, wo = (w + 2 * p - k) / st + 1;
        var wt = conv.Weight.Value.Data;
        var y = new double[cout * ho * wo];
        for (int co = 0; co < cout; co++)
            for (int oy = 0; oy < ho; oy++)
                for (int ox = 0; ox < wo; ox++)
                {
                    double acc = conv.Bias?.Value.Data[co] ?? 0;
                    for (int ci = 0; ci < cin; ci++)
                        for (int ky = 0; ky < k; ky++)
                            for (int kx = 0; kx < k; kx++)
                            {
                                int iy = oy * st - p + ky, ix = ox * st - p + kx;
                                if (iy < 0 || iy >= h || ix < 0 || ix >= w) continue;
                                acc += wt[((co * cin + ci) * k + ky) * k + kx] * x.Data[(ci * h + iy) * w + ix];
                            }
                    y[(co * ho + oy) * wo + ox] = acc;
                }
        Count(s, (double)cout * ho * wo * cin * k * k, x);
        return new Value(y, [cout, ho, wo]);
    }

    private static Value Dense(Linear fc, Value x, State s)
    {
        int fin = fc.InFeatures, fout = fc.OutFeatures;
        var wt = fc.Weight.Value.Data;
        var y = new double[fout];
        for (int o = 0; o < fout; o++)
        {
            double acc = fc.Bias?.Value.Data[o] ?? 0;
            for (int i = 0; i < fin; i++) acc += wt[o * fin + i] * x.Data[i];
            y[o] = acc;
        }
        Count(s, (double)fin * fout, x);
        return new Value(y, [fout]);
    }

    /// <summary>Eval-mode BN: γ(x − μ)/√(var + ε) + β, with var + ε added in float32 as the stored parameters are.</summary>
    private static Value Norm(BatchNorm bn, Value x)
    {
        int c = x.Shape[0], per = x.Data.Length / c;
        var y = new double[x.Data.Length];
        for (int ch = 0; ch < c; ch++)
        {
            double sigma = Math.Sqrt(bn.RunningVar.Data[ch] + bn.Eps);
            for (int i = 0; i < per; i++)
                y[ch * per + i] = bn.Weight.Value.Data[ch] * (x.Data[ch * per + i] - bn.RunningMean.Data[ch]) / sigma + bn.Bias.Value.Data[ch];
        }
        return new Value(y, x.Shape);
    }

    /// <summary>Average over k×k windows with the given stride; global pooling is one window of the whole map.</summary>
    private static Value AvgPool(int kh, int kw, int stride, Value x)
    {
        int c = x.Shape[0], h = x.Shape[1], w = x.Shape[2];
        int ho = (h - kh) / stride + 1, wo = (w - kw) / stride + 1;
        var y = new double[c * ho * wo];
        for (int ch = 0; ch < c; ch++)
            for (int oy = 0; oy < ho; oy++)
                for (int ox = 0; ox < wo; ox++)
                {
                    double acc = 0;
                    for (int dy = 0; dy < kh; dy++)
                        for (int dx = 0; dx < kw; dx++) acc += x.Data[(ch * h + oy * stride + dy) * w + ox * stride + dx];
                    y[(ch * ho + oy) * wo + ox] = acc / (kh * kw);
                }
        return new Value(y, [c, ho, wo]);
    }
}
