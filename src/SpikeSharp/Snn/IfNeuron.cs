using SpikeSharp.Autograd;
using SpikeSharp.Nn;
using SpikeSharp.Tensors;

namespace SpikeSharp.Snn;

/// <summary>How a neuron decides to fire (spec §7.1): QCFS/SRP/COS/Datta fire on v ≥ θ, dual-phase on v &gt; θ.</summary>
public enum FireRule { GreaterOrEqual, Greater }

/// <summary>
/// Integrate-and-fire neuron with reset by subtraction (spec §0), replacing one activation layer of an ANN:
/// per step m = v + I(t); s = [m ≥ θ]; v = m − θ·s; output θ·s. The membrane starts at v0 = φ0·θ (φ0 = ½) plus an
/// optional per-neuron (or per-sample, per-neuron) offset set by calibration methods (COS, dual-phase).
/// Layer-major: <see cref="Forward"/> takes a whole sequence [T·B, …] (or [B, …] held constant over the T steps,
/// direct encoding) and steps t = 1..T; state persists across calls until <see cref="ResetState"/>, so T calls with
/// one step each (step-major) give the same spikes. The neuron records nothing: observers get per-step spike counts.
/// The dynamics are <see cref="IfStep"/>, run by <see cref="NeuronKernel"/> here and inside a fused convolution.
/// </summary>
public sealed class IfNeuron : SpikingNeuron, IConvOutputConsumer
{
    // Shapes: B batch, T steps, S neurons per sample. v: [B·S] membrane potential.
    private float[]? _v;
    private int _stepsRun;
    private float _largestOffset; // max |InitialOffset| of the run: a potential that starts there has not diverged

    /// <summary>A neuron diverges when |v| exceeds this many θ per step simulated beyond its initial offset (or v is
    /// NaN/Inf): an input
    /// averaging over 16·θ per step in magnitude is far outside the [0, λ] range the ANN was trained for, and points at
    /// a broken conversion (wrong threshold, unfolded BN, unnormalized input) rather than quantization error.</summary>
    public const float DivergenceFactor = 16f;

    /// <summary>Neurons (of the current run, over the batch) whose membrane potential has diverged; updated at the end
    /// of every Forward with one vectorized pass over v.</summary>
    public long DivergentNeurons { get; private set; }

    /// <summary>Initial potential as a fraction of θ (½ for QCFS; 0 for plain IF).</summary>
    public float InitialFraction { get; set; } = 0.5f;

    /// <summary>Optional extra initial potential in absolute units, [S] (per neuron) or [B·S] (per sample and neuron).</summary>
    public float[]? InitialOffset { get; set; }

    public FireRule Rule { get; set; } = FireRule.GreaterOrEqual;

    /// <summary>Optional 0/1 output mask [B·S] (SRP): the neuron integrates and resets as usual, but masked outputs are 0.</summary>
    public float[]? OutputMask { get; set; }

    /// <summary>Called when a run starts from v0, with the layer's input ([T·B, …], or [B, …] if constant) and whether it
    /// is constant; may set <see cref="InitialOffset"/> per sample and neuron first (COS, spec §3).</summary>
    public Action<IfNeuron, Tensor, bool>? BeforeRun { get; set; }

    public IfNeuron(string layerName, float threshold, Activation? source = null) : base(layerName, threshold, source) { }

    /// <summary>Membrane potential [B·S] of the current simulation (null before the first step); arena memory when an
    /// arena is active, so read it before the arena scope ends.</summary>
    public float[]? Potential => _v;

    /// <summary>Back to v0 on the next step.</summary>
    public override void ResetState()
    {
        _v = null;
        _initialPending = false;
        _stepsRun = 0;
        _largestOffset = 0;
        DivergentNeurons = 0;
    }

    public override Variable Forward(Variable x)
    {
        using var _ = Profiler.Measure("if neuron", x.Value);
        bool constant = IsConstantInput(x.Value);
        int perSample = x.Value.SizeFrom(1), n = Batch * perSample;
        if (_v == null) BeforeRun?.Invoke(this, x.Value, constant);
        var (v, mask) = Start(perSample);
        var outShape = (int[])x.Shape.Clone();
        outShape[0] = Batch * Steps;
        var y = Tensor.Scratch(outShape);
        float[] xin = x.Value.Data, yout = y.Data;
        var step = new IfStep(Threshold, Rule == FireRule.Greater);
        int steps = Steps;
        var counts = mask == null
            ? ForEachTile(n, (start, end, c) => NeuronKernel.Run(step, xin, constant, v, yout, steps, n, start, end - start, c))
            : ForEachTile(n, (start, end, c) => NeuronKernel.Run(new MaskedIfStep(step, mask, 0), xin, constant, v, yout, steps, n, start, end - start, c));
        return Finish(counts, y);
    }

    /// <summary>Fusable when the input is a full [T·B, …] sequence (a constant input is read T times, not in place) and no
    /// hook needs the whole input before the run starts (COS).</summary>
    public bool CanFuse(int rows) => rows == Batch * Steps && (_v != null || BeforeRun == null);

    public IConvEpilogue BeginFused(int rows, int perRow)
    {
        if (!CanFuse(rows)) throw new InvalidOperationException($"neuron '{LayerName}': this call cannot run fused");
        var (v, mask) = Start(perRow, deferInitialPotential: true);
        _fusedCounts = new long[WorkerPool.Shared.Count * Steps];
        _fusedLargest = new float[WorkerPool.Shared.Count];
        return new Epilogue(this, v, mask, perRow, _fusedCounts, _fusedLargest);
    }

    public Variable EndFused(Tensor y)
    {
        var partial = _fusedCounts ?? throw new InvalidOperationException($"neuron '{LayerName}': EndFused without BeginFused");
        _fusedCounts = null;
        var counts = new long[Steps];
        for (int w = 0; w < partial.Length / Steps; w++)
            for (int t = 0; t < Steps; t++) counts[t] += partial[w * Steps + t];
        float largest = 0;
        foreach (float m in _fusedLargest!)
        {
            if (float.IsNaN(m)) { largest = m; break; } // NaN wins: the count below finds it
            largest = Math.Max(largest, m);
        }
        _fusedLargest = null;
        _initialPending = false;
        return Finish(counts, y, largest);
    }

    /// <summary>Whether the latest call ran inside its convolution (<see cref="IConvOutputConsumer"/>); for profiling and tests.</summary>
    public bool LastCallFused { get; private set; }

    private long[]? _fusedCounts; // per worker and step, between BeginFused and EndFused
    private float[]? _fusedLargest; // per worker: max |v| after the call's last step, between BeginFused and EndFused
    private bool _initialPending; // a fused call's first step sets each sample's v0 while that image is in cache

    /// <summary>The membrane potential (v0 on the first call of a run) and the output mask, checked against B·S.</summary>
    private (float[] V, float[]? Mask) Start(int perSample, bool deferInitialPotential = false)
    {
        int n = Batch * perSample;
        if (_v == null)
        {
            CheckInitialOffset(n, perSample);
            _v = Tensor.Scratch(n).Data; // arena memory when an arena is active (a fresh array per run would page-fault)
            if (deferInitialPotential) _initialPending = true;
            else
                for (int b = 0; b < Batch; b++) SetInitialPotential(_v.AsSpan(b * perSample, perSample), b);
        }
        var v = _v;
        if (OutputMask is { } mask && mask.Length != n) throw new ArgumentException($"neuron '{LayerName}': mask has {mask.Length} entries, expected {n}");
        return (v, OutputMask);
    }

    /// <summary>Updates the divergence count and reports the call's spike counts per step. A fused call passes the
    /// largest |v| its epilogue saw after the last step (while v was in cache), so the count needs no pass over v
    /// unless something diverged.</summary>
    private Variable Finish(long[] counts, Tensor y, float? fusedLargest = null)
    {
        LastCallFused = fusedLargest != null;
        _stepsRun += Steps;
        float limit = DivergenceFactor * Threshold * _stepsRun + _largestOffset;
        DivergentNeurons = fusedLargest <= limit ? 0 : CountDivergent(_v, limit); // false for NaN: counts
        Emit(counts, y);
        y.SpikeAmplitude = Threshold; // every output is 0 or θ
        return new Variable(y);
    }

    /// <summary>One step of one sample per output image, spikes written over the current: row = t·B + b.</summary>
    private sealed class Epilogue : IConvEpilogue
    {
        private readonly IfNeuron _neuron;
        private readonly float[] _v;
        private readonly float[]? _mask;
        private readonly int _perSample;
        private readonly long[] _counts;
        private readonly float[] _largest;

        public Epilogue(IfNeuron neuron, float[] v, float[]? mask, int perSample, long[] counts, float[] largest) =>
            (_neuron, _v, _mask, _perSample, _counts, _largest) = (neuron, v, mask, perSample, counts, largest);

        public int Steps => _neuron.Steps;
        public string Name => "if";

        public void Apply(Span<float> image, int row, int worker)
        {
            int t = row / _neuron.Batch, b = row % _neuron.Batch, s = _perSample;
            var step = new IfStep(_neuron.Threshold, _neuron.Rule == FireRule.Greater);
            Span<float> v = _v.AsSpan(b * s, s);
            if (t == 0 && _neuron._initialPending) _neuron.SetInitialPotential(v, b);
            Span<long> counts = _counts.AsSpan(worker * Steps + t, 1);
            if (_mask == null) NeuronKernel.Run(step, image, false, v, image, 1, s, 0, s, counts);
            else NeuronKernel.Run(new MaskedIfStep(step, _mask, b * s), image, false, v, image, 1, s, 0, s, counts);
            if (t == Steps - 1)
            {
                float m = MathF.Abs(TensorPrimitives.MaxMagnitude((ReadOnlySpan<float>)v)); // MaxMagnitude keeps the sign
                ref float largest = ref _largest[worker];
                if (!float.IsNaN(largest) && !(m <= largest)) largest = m;
            }
        }
    }

    /// <summary>Neurons with |v| &gt; <paramref name="limit"/> or v NaN/±Inf. The common case is one vectorized max over
    /// |v|; the counting loop runs only when something diverged.</summary>
    public static long CountDivergent(ReadOnlySpan<float> v, float limit)
    {
        if (v.IsEmpty) return 0;
        float max = MathF.Abs(TensorPrimitives.MaxMagnitude(v)); // MaxMagnitude keeps the sign
        if (max <= limit) return 0; // false for NaN: falls through to the count
        long count = 0;
        foreach (float x in v) if (!(MathF.Abs(x) <= limit)) count++;
        return count;
    }

    /// <summary>Checks the initial offset's length ([S] or [B·S]) and records its largest magnitude.</summary>
    private void CheckInitialOffset(int n, int perSample)
    {
        if (InitialOffset is not { } off) return;
        if (off.Length != perSample && off.Length != n)
            throw new ArgumentException($"neuron '{LayerName}': initial offset has {off.Length} entries, expected {perSample} or {n}");
        _largestOffset = MathF.Abs(TensorPrimitives.MaxMagnitude(off));
    }

    /// <summary>v0 = φ0·θ (+ the initial offset) for sample <paramref name="b"/>'s neurons.</summary>
    private void SetInitialPotential(Span<float> v, int b)
    {
        v.Fill(InitialFraction * Threshold);
        if (InitialOffset is { } off)
            TensorPrimitives.Add(v, off.Length == v.Length ? off : off.AsSpan(b * v.Length, v.Length), v);
    }
}
