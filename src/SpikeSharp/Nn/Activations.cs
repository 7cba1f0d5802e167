using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using SpikeSharp.Autograd;
using SpikeSharp.Autograd.Ops;
using SpikeSharp.Tensors;

namespace SpikeSharp.Nn;

/// <summary>Which activation a model uses where a ReLU would stand (spec §8a), and its settings.</summary>
/// <param name="NoiseP">NoisyQC only: probability that an element stays unquantized in training (dual-phase p = 0.1).</param>
public sealed record ActivationSpec(string Kind = "relu", int Levels = 4, float LambdaInit = 8f, bool LambdaWeightDecay = true, float NoiseP = 0.1f)
{
    public static readonly string[] Kinds = ["relu", "clip", "qcfs", "noisyqc"];

    /// <summary>Largest L accepted (Datta's 2^T − 1 with T = 20).</summary>
    public const int MaxLevels = (1 << 20) - 1;

    public static ActivationSpec Relu => new("relu");
    public static ActivationSpec Qcfs(int levels = 4, float lambdaInit = 8f) => new("qcfs", levels, lambdaInit);

    /// <summary>Checks the settings and builds one activation module.</summary>
    public Activation Create()
    {
        return Kind switch
        {
            "relu" => new ReLU(),
            "clip" => new ClipActivation(LambdaInit, LambdaWeightDecay),
            "qcfs" => new QcfsActivation(Levels, LambdaInit, LambdaWeightDecay),
            "noisyqc" => new NoisyQcActivation(Levels, LambdaInit, NoiseP, LambdaWeightDecay),
            _ => throw new SpikeSharpException($"unknown activation '{Kind}'; expected one of {string.Join(", ", Kinds)}"),
        };
    }

    public void Validate()
    {
        if (!Kinds.Contains(Kind)) throw new SpikeSharpException($"unknown activation '{Kind}'; expected one of {string.Join(", ", Kinds)}");
        if (Kind is "qcfs" or "noisyqc" && (Levels < 1 || Levels > MaxLevels)) throw new SpikeSharpException($"--levels must be in 1..{MaxLevels} for {Kind}, got {Levels}");
        if (Kind == "noisyqc" && !(NoiseP >= 0 && NoiseP <= 1)) throw new SpikeSharpException($"NoisyQC p must be in [0, 1], got {NoiseP}");
        if (Kind != "relu" && !(LambdaInit > 0 && float.IsFinite(LambdaInit))) throw new SpikeSharpException($"λ init must be positive and finite (spec §7.6), got {LambdaInit}");
    }
}

/// <summary>An elementwise activation module; the converter replaces these by spiking neurons. In inference it can run
/// inside the convolution before it (<see cref="IConvOutputConsumer"/>), on each output image while it is in cache.</summary>
public abstract class Activation : Module, IActivationFunction, IConvOutputConsumer
{
    private static readonly IReadOnlyList<Parameter> NoParameters = [];

    /// <summary>The clip threshold λ (the SNN threshold θ after conversion), or null where the activation has none.</summary>
    public virtual Parameter? Lambda => null;

    /// <summary>Quantization levels L, or null for an unquantized activation.</summary>
    public virtual int? Levels => null;

    public virtual IReadOnlyList<Parameter> ActivationParameters => Lambda is { } l ? [l] : NoParameters;

    public abstract void Forward(ReadOnlySpan<float> x, Span<float> y);

    public abstract void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> gy, Span<float> gx, Span<float> gParams);

    public override Variable Forward(Variable x) => Finish(ActivationOp.Forward(x, this));

    /// <summary>this(bn(x) [+ addend]) as one op (<see cref="BatchNormOp.ForwardActivation"/>), finished as <see cref="Forward(Variable)"/> is.</summary>
    internal Variable ForwardAfterBatchNorm(BatchNorm bn, Variable x, Variable? addend) =>
        Finish(BatchNormOp.ForwardActivation(x, bn.Weight, bn.Bias, bn.RunningMean.Data, bn.RunningVar.Data, bn.IsTraining, bn.Momentum, bn.Eps, addend, this));

    /// <summary>Whether a preceding BN may run fused with this activation: false where the forward depends on how the
    /// input is split into calls.</summary>
    internal virtual bool FusesWithBatchNorm => true;

    /// <summary>Eval mode only (the fuser also requires that no tape records), and not where the forward depends on how
    /// the input is split into calls.</summary>
    public bool CanFuse(int rows) => !IsTraining && FusesWithBatchNorm;

    public IConvEpilogue BeginFused(int rows, int perRow) => new Epilogue(this);

    public Variable EndFused(Tensor y) => Finish(new Variable(y));

    /// <summary>The same elementwise function as the unfused op, in place on one output image.</summary>
    private sealed class Epilogue(Activation activation) : IConvEpilogue
    {
        public int Steps => 1;
        public string Name => activation.GetType().Name;
        public void Apply(Span<float> image, int row, int worker) => activation.Forward(image, image);
    }

    /// <summary>What every forward path does with the output: hands it to an active <see cref="ActivationRecorder"/>.</summary>
    protected virtual Variable Finish(Variable y)
    {
        ActivationRecorder.Record(this, y.Value);
        return y;
    }

    protected static Vector512<float> Load(ReadOnlySpan<float> s, int i) => Vector512.LoadUnsafe(ref MemoryMarshal.GetReference(s), (nuint)i);

    /// <summary>λ as a positive float, with a clear error if training drove it to zero or below (spec §7.6).</summary>
    protected float PositiveLambda()
    {
        float l = Lambda!.Value.Data[0];
        if (!(l > 0)) throw new SpikeSharpException($"{GetType().Name}: threshold λ = {l} is not positive; lower the learning rate or the weight decay on λ, or use a larger λ init (spec §7.6)");
        return l;
    }
}

/// <summary>max(x, 0). NOTE: the gradient at exactly 0 is 0, as in PyTorch.</summary>
public sealed class ReLU : Activation
{
    public override void Forward(ReadOnlySpan<float> x, Span<float> y) => TensorPrimitives.Max(x, 0f, y);

    public override void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> gy, Span<float> gx, Span<float> gParams)
    {
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
            for (; i <= x.Length - 16; i += 16)
            {
                var g = Vector512.ConditionalSelect(Vector512.GreaterThan(Load(x, i), Vector512<float>.Zero), Load(gy, i), Vector512<float>.Zero);
                (Load(gx, i) + g).StoreUnsafe(ref MemoryMarshal.GetReference(gx), (nuint)i);
            }
        for (; i < x.Length; i++) if (x[i] > 0) gx[i] += gy[i];
    }
}

/// <summary>Trainable clip h = λ·clip(z/λ, 0, 1) (dual-phase pre-training, spec §4). ∂h/∂z = 1 on [0, λ];
/// ∂h/∂λ = 1 above λ.</summary>
public sealed class ClipActivation : Activation
{
    private readonly Parameter _lambda;
    public override Parameter Lambda => _lambda;

    public ClipActivation(float lambdaInit = 8f, bool lambdaWeightDecay = true) =>
        _lambda = AddParameter("lambda", Tensor.Full(lambdaInit, 1), lambdaWeightDecay);

    public override void Forward(ReadOnlySpan<float> x, Span<float> y) => TensorPrimitives.Clamp(x, 0f, PositiveLambda(), y);

    public override void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> gy, Span<float> gx, Span<float> gParams)
    {
        float lam = PositiveLambda();
        double gl = 0;
        for (int i = 0; i < x.Length; i++)
        {
            if (x[i] > lam) gl += gy[i];
            else if (x[i] >= 0) gx[i] += gy[i];
        }
        gParams[0] += (float)gl;
    }
}

/// <summary>
/// QCFS, spec §1 (clip-then-floor order): h = λ·floor(clip(z/λ, 0, 1)·L + ½)/L, L+1 levels {0, λ/L, …, λ}.
/// Straight-through floor; the clamp passes the gradient on [0, λ] inclusive. So for 0 ≤ z ≤ λ:
/// ∂h/∂z = 1, ∂h/∂λ = (h − z)/λ; for z &gt; λ: ∂h/∂z = 0, ∂h/∂λ = 1; for z &lt; 0 both are 0.
/// </summary>
public sealed class QcfsActivation : Activation
{
    private readonly Parameter _lambda;
    private readonly int _levels;

    public override Parameter Lambda => _lambda;
    public override int? Levels => _levels;

    /// <summary>The shift φ added before the floor (½ in QCFS; 0 gives the biased plain floor of spec §1).</summary>
    public float Shift { get; init; } = 0.5f;

    public QcfsActivation(int levels = 4, float lambdaInit = 8f, bool lambdaWeightDecay = true)
    {
        if (levels < 1) throw new ArgumentOutOfRangeException(nameof(levels), $"QCFS levels must be ≥ 1, got {levels}");
        _levels = levels;
        _lambda = AddParameter("lambda", Tensor.Full(lambdaInit, 1), lambdaWeightDecay);
    }

    protected override Variable Finish(Variable y) => SpikeCountRegularizer.Apply(base.Finish(y), Lambda.Value.Data[0], _levels);

    /// <summary>The quantized value for one input; the reference for kernels and tests.</summary>
    public static float Quantize(float z, float lambda, int levels, float shift = 0.5f)
    {
        float u = Math.Clamp(z / lambda, 0f, 1f);
        return lambda * MathF.Floor(u * levels + shift) / levels;
    }

    /// <summary>Vectorized with the same operation order as <see cref="Quantize"/>, so every path gives identical bits.</summary>
    public override void Forward(ReadOnlySpan<float> x, Span<float> y)
    {
        float lam = PositiveLambda(), shift = Shift;
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<float> vl = Vector512.Create(lam), vL = Vector512.Create((float)_levels), vs = Vector512.Create(shift);
            for (; i <= x.Length - 16; i += 16)
            {
                var u = Vector512.Min(Vector512.Max(Load(x, i) / vl, Vector512<float>.Zero), Vector512<float>.One);
                (vl * Vector512.Floor(u * vL + vs) / vL).StoreUnsafe(ref MemoryMarshal.GetReference(y), (nuint)i);
            }
        }
        for (; i < x.Length; i++) y[i] = Quantize(x[i], lam, _levels, shift);
    }

    public override void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> gy, Span<float> gx, Span<float> gParams)
    {
        // ∂y/∂λ is 1 above λ and (y − z)/λ inside [0, λ]; the inside terms are summed first and divided once.
        float lam = PositiveLambda();
        double above = 0, inside = 0;
        int i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<float> vl = Vector512.Create(lam), accAbove = Vector512<float>.Zero, accInside = Vector512<float>.Zero;
            for (; i <= x.Length - 16; i += 16)
            {
                var z = Load(x, i);
                var g = Load(gy, i);
                var isAbove = Vector512.GreaterThan(z, vl);
                var isInside = Vector512.AndNot(Vector512.GreaterThanOrEqual(z, Vector512<float>.Zero), isAbove);
                (Load(gx, i) + (g & isInside)).StoreUnsafe(ref MemoryMarshal.GetReference(gx), (nuint)i);
                accAbove += g & isAbove;
                accInside += (g * (Load(y, i) - z)) & isInside;
            }
            above = Vector512.Sum(accAbove);
            inside = Vector512.Sum(accInside);
        }
        for (; i < x.Length; i++)
        {
            float z = x[i];
            if (z > lam) above += gy[i];
            else if (z >= 0)
            {
                gx[i] += gy[i];
                inside += gy[i] * (y[i] - z);
            }
        }
        gParams[0] += (float)(above + inside / lam);
    }
}

/// <summary>
/// NoisyQC (dual-phase Phase I, spec §4): u = z·T/|λ|; in training each element is rounded (half to even, straight-through)
/// with probability 1 − p and left continuous with probability p; h = |λ|·clip(u/T, 0, 1). Eval always quantizes.
/// T levels, no ½ shift; |λ| keeps the threshold positive. Gradients as QCFS: ∂h/∂z = 1 and ∂h/∂λ = sign(λ)(h − z)/|λ|
/// for 0 ≤ z ≤ |λ|; ∂h/∂λ = sign(λ) above.
/// </summary>
public sealed class NoisyQcActivation : Activation
{
    private readonly Parameter _lambda;
    private readonly int _levels;
    private readonly int _seed;
    private uint _callSalt;

    /// <summary>Training forward passes so far; the noise of a pass depends only on (seed, this count), so a trainer
    /// that sets it on resume (epoch × batches per epoch) reproduces an uninterrupted run.</summary>
    public long TrainingCalls { get; set; }

    public override Parameter Lambda => _lambda;
    public override int? Levels => _levels;
    public float NoiseP { get; }

    /// <summary>The noise hashes each value's index within its chunk, so the chunking must stay that of <see cref="ActivationOp"/>.</summary>
    internal override bool FusesWithBatchNorm => false;

    public NoisyQcActivation(int levels, float lambdaInit = 5f, float noiseP = 0.1f, bool lambdaWeightDecay = true, int seed = 0)
    {
        if (levels < 1) throw new ArgumentOutOfRangeException(nameof(levels), $"NoisyQC levels must be ≥ 1, got {levels}");
        (_levels, NoiseP, _seed) = (levels, noiseP, seed);
        _lambda = AddParameter("lambda", Tensor.Full(lambdaInit, 1), lambdaWeightDecay);
    }

    private float AbsLambda()
    {
        float l = MathF.Abs(Lambda.Value.Data[0]);
        if (!(l > 0)) throw new SpikeSharpException($"NoisyQC threshold |λ| = {l} is not positive");
        return l;
    }

    /// <summary>The eval-mode value: |λ|·clip(round(z·T/|λ|)/T, 0, 1).</summary>
    public static float Quantize(float z, float absLambda, int levels) =>
        absLambda * Math.Clamp(MathF.Round(z * levels / absLambda, MidpointRounding.ToEven) / levels, 0f, 1f);

    public override void Forward(ReadOnlySpan<float> x, Span<float> y)
    {
        float lam = AbsLambda();
        bool noisy = IsTraining && NoiseP > 0;
        for (int i = 0; i < x.Length; i++)
        {
            // NOTE: chunks run in parallel, so the noise is a hash of (value, index in its fixed-size chunk, a per-call
            // draw from the seeded generator) rather than a shared sequence: reproducible for any thread count.
            float u = x[i] * _levels / lam;
            if (!noisy || NextUniform(x[i], i) >= NoiseP) u = MathF.Round(u, MidpointRounding.ToEven);
            y[i] = lam * Math.Clamp(u / _levels, 0f, 1f);
        }
    }

    public override Variable Forward(Variable x)
    {
        if (IsTraining)
        {
            // SplitMix64 of (seed, call): deterministic across processes (HashCode is randomized per process).
            ulong z = (ulong)(long)_seed * 0x9E3779B97F4A7C15UL + (ulong)TrainingCalls++ + 1;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            _callSalt = (uint)(z ^ (z >> 31));
        }
        return base.Forward(x);
    }

    private float NextUniform(float value, int i)
    {
        uint h = BitConverter.SingleToUInt32Bits(value) * 0x9E3779B1u ^ (uint)i * 0x85EBCA77u ^ _callSalt;
        h ^= h >> 15; h *= 0x2C1B3C6Du; h ^= h >> 12; h *= 0x297A2D39u; h ^= h >> 15;
        return (h >> 8) * (1f / (1 << 24));
    }

    public override void Backward(ReadOnlySpan<float> x, ReadOnlySpan<float> y, ReadOnlySpan<float> gy, Span<float> gx, Span<float> gParams)
    {
        float lam = AbsLambda(), sign = MathF.Sign(Lambda.Value.Data[0]);
        double gl = 0;
        for (int i = 0; i < x.Length; i++)
        {
            float z = x[i];
            if (z > lam) gl += gy[i];
            else if (z >= 0)
            {
                gx[i] += gy[i];
                gl += gy[i] * (y[i] - z) / lam;
            }
        }
        gParams[0] += (float)(sign * gl);
    }
}
