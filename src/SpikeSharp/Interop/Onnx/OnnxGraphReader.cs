using Google.Protobuf;
using SpikeSharp.Interop.Onnx.Proto;

namespace SpikeSharp.Interop.Onnx;

/// <summary>
/// Interprets an ONNX graph exported from PyTorch into <see cref="OnnxLayers"/>: weights and constants are resolved,
/// the QCFS activation's seven elementwise nodes become one activation layer with its λ and L, the shape arithmetic of
/// <c>x.view(x.size(0), -1)</c> becomes a flatten, and per-sample shapes are propagated from the input so that every
/// weight is checked against the feature map it is applied to. Anything else is an error that names the node.
/// </summary>
internal static class OnnxGraphReader
{
    /// <summary>The ONNX ops the importer understands (ai.onnx domain).</summary>
    public static readonly string[] SupportedOps =
    [
        "Add", "AveragePool", "BatchNormalization", "Clip", "Concat", "Constant", "Conv", "Div", "Dropout", "Flatten", "Floor",
        "Gather", "Gemm", "GlobalAveragePool", "Identity", "MatMul", "MaxPool", "Mul", "Pad", "Relu", "Reshape", "Shape", "Unsqueeze",
    ];

    /// <summary>Parses <paramref name="bytes"/> and interprets the graph for an input of shape [C, H, W].</summary>
    public static OnnxLayers Read(byte[] bytes, string path, int channels, int height, int width)
    {
        ModelProto model;
        try { model = ModelProto.Parser.ParseFrom(bytes); }
        // NOTE: on some truncated unknown fields Google.Protobuf 3.25 throws ArgumentOutOfRangeException or
        // IndexOutOfRangeException instead of its own exception (found by fuzzing; see
        // OnnxImportTests.TruncatedUnknownFieldIsAnInvalidFileError). Only the parse is in this try: they come from protobuf.
        catch (Exception e) when (e is InvalidProtocolBufferException or ArgumentOutOfRangeException or IndexOutOfRangeException)
        {
            throw new InvalidFileException(path, $"is not a valid ONNX file (protobuf: {e.Message})", e);
        }
        var graph = model.Graph;
        if (graph is null || graph.Node.Count == 0) throw new InvalidFileException(path, "is not an ONNX model: it has no graph nodes");
        long opset = 0;
        foreach (var o in model.OpsetImport)
            if (o.Domain is "" or "ai.onnx") opset = Math.Max(opset, o.Version);
        if (opset <= 0) throw new InvalidFileException(path, "declares no ai.onnx opset (opset_import)");

        var unsupported = new List<string>();
        for (int i = 0; i < graph.Node.Count; i++)
        {
            var n = graph.Node[i];
            if (!(n.Domain is "" or "ai.onnx") || Array.IndexOf(SupportedOps, n.OpType) < 0)
                unsupported.Add($"'{NodeName(n, i)}' ({(n.Domain is "" or "ai.onnx" ? "" : n.Domain + ".")}{n.OpType})");
        }
        if (unsupported.Count > 0)
            throw new InvalidFileException(path, $"has {unsupported.Count} node(s) whose op the importer does not support: " +
                $"{string.Join(", ", unsupported.Take(20))}{(unsupported.Count > 20 ? ", …" : "")}. Supported ops: {string.Join(", ", SupportedOps)}");
        return new Interpreter(path, graph, opset, [channels, height, width]).Run();
    }

    /// <summary>Execution order of the layers: post-order from the output, each input's branch complete before the next.
    /// By default the deeper input of an add comes first, so a residual block lists its main branch before its
    /// shortcut, as the built-in models run them (the <c>--arch</c> mapper walks them in that order);
    /// <paramref name="shallowFirst"/> puts the shortcut first, so it is ready when the main branch's last convolution
    /// runs (a graph then fuses the add into it).</summary>
    internal static List<OnnxLayer> Linearize(OnnxLayer last, bool shallowFirst = false)
    {
        var order = new List<OnnxLayer>();
        var visited = new HashSet<OnnxLayer>(ReferenceEqualityComparer.Instance);
        var stack = new Stack<(OnnxLayer Layer, bool Done)>();
        stack.Push((last, false));
        while (stack.Count > 0)
        {
            var (layer, done) = stack.Pop();
            if (done) { if (layer is not OnnxInputLayer) order.Add(layer); continue; }
            if (!visited.Add(layer)) continue;
            stack.Push((layer, true));
            // The stack pops the last pushed input first.
            var inputs = shallowFirst ? layer.Inputs.OrderByDescending(l => l.Depth) : layer.Inputs.OrderBy(l => l.Depth);
            foreach (var input in inputs)
                if (!visited.Contains(input)) stack.Push((input, false));
        }
        return order;
    }

    internal static string NodeName(NodeProto n, int index) => n.Name.Length > 0 ? n.Name : $"#{index} {n.OpType}";

    private abstract record Value;

    private sealed record Const(OnnxConstant C) : Value;

    /// <summary>A tensor computed from the graph input: the layer that produced it and its per-sample shape.</summary>
    private sealed record Dyn(OnnxLayer Producer, int[] Shape) : Value
    {
        public string ShapeString => "[" + string.Join(",", Shape) + "]";
        public int Features => Shape.Aggregate(1, (a, b) => a * b);
    }

    /// <summary>int64 shape arithmetic on a computed tensor's shape; a null item is the batch size.</summary>
    private sealed record Sym(long?[] Items, bool Scalar) : Value;

    private sealed class Interpreter(string path, GraphProto graph, long opset, int[] inputShape)
    {
        private readonly Dictionary<string, Value> _values = new();
        private readonly Dictionary<string, List<NodeProto>> _consumers = new();
        private readonly HashSet<NodeProto> _done = new(ReferenceEqualityComparer.Instance);
        private readonly Dictionary<NodeProto, int> _index = new(ReferenceEqualityComparer.Instance);
        private readonly HashSet<string> _graphOutputs = new();
        private readonly List<string> _notes = new();

        public OnnxLayers Run()
        {
            foreach (var t in graph.Initializer)
                if (!_values.TryAdd(t.Name, new Const(OnnxConstant.Decode(t, path, "initializer"))))
                    throw new InvalidFileException(path, $"initializer '{t.Name}' is defined twice");
            var inputs = graph.Input.Where(i => !_values.ContainsKey(i.Name)).ToList();
            if (inputs.Count != 1)
                throw new InvalidFileException(path, $"has {inputs.Count} graph inputs ({string.Join(", ", inputs.Select(i => i.Name))}); the importer expects one image input");
            CheckInputShape(inputs[0]);
            var input = new OnnxInputLayer(inputs[0].Name);
            _values[inputs[0].Name] = new Dyn(input, inputShape);
            foreach (var o in graph.Output) _graphOutputs.Add(o.Name);
            if (graph.Output.Count != 1) throw new InvalidFileException(path, $"has {graph.Output.Count} graph outputs; the importer expects one (the logits)");

            for (int i = 0; i < graph.Node.Count; i++)
            {
                var n = graph.Node[i];
                _index[n] = i;
                foreach (var name in n.Input)
                    if (name.Length > 0)
                    {
                        if (!_consumers.TryGetValue(name, out var list)) _consumers[name] = list = new();
                        list.Add(n);
                    }
            }
            // Constants first: PyTorch places a Constant right before its consumer, but the QCFS pattern is matched
            // from its first node and needs the constants of the nodes after it.
            foreach (var n in graph.Node)
            {
                if (n.OpType == "Constant") { Set(n, new Const(ConstantNode(n))); _done.Add(n); }
                else if (n.OpType == "Identity" && n.Input.Count == 1 && _values.TryGetValue(n.Input[0], out var v) && v is Const)
                {
                    Set(n, v);
                    _done.Add(n);
                }
            }
            foreach (var n in graph.Node)
                if (!_done.Contains(n)) Interpret(n);

            var outName = graph.Output[0].Name;
            if (!_values.TryGetValue(outName, out var output) || output is not Dyn result)
                throw new InvalidFileException(path, $"graph output '{outName}' is not computed from the input");
            if (result.Shape.Length != 1)
                throw new InvalidFileException(path, $"graph output '{outName}' has per-sample shape {result.ShapeString}; expected a vector of logits");
            return new OnnxLayers(Linearize(result.Producer), opset, _notes);
        }

        private void CheckInputShape(ValueInfoProto input)
        {
            var dims = input.Type?.TensorType?.Shape?.Dim;
            if (dims is null || dims.Count == 0) return;
            if (dims.Count != 4)
                throw new InvalidFileException(path, $"graph input '{input.Name}' has {dims.Count} dimensions; expected [N, C, H, W]");
            for (int d = 1; d < 4; d++)
                if (dims[d].ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue && dims[d].DimValue != inputShape[d - 1])
                    throw new InvalidFileException(path, $"graph input '{input.Name}' has shape [N,{string.Join(",", dims.Skip(1).Select(x => x.ValueCase == TensorShapeProto.Types.Dimension.ValueOneofCase.DimValue ? x.DimValue.ToString() : "?"))}]" +
                        $" but the model is imported for {string.Join("x", inputShape)}; give --input-shape CxHxW");
        }

        private InvalidFileException Error(NodeProto n, string problem) =>
            new(path, $"node '{NodeName(n, _index.GetValueOrDefault(n))}' ({n.OpType}): {problem}");

        private string Name(NodeProto n) => NodeName(n, _index.GetValueOrDefault(n));

        private Value? Optional(NodeProto n, int i)
        {
            if (i >= n.Input.Count || n.Input[i].Length == 0) return null;
            if (!_values.TryGetValue(n.Input[i], out var v))
                throw Error(n, $"input '{n.Input[i]}' is used before it is defined (nodes must be in topological order)");
            return v;
        }

        private Value In(NodeProto n, int i) => Optional(n, i) ?? throw Error(n, $"input {i} is missing");

        private Dyn DynIn(NodeProto n, int i) => In(n, i) as Dyn ?? throw Error(n, $"input {i} ('{n.Input[i]}') must be computed from the graph input, not a constant");

        private OnnxConstant ConstIn(NodeProto n, int i, string what) =>
            In(n, i) is Const c ? c.C : throw Error(n, $"the {what} (input {i}, '{n.Input[i]}') must be a constant (initializer or Constant node)");

        private void Set(NodeProto n, Value v, int output = 0)
        {
            if (output >= n.Output.Count || n.Output[output].Length == 0) throw Error(n, "has no output");
            if (!_values.TryAdd(n.Output[output], v)) throw Error(n, $"output '{n.Output[output]}' is defined twice");
        }

        private static AttributeProto? Attr(NodeProto n, string name)
        {
            foreach (var a in n.Attribute) if (a.Name == name) return a;
            return null;
        }

        private static long AttrInt(NodeProto n, string name, long fallback) => Attr(n, name) is { } a ? a.I : fallback;

        private static float AttrFloat(NodeProto n, string name, float fallback) => Attr(n, name) is { } a ? a.F : fallback;

        private static long[]? AttrInts(NodeProto n, string name) => Attr(n, name) is { } a ? a.Ints.ToArray() : null;

        private OnnxConstant ConstantNode(NodeProto n)
        {
            string name = n.Output.Count > 0 ? n.Output[0] : Name(n);
            if (n.Attribute.Count != 1) throw Error(n, $"has {n.Attribute.Count} attributes; a Constant has one (value)");
            var a = n.Attribute[0];
            return a.Name switch
            {
                "value" when a.T is not null => OnnxConstant.Decode(a.T, path, name),
                "value_float" => OnnxConstant.FromFloats(name, [], [a.F]),
                "value_floats" => OnnxConstant.FromFloats(name, [a.Floats.Count], a.Floats.ToArray()),
                "value_int" => OnnxConstant.FromInts(name, [], [a.I]),
                "value_ints" => OnnxConstant.FromInts(name, [a.Ints.Count], a.Ints.ToArray()),
                _ => throw Error(n, $"attribute '{a.Name}' is not supported (value, value_float(s), value_int(s))"),
            };
        }

        private static T Layer<T>(T layer, params Dyn[] inputs) where T : OnnxLayer =>
            layer with { Inputs = inputs.Select(i => i.Producer).ToArray(), Depth = inputs.Max(i => i.Producer.Depth) + 1 };

        private void Interpret(NodeProto n)
        {
            switch (n.OpType)
            {
                case "Conv": Conv(n); break;
                case "BatchNormalization": BatchNorm(n); break;
                case "Gemm": Gemm(n); break;
                case "MatMul": MatMul(n); break;
                case "Add": Add(n); break;
                case "Relu":
                {
                    var x = DynIn(n, 0);
                    Set(n, x with { Producer = Layer(new OnnxActivationLayer(Name(n), "Relu", "relu", null, null, null), x) });
                    break;
                }
                case "Clip": ClipActivation(n); break;
                case "Div": Qcfs(n); break;
                case "Mul" or "Floor":
                    throw Error(n, "is not part of a QCFS activation (Div → Clip → Mul → Add → Floor → Div → Mul, or Div → Mul → Add → Floor → Div → Clip → Mul); other elementwise arithmetic is not supported");
                case "AveragePool" or "MaxPool": Pool(n); break;
                case "GlobalAveragePool":
                {
                    var x = DynIn(n, 0);
                    if (x.Shape.Length != 3) throw Error(n, $"expects a [C,H,W] feature map, got {x.ShapeString}");
                    Set(n, new Dyn(Layer(new OnnxPoolLayer(Name(n), n.OpType, "global", x.Shape[1], 1, true), x), [x.Shape[0], 1, 1]));
                    break;
                }
                case "Flatten":
                {
                    var x = DynIn(n, 0);
                    if (AttrInt(n, "axis", 1) != 1) throw Error(n, $"axis {AttrInt(n, "axis", 1)} is not supported; only axis 1 (keep the batch) is");
                    Set(n, new Dyn(x.Producer, [x.Features]));
                    break;
                }
                case "Reshape": Reshape(n); break;
                case "Identity": Set(n, In(n, 0)); break;
                case "Pad":
                {
                    // PyTorch's opset-11 export of avg_pool2d puts a zero Pad before AveragePool.
                    var x = DynIn(n, 0);
                    var pads = opset >= 11 ? (Optional(n, 1) is null ? [] : ConstIn(n, 1, "pads").Ints) : AttrInts(n, "pads");
                    if (pads is null || pads.Any(p => p != 0))
                        throw Error(n, $"pads [{string.Join(",", pads ?? [])}] are not supported; only a zero Pad (a pass-through) is");
                    Set(n, x);
                    break;
                }
                case "Dropout":
                    for (int o = 1; o < n.Output.Count; o++)
                        if (n.Output[o].Length > 0 && (_consumers.ContainsKey(n.Output[o]) || _graphOutputs.Contains(n.Output[o])))
                            throw Error(n, "its mask output is used; only inference-mode Dropout (a pass-through) is supported");
                    if (Optional(n, 2) is Const { C.Count: 1 } mode && mode.C.Floats[0] != 0)
                        throw Error(n, "training_mode is true; only inference-mode Dropout (a pass-through) is supported");
                    Set(n, DynIn(n, 0));
                    break;
                case "Shape": Shape(n); break;
                case "Gather": Gather(n); break;
                case "Unsqueeze": Unsqueeze(n); break;
                case "Concat": Concat(n); break;
                case "Constant": break;
                default: throw Error(n, "is not supported");
            }
        }

        private (int Stride, int Padding) Window(NodeProto n, int kernel)
        {
            var (stride, padding, dilation) = DilatedWindow(n, kernel);
            if (dilation != 1) throw Error(n, $"dilations [{dilation},{dilation}] are not supported here; expected 1");
            return (stride, padding);
        }

        private (int Stride, int Padding, int Dilation) DilatedWindow(NodeProto n, int kernel)
        {
            var strides = AttrInts(n, "strides") ?? [1, 1];
            var pads = AttrInts(n, "pads") ?? [0, 0, 0, 0];
            var dilations = AttrInts(n, "dilations") ?? [1, 1];
            string autoPad = Attr(n, "auto_pad") is { } ap ? ap.S.ToStringUtf8() : "NOTSET";
            if (autoPad is not ("NOTSET" or "VALID" or "")) throw Error(n, $"auto_pad {autoPad} is not supported; export with explicit pads");
            if (strides.Length != 2 || strides[0] != strides[1] || strides[0] < 1 || strides[0] > 1024)
                throw Error(n, $"strides [{string.Join(",", strides)}] are not supported; expected two equal strides ≥ 1");
            if (dilations.Length != 2 || dilations[0] != dilations[1] || dilations[0] < 1 || dilations[0] > 1024)
                throw Error(n, $"dilations [{string.Join(",", dilations)}] are not supported; expected two equal dilations ≥ 1");
            if (pads.Length != 4 || pads.Any(p => p != pads[0]) || pads[0] < 0 || pads[0] > dilations[0] * (kernel - 1) + 1)
                throw Error(n, $"pads [{string.Join(",", pads)}] are not supported; expected the same padding on every side");
            return ((int)strides[0], (int)pads[0], (int)dilations[0]);
        }

        private int[] Spatial(NodeProto n, Dyn x, int kernel, int stride, int padding, int channels, int dilation = 1)
        {
            int span = dilation * (kernel - 1) + 1;
            int h = (x.Shape[1] + 2 * padding - span) / stride + 1, w = (x.Shape[2] + 2 * padding - span) / stride + 1;
            if (x.Shape[1] + 2 * padding < span || x.Shape[2] + 2 * padding < span)
                throw Error(n, $"a {kernel}x{kernel} window does not fit the {x.Shape[1]}x{x.Shape[2]} feature map");
            return [channels, h, w];
        }

        private void Conv(NodeProto n)
        {
            var x = DynIn(n, 0);
            var w = ConstIn(n, 1, "weight");
            var b = Optional(n, 2) is { } bv ? (bv as Const)?.C ?? throw Error(n, "the bias (input 2) must be a constant") : null;
            if (x.Shape.Length != 3) throw Error(n, $"expects a [C,H,W] feature map, got {x.ShapeString}");
            if (w.Dims.Length != 4 || w.Dims[2] != w.Dims[3] || w.Dims[2] < 1 || w.Dims[2] > 1024 || w.Dims[0] < 1)
                throw Error(n, $"weight {w.ShapeString} is not supported; expected [out, in, k, k]");
            long group = AttrInt(n, "group", 1);
            if (group < 1 || x.Shape[0] % group != 0 || w.Dims[0] % group != 0)
                throw Error(n, $"group {group} does not divide the {x.Shape[0]} input and {w.Dims[0]} output channels");
            int k = (int)w.Dims[2];
            if (AttrInts(n, "kernel_shape") is { } ks && !(ks.Length == 2 && ks[0] == k && ks[1] == k))
                throw Error(n, $"kernel_shape [{string.Join(",", ks)}] does not match the weight {w.ShapeString}");
            if (w.Dims[1] * group != x.Shape[0])
                throw Error(n, $"weight {w.ShapeString} (group {group}) expects {w.Dims[1] * group} input channels; the feature map {x.ShapeString} has {x.Shape[0]}");
            if (b is not null && !(b.Dims.Length == 1 && b.Dims[0] == w.Dims[0]))
                throw Error(n, $"bias {b.ShapeString} does not match the weight {w.ShapeString}");
            var (stride, padding, dilation) = DilatedWindow(n, k);
            var layer = Layer(new OnnxConvLayer(Name(n), w, b, stride, padding) { Dilation = dilation, Groups = (int)group }, x);
            Set(n, new Dyn(layer, Spatial(n, x, k, stride, padding, (int)w.Dims[0], dilation)));
        }

        private void BatchNorm(NodeProto n)
        {
            var x = DynIn(n, 0);
            if (AttrInt(n, "training_mode", 0) != 0) throw Error(n, "is in training mode; export the model in eval mode");
            int c = x.Shape[0];
            var p = new OnnxConstant[4];
            string[] what = ["scale", "bias", "mean", "var"];
            for (int i = 0; i < 4; i++)
            {
                p[i] = ConstIn(n, i + 1, what[i]);
                if (p[i].Count != c) throw Error(n, $"{what[i]} {p[i].ShapeString} has {p[i].Count} values; the feature map {x.ShapeString} has {c} channels");
            }
            for (int o = 1; o < n.Output.Count; o++)
                if (n.Output[o].Length > 0 && _consumers.ContainsKey(n.Output[o])) throw Error(n, "uses its running-statistics outputs; export in eval mode");
            float eps = AttrFloat(n, "epsilon", 1e-5f);
            if (!(eps >= 0 && eps < 1)) throw Error(n, $"epsilon {eps} is out of range");
            Set(n, x with { Producer = Layer(new OnnxBatchNormLayer(Name(n), p[0], p[1], p[2], p[3], eps), x) });
        }

        private void Gemm(NodeProto n)
        {
            var x = DynIn(n, 0);
            var b = ConstIn(n, 1, "weight");
            var c = Optional(n, 2) is { } cv ? (cv as Const)?.C ?? throw Error(n, "the bias (input 2) must be a constant") : null;
            if (AttrInt(n, "transA", 0) != 0) throw Error(n, "transA = 1 is not supported");
            bool transB = AttrInt(n, "transB", 0) != 0;
            float alpha = AttrFloat(n, "alpha", 1f), beta = AttrFloat(n, "beta", 1f);
            var (weight, outF, inF) = Weight(n, x, b, transB);
            if (alpha != 1f) for (int i = 0; i < weight.Length; i++) weight[i] *= alpha;
            float[]? bias = null;
            if (c is not null)
            {
                if (c.Count != outF && c.Count != 1) throw Error(n, $"bias {c.ShapeString} does not match {outF} outputs");
                bias = new float[outF];
                for (int i = 0; i < outF; i++) bias[i] = beta * c.Floats[c.Count == 1 ? 0 : i];
            }
            Set(n, new Dyn(Layer(new OnnxLinearLayer(Name(n), "Gemm", weight, outF, inF, bias), x), [outF]));
        }

        /// <summary>The [out, in] weight of a Gemm/MatMul whose constant operand is [in, out] (or [out, in] when transposed).</summary>
        private (float[] Weight, int Out, int In) Weight(NodeProto n, Dyn x, OnnxConstant b, bool transposed)
        {
            if (x.Shape.Length != 1) throw Error(n, $"expects a flattened [features] input, got {x.ShapeString}");
            if (b.Dims.Length != 2) throw Error(n, $"weight {b.ShapeString} is not a matrix");
            int rows = (int)b.Dims[0], cols = (int)b.Dims[1];
            int outF = transposed ? rows : cols, inF = transposed ? cols : rows;
            if (inF != x.Shape[0]) throw Error(n, $"weight {b.ShapeString} expects {inF} input features; the input has {x.Shape[0]}");
            if (transposed) return ((float[])b.Floats.Clone(), outF, inF);
            var w = new float[b.Count];
            for (int i = 0; i < rows; i++)
                for (int j = 0; j < cols; j++) w[j * rows + i] = b.Floats[i * cols + j];
            return (w, outF, inF);
        }

        private void MatMul(NodeProto n)
        {
            var x = DynIn(n, 0);
            var (weight, outF, inF) = Weight(n, x, ConstIn(n, 1, "weight"), transposed: false);
            float[]? bias = null;
            var target = n;
            // PyTorch exports Linear on non-2-D inputs, or with some options, as MatMul followed by an Add of the bias.
            if (n.Output.Count > 0 && _consumers.TryGetValue(n.Output[0], out var next) && next.Count == 1 && next[0].OpType == "Add"
                && !_graphOutputs.Contains(n.Output[0]) && next[0].Input.Count == 2)
            {
                var add = next[0];
                int other = add.Input[0] == n.Output[0] ? 1 : 0;
                if (_values.TryGetValue(add.Input[other], out var bv) && bv is Const c)
                {
                    if (c.C.Count != outF) throw Error(add, $"bias {c.C.ShapeString} of MatMul '{Name(n)}' does not match {outF} outputs");
                    bias = (float[])c.C.Floats.Clone();
                    _done.Add(add);
                    target = add;
                }
            }
            Set(target, new Dyn(Layer(new OnnxLinearLayer(Name(n), bias is null ? "MatMul" : "MatMul+Add", weight, outF, inF, bias), x), [outF]));
        }

        private void Add(NodeProto n)
        {
            if (In(n, 0) is Dyn a && In(n, 1) is Dyn b)
            {
                if (!a.Shape.AsSpan().SequenceEqual(b.Shape))
                    throw Error(n, $"adds tensors of shapes {a.ShapeString} and {b.ShapeString}; a residual add needs equal shapes");
                Set(n, new Dyn(Layer(new OnnxAddLayer(Name(n)), a, b), a.Shape));
                return;
            }
            throw Error(n, "adds a constant; the importer supports Add only as a residual sum of two computed tensors or as the bias right after MatMul");
        }

        /// <summary>Clip's bounds: inputs 1 and 2 from opset 11, attributes min/max before.</summary>
        private (float? Min, float? Max) ClipBounds(NodeProto n)
        {
            if (opset < 11 || n.Input.Count < 2)
                return (Attr(n, "min") is { } lo ? lo.F : null, Attr(n, "max") is { } hi ? hi.F : null);
            float? Bound(int i, string what) => Optional(n, i) is null ? null : Scalar(n, ConstIn(n, i, what), what);
            return (Bound(1, "min"), Bound(2, "max"));
        }

        private float Scalar(NodeProto n, OnnxConstant c, string what) =>
            c.Count == 1 ? c.Floats[0] : throw Error(n, $"the {what} must be a scalar, got shape {c.ShapeString}");

        private void ClipActivation(NodeProto n)
        {
            var x = DynIn(n, 0);
            var (min, max) = ClipBounds(n);
            if (min != 0f) throw Error(n, $"Clip with min {min?.ToString() ?? "none"} is not an activation; expected min 0 (ReLU, or Clip(0, λ))");
            if (max is null) { Set(n, x with { Producer = Layer(new OnnxActivationLayer(Name(n), "Clip", "relu", null, null, null), x) }); return; }
            if (!(max > 0 && float.IsFinite(max.Value))) throw Error(n, $"Clip max {max} is not a positive threshold");
            Set(n, x with { Producer = Layer(new OnnxActivationLayer(Name(n), "Clip", "clip", max, null, null), x) });
        }

        /// <summary>The node that alone consumes <paramref name="n"/>'s output, or an error naming where the QCFS pattern breaks.</summary>
        private NodeProto Follow(NodeProto start, NodeProto n, string expected)
        {
            string output = n.Output.Count > 0 ? n.Output[0] : "";
            if (!_consumers.TryGetValue(output, out var next) || next.Count != 1 || _graphOutputs.Contains(output))
                throw Error(start, $"QCFS activation pattern breaks after '{Name(n)}' ({n.OpType}): expected its output to feed one {expected} node, it feeds {(next?.Count ?? 0)}");
            if (next[0].OpType != expected)
                throw Error(start, $"QCFS activation pattern breaks at '{Name(next[0])}' ({next[0].OpType}): expected {expected} after '{Name(n)}' ({n.OpType}). " +
                    "Recognised: Div → Clip → Mul → Add → Floor → Div → Mul, or Div → Mul → Add → Floor → Div → Clip → Mul");
            return next[0];
        }

        /// <summary>The scalar constant operand of <paramref name="n"/> whose other operand is <paramref name="from"/>'s
        /// output; <paramref name="firstOnly"/> for non-commutative ops.</summary>
        private float Operand(NodeProto start, NodeProto n, NodeProto from, bool firstOnly, string what)
        {
            if (n.Input.Count != 2) throw Error(n, "expects two inputs");
            int self = n.Input[0] == from.Output[0] ? 0 : (!firstOnly && n.Input[1] == from.Output[0] ? 1 : -1);
            if (self < 0) throw Error(start, $"QCFS activation pattern breaks at '{Name(n)}' ({n.OpType}): '{from.Output[0]}' must be its first operand");
            return Scalar(n, ConstIn(n, 1 - self, what), what);
        }

        /// <summary>Recognises the QCFS activation (methods.md §1) in either order the reference codes export, and
        /// recovers λ (the first Div and last Mul constant) and L (the Mul and Div constants around Floor).</summary>
        private void Qcfs(NodeProto div)
        {
            var x = DynIn(div, 0);
            float lambda = Scalar(div, ConstIn(div, 1, "divisor λ"), "divisor λ");
            var chain = new List<NodeProto> { div };
            string order = _consumers.TryGetValue(div.Output.Count > 0 ? div.Output[0] : "", out var c) && c.Count == 1 && c[0].OpType == "Clip" ? "clip-first" : "floor-first";
            NodeProto cur = div;
            NodeProto Step(string op) { cur = Follow(div, cur, op); chain.Add(cur); return cur; }
            void CheckClip(NodeProto clip)
            {
                var (min, max) = ClipBounds(clip);
                if (min != 0f || max != 1f) throw Error(clip, $"QCFS clips to [0, 1]; this Clip has [{min?.ToString() ?? "-inf"}, {max?.ToString() ?? "inf"}]");
            }
            if (order == "clip-first") CheckClip(Step("Clip"));
            var prev = cur;
            float levels = Operand(div, Step("Mul"), prev, false, "level count L");
            prev = cur;
            float phi = Operand(div, Step("Add"), prev, false, "shift φ");
            Step("Floor");
            prev = cur;
            float levels2 = Operand(div, Step("Div"), prev, true, "level count L");
            if (order == "floor-first") CheckClip(Step("Clip"));
            prev = cur;
            float lambda2 = Operand(div, Step("Mul"), prev, false, "threshold λ");

            if (!(lambda > 0 && float.IsFinite(lambda))) throw Error(div, $"QCFS threshold λ = {lambda} must be positive");
            if (Math.Abs(lambda - lambda2) > 1e-6f * lambda)
                throw Error(div, $"QCFS divides by λ = {lambda} but multiplies back by {lambda2} (node '{Name(cur)}'); they must agree");
            if (levels != levels2 || levels != MathF.Round(levels) || levels < 1 || levels > 1 << 16)
                throw Error(div, $"QCFS multiplies by {levels} and divides by {levels2}; both must be the same whole number of levels L");
            if (phi != 0.5f) throw Error(div, $"QCFS adds φ = {phi} before the floor; SpikeSharp's QCFS uses φ = 1/2 (methods.md §1)");
            foreach (var node in chain) _done.Add(node);
            var layer = Layer(new OnnxActivationLayer(Name(div), $"QCFS ({string.Join("→", chain.Select(m => m.OpType))})", "qcfs", lambda, (int)levels, order), x);
            Set(cur, x with { Producer = layer });
        }

        private void Pool(NodeProto n)
        {
            var x = DynIn(n, 0);
            if (x.Shape.Length != 3) throw Error(n, $"expects a [C,H,W] feature map, got {x.ShapeString}");
            var ks = AttrInts(n, "kernel_shape");
            if (ks is null || ks.Length != 2 || ks[0] != ks[1] || ks[0] < 1 || ks[0] > 1 << 16)
                throw Error(n, $"kernel_shape [{string.Join(",", ks ?? [])}] is not supported; expected a square window");
            if (AttrInt(n, "ceil_mode", 0) != 0) throw Error(n, "ceil_mode = 1 is not supported");
            int k = (int)ks[0];
            var (stride, padding) = Window(n, k);
            if (padding != 0) throw Error(n, $"padded pooling (pads {padding}) is not supported");
            string kind = n.OpType == "MaxPool" ? "max" : "avg";
            var shape = Spatial(n, x, k, stride, 0, x.Shape[0]);
            bool covers = k == x.Shape[1] && k == x.Shape[2];
            Set(n, new Dyn(Layer(new OnnxPoolLayer(Name(n), n.OpType, kind, k, stride, covers), x), shape));
        }

        private void Reshape(NodeProto n)
        {
            var x = DynIn(n, 0);
            long?[] target = In(n, 1) switch
            {
                Const { C.Ints: { } ints } => ints.Select(v => (long?)v).ToArray(),
                Sym { Scalar: false } s => s.Items,
                _ => throw Error(n, "the target shape must be an int64 constant or computed from the input's Shape"),
            };
            long f = x.Features;
            bool flatten = target.Length == 2 && (
                (target[0] is null or 0 or 1 && (target[1] == -1 || target[1] == f)) ||
                (target[0] == -1 && target[1] == f));
            if (!flatten)
                throw Error(n, $"reshapes {x.ShapeString} to [{string.Join(",", target.Select(t => t?.ToString() ?? "N"))}]; only flattening to [N, {f}] is supported");
            Set(n, new Dyn(x.Producer, [x.Features]));
        }

        private void Shape(NodeProto n)
        {
            var x = DynIn(n, 0);
            var items = new long?[] { null }.Concat(x.Shape.Select(d => (long?)d)).ToArray();
            long start = AttrInt(n, "start", 0), end = AttrInt(n, "end", items.Length);
            if (start < 0) start += items.Length;
            if (end < 0) end += items.Length;
            start = Math.Clamp(start, 0, items.Length);
            end = Math.Clamp(end, start, items.Length);
            Set(n, new Sym(items[(int)start..(int)end], false));
        }

        private void Gather(NodeProto n)
        {
            if (In(n, 0) is not Sym { Scalar: false } s) throw Error(n, "only Gather on a Shape (x.size(d)) is supported");
            var idx = ConstIn(n, 1, "indices");
            if (idx.Ints is null || AttrInt(n, "axis", 0) != 0) throw Error(n, "expects int64 indices on axis 0");
            var picked = new long?[idx.Count];
            for (int i = 0; i < picked.Length; i++)
            {
                long j = idx.Ints[i] < 0 ? idx.Ints[i] + s.Items.Length : idx.Ints[i];
                if (j < 0 || j >= s.Items.Length) throw Error(n, $"index {idx.Ints[i]} is out of range for a shape of rank {s.Items.Length}");
                picked[i] = s.Items[j];
            }
            Set(n, new Sym(picked, idx.Dims.Length == 0));
        }

        private void Unsqueeze(NodeProto n)
        {
            if (In(n, 0) is not Sym { Scalar: true } s) throw Error(n, "only Unsqueeze of a shape element (x.size(d)) is supported");
            var axes = opset >= 13 && n.Input.Count > 1 ? ConstIn(n, 1, "axes").Ints : AttrInts(n, "axes");
            if (axes is null || axes.Length != 1 || axes[0] != 0) throw Error(n, "expects axes [0]");
            Set(n, new Sym(s.Items, false));
        }

        private void Concat(NodeProto n)
        {
            if (Enumerable.Range(0, n.Input.Count).Any(i => In(n, i) is Dyn))
            {
                // Feature maps joined along channels (the branches of an Inception-style block).
                var parts = Enumerable.Range(0, n.Input.Count).Select(i => DynIn(n, i)).ToArray();
                if (AttrInt(n, "axis", 0) != 1) throw Error(n, $"concatenates feature maps along axis {AttrInt(n, "axis", 0)}; only axis 1 (channels) is supported");
                if (parts.Any(p => p.Shape.Length != parts[0].Shape.Length || !p.Shape.Skip(1).SequenceEqual(parts[0].Shape.Skip(1))))
                    throw Error(n, $"concatenates {string.Join(", ", parts.Select(p => p.ShapeString))}; all but the channel count must agree");
                var shape = (int[])parts[0].Shape.Clone();
                shape[0] = parts.Sum(p => p.Shape[0]);
                Set(n, new Dyn(Layer(new OnnxConcatLayer(Name(n)), parts), shape));
                return;
            }
            if (AttrInt(n, "axis", 0) != 0) throw Error(n, "expects axis 0");
            var items = new List<long?>();
            for (int i = 0; i < n.Input.Count; i++)
                switch (In(n, i))
                {
                    case Sym { Scalar: false } s: items.AddRange(s.Items); break;
                    case Const { C.Ints: { } ints } c when c.C.Dims.Length == 1: items.AddRange(ints.Select(v => (long?)v)); break;
                    default: throw Error(n, $"input {i} must be a shape vector or an int64 constant vector");
                }
            if (items.Count > 16) throw Error(n, "builds a shape of more than 16 dimensions");
            Set(n, new Sym(items.ToArray(), false));
        }
    }
}
