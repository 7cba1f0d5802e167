using SpikeSharp.Autograd;
using SpikeSharp.Autograd.Ops;
using SpikeSharp.Tensors;

namespace SpikeSharp.Nn;

/// <summary>2-D convolution; weight [Out,In/groups,K,K] Kaiming-normal (fan_out), optional bias initialized to 0.
/// Groups &gt; 1 (depthwise when groups = In) and dilation &gt; 1 run on the direct kernels and are never fused.</summary>
public sealed class Conv2d : Module
{
    public int InChannels { get; }
    public int OutChannels { get; }
    public int KernelSize { get; }
    public int Stride { get; }
    public int Padding { get; }
    public int Dilation { get; }
    public int Groups { get; }
    public Parameter Weight { get; }
    public Parameter? Bias { get; }

    /// <summary>Groups = dilation = 1: the GEMM/direct kernels, which fusion and the SNN's silent-channel skipping use.</summary>
    public bool IsDense => Groups == 1 && Dilation == 1;

    public Conv2d(int inChannels, int outChannels, int kernelSize, int stride = 1, int padding = 0, bool bias = true, Random? rng = null,
        int dilation = 1, int groups = 1)
    {
        if (groups < 1 || inChannels % groups != 0 || outChannels % groups != 0)
            throw new SpikeSharpException($"conv groups {groups} must divide the input ({inChannels}) and output ({outChannels}) channels");
        if (dilation < 1) throw new SpikeSharpException($"conv dilation must be ≥ 1, got {dilation}");
        (InChannels, OutChannels, KernelSize, Stride, Padding, Dilation, Groups) = (inChannels, outChannels, kernelSize, stride, padding, dilation, groups);
        Weight = AddParameter("weight", new Tensor(outChannels, inChannels / groups, kernelSize, kernelSize));
        Init.KaimingNormalFanOut(Weight.Value, rng ?? new Random(0));
        if (bias) Bias = AddParameter("bias", new Tensor(outChannels));
    }

    public override Variable Forward(Variable x) => IsDense
        ? Conv2dOp.Forward(x, Weight, Bias, Stride, Padding)
        : Conv2dOp.ForwardGrouped(x, Weight, Bias, Stride, Padding, Dilation, Groups);
}

/// <summary>Fully connected layer; weight [Out,In] with PyTorch's default uniform init, bias 0.</summary>
public sealed class Linear : Module
{
    public int InFeatures { get; }
    public int OutFeatures { get; }
    public Parameter Weight { get; }
    public Parameter? Bias { get; }

    public Linear(int inFeatures, int outFeatures, bool bias = true, Random? rng = null)
    {
        (InFeatures, OutFeatures) = (inFeatures, outFeatures);
        Weight = AddParameter("weight", new Tensor(outFeatures, inFeatures));
        Init.DefaultUniform(Weight.Value, rng ?? new Random(0));
        if (bias) Bias = AddParameter("bias", new Tensor(outFeatures));
    }

    public override Variable Forward(Variable x) => LinearOp.Forward(x.Shape.Length == 2 ? x : ElementwiseOps.Flatten(x), Weight, Bias);
}

/// <summary>Batch normalization over dim 1 of [N,C] (BatchNorm1d) or [N,C,H,W] (BatchNorm2d); γ=1, β=0,
/// running mean 0, running var 1. BN parameters are exempt from weight decay only if the recipe says so.</summary>
public sealed class BatchNorm : Module
{
    public int Channels { get; }
    public float Momentum { get; }
    public float Eps { get; }
    public Parameter Weight { get; }
    public Parameter Bias { get; }
    public Tensor RunningMean { get; }
    public Tensor RunningVar { get; }

    public BatchNorm(int channels, float momentum = 0.1f, float eps = 1e-5f)
    {
        (Channels, Momentum, Eps) = (channels, momentum, eps);
        Weight = AddParameter("weight", Tensor.Full(1f, channels));
        Bias = AddParameter("bias", new Tensor(channels));
        RunningMean = AddBuffer("running_mean", new Tensor(channels));
        RunningVar = AddBuffer("running_var", Tensor.Full(1f, channels));
    }

    public override Variable Forward(Variable x) =>
        BatchNormOp.Forward(x, Weight, Bias, RunningMean.Data, RunningVar.Data, IsTraining, Momentum, Eps);
}

/// <summary>Average pooling with a square window (stride defaults to the window).</summary>
public sealed class AvgPool2d(int kernelSize, int? stride = null) : Module
{
    public int KernelSize { get; } = kernelSize;
    public int Stride { get; } = stride ?? kernelSize;
    public override Variable Forward(Variable x) => PoolOps.AvgPool2d(x, KernelSize, Stride);
}

/// <summary>What a max pool reads in the SNN, as a graph's planner classifies it: a membrane current (pooled as is,
/// per step) or spikes (pooled by <c>SpikingMaxPool</c>'s gating). Unknown outside graphs: the converter refuses it.</summary>
public enum PoolInput { Unknown, Current, Spikes }

/// <summary>Max pooling with a square window. Converts to spikes where a graph planner set <see cref="Input"/>
/// (docs/conversion-methods.md "Max pooling"); built-in models use <see cref="AvgPool2d"/>.</summary>
public sealed class MaxPool2d(int kernelSize, int? stride = null) : Module
{
    public int KernelSize { get; } = kernelSize;
    public int Stride { get; } = stride ?? kernelSize;

    /// <summary>Set by the planner that runs this pool.</summary>
    public PoolInput Input { get; set; }

    public override Variable Forward(Variable x) => PoolOps.MaxPool2d(x, KernelSize, Stride);
}

/// <summary>Adaptive average pooling to 1×1 (global average pooling).</summary>
public sealed class GlobalAvgPool2d : Module
{
    public override Variable Forward(Variable x) => PoolOps.GlobalAvgPool(x);
}

/// <summary>[N, ...] → [N, rest].</summary>
public sealed class Flatten : Module
{
    public override Variable Forward(Variable x) => ElementwiseOps.Flatten(x);
}

/// <summary>Inverted dropout, active only in training mode.</summary>
public sealed class Dropout(float p, int seed = 0) : Module
{
    private readonly Random _rng = new(seed);
    public float P { get; } = p;
    public override Variable Forward(Variable x) => IsTraining ? ElementwiseOps.Dropout(x, P, _rng) : x;
}
