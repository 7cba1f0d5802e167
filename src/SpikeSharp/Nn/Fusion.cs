using SpikeSharp.Autograd;
using SpikeSharp.Autograd.Ops;
using SpikeSharp.Tensors;

namespace SpikeSharp.Nn;

/// <summary>
/// A layer that can take a convolution's output image by image inside the convolution, while it is in cache (the IF
/// neuron in SNN inference, an eval-mode activation in ANN inference). The graph executor fuses conv → [eval BN] →
/// [+ addend] → this layer where its plan says so; the outputs are bit-identical to running the modules one by one.
/// </summary>
public interface IConvOutputConsumer
{
    /// <summary>Whether this call, on an input of <paramref name="rows"/> rows, can run fused.</summary>
    bool CanFuse(int rows);

    /// <summary>Starts a fused call on a convolution output of <paramref name="rows"/> rows of <paramref name="perRow"/>
    /// values: the epilogue turns each output image into this layer's output in place.</summary>
    IConvEpilogue BeginFused(int rows, int perRow);

    /// <summary>Finishes the call: <paramref name="y"/> holds what the epilogue wrote; returns this layer's output.</summary>
    Variable EndFused(Tensor y);
}

/// <summary>Runs the fused steps the graph planner chose: conv → [eval BN] → [+ addend] → <see cref="IConvOutputConsumer"/>
/// (inference only: nothing is fused into a convolution while a tape is recording); BN → [+ addend] → activation runs
/// as <see cref="BatchNormOp.ForwardActivation"/> (training and inference). <see cref="Off"/> turns both off.</summary>
internal static class Fusion
{
    [ThreadStatic] private static bool t_off;

    public static bool ConvolutionsEnabled => Tape.Current == null && !t_off;

    public static bool NormalizationsEnabled => !t_off;

    /// <summary>Runs the modules one by one on this thread until disposed (the reference the fused paths are tested against).</summary>
    public static Scope Off()
    {
        t_off = true;
        return default;
    }

    public readonly struct Scope : IDisposable
    {
        public void Dispose() => t_off = false;
    }

    /// <summary>consumer(BN(conv(x)) + addend), one output image at a time.</summary>
    public static Variable RunConvolution(Conv2d conv, BatchNorm? bn, Variable x, Variable? addend, IConvOutputConsumer consumer)
    {
        int rows = x.Shape[0];
        var inner = consumer.BeginFused(rows, OutputSize(conv, x));
        var epilogue = new CurrentEpilogue(inner, bn, addend?.Value.Data);
        var y = Conv2dOp.Forward(x, conv.Weight, conv.Bias, conv.Stride, conv.Padding, epilogue).Value;
        return consumer.EndFused(y);
    }

    private static int OutputSize(Conv2d conv, Variable x)
    {
        var g = new Conv2dGeometry(x.Shape[0], x.Shape[1], x.Shape[2], x.Shape[3], conv.OutChannels, conv.KernelSize, conv.KernelSize,
            conv.Stride, conv.Stride, conv.Padding, conv.Padding);
        return g.OutChannels * g.OutPlane;
    }

    /// <summary>Makes the consumer's input current from a convolution output image in place: eval BN as the same per-channel
    /// multiply then add that <see cref="BatchNormOp"/> does, then + addend (so results match the unfused ops bit for bit).</summary>
    private sealed class CurrentEpilogue : IConvEpilogue
    {
        private readonly IConvEpilogue _inner;
        private readonly float[]? _scale, _shift, _addend;

        public CurrentEpilogue(IConvEpilogue inner, BatchNorm? bn, float[]? addend)
        {
            _inner = inner;
            _addend = addend;
            if (bn != null) (_scale, _shift) = BatchNormOp.EvalAffine(bn.Weight.Value.Data, bn.Bias.Value.Data, bn.RunningMean.Data, bn.RunningVar.Data, bn.Eps);
            Name = "conv fwd" + (bn != null ? " + bn" : "") + (addend != null ? " + add" : "") + " + " + inner.Name;
        }

        public int Steps => _inner.Steps;
        public string Name { get; }

        public void Apply(Span<float> image, int row, int worker)
        {
            var addend = _addend != null ? _addend.AsSpan(row * image.Length, image.Length) : default;
            if (_scale != null) BatchNormKernels.AffineImage(image, addend, _scale, _shift!, image);
            else if (!addend.IsEmpty) TensorPrimitives.Add(image, addend, image);
            _inner.Apply(image, row, worker);
        }
    }
}
