namespace SpikeSharp.Interop.Onnx;

/// <summary>
/// One layer of an ONNX graph after interpretation: the unit the importer matches against a built-in model's modules.
/// <see cref="Inputs"/> are the layers whose outputs it consumes (two for a residual add), <see cref="Depth"/> the
/// longest path from the graph input, used to order the branches of an add like the model runs them.
/// </summary>
internal abstract record OnnxLayer(string Node, string OpType)
{
    public IReadOnlyList<OnnxLayer> Inputs { get; init; } = [];
    public int Depth { get; init; }

    /// <summary>How error messages name the layer: the node and its op type.</summary>
    public string Describe => $"node '{Node}' ({OpType})";
}

internal sealed record OnnxInputLayer(string Node) : OnnxLayer(Node, "graph input");

internal sealed record OnnxConvLayer(string Node, OnnxConstant Weight, OnnxConstant? Bias, int Stride, int Padding) : OnnxLayer(Node, "Conv")
{
    public int Dilation { get; init; } = 1;
    public int Groups { get; init; } = 1;
}

internal sealed record OnnxBatchNormLayer(string Node, OnnxConstant Scale, OnnxConstant Bias, OnnxConstant Mean, OnnxConstant Var, float Eps)
    : OnnxLayer(Node, "BatchNormalization");

/// <summary>Gemm, or MatMul (+ Add); <see cref="Weight"/> is [out, in] like PyTorch's Linear.</summary>
internal sealed record OnnxLinearLayer(string Node, string Op, float[] Weight, int Out, int In, float[]? Bias) : OnnxLayer(Node, Op);

/// <summary>An activation: <c>relu</c>, <c>clip</c> (Clip(0, λ) alone) or <c>qcfs</c> (the seven-node pattern, with
/// λ and L recovered from its constants and <see cref="Order"/> "clip-first" or "floor-first").</summary>
internal sealed record OnnxActivationLayer(string Node, string Op, string Kind, float? Lambda, int? Levels, string? Order) : OnnxLayer(Node, Op);

/// <summary><c>avg</c> or <c>max</c> pooling with a square window, or <c>global</c> average pooling;
/// <see cref="CoversInput"/> when the window spans the whole map (F.avg_pool2d(x, 8) on 8×8 is a global pool).</summary>
internal sealed record OnnxPoolLayer(string Node, string Op, string Kind, int Kernel, int Stride, bool CoversInput) : OnnxLayer(Node, Op);

internal sealed record OnnxAddLayer(string Node) : OnnxLayer(Node, "Add");

/// <summary>Feature maps joined along channels, inputs in order.</summary>
internal sealed record OnnxConcatLayer(string Node) : OnnxLayer(Node, "Concat");

/// <summary>The layers of a graph in execution order, with what the reader noticed.</summary>
internal sealed record OnnxLayers(IReadOnlyList<OnnxLayer> Layers, long Opset, IReadOnlyList<string> Notes);
