using Google.Protobuf;
using SpikeSharp.Interop.Onnx.Proto;
using SpikeSharp.Models;
using SpikeSharp.Nn;
using SpikeSharp.Tensors;

namespace SpikeSharp.Interop.Onnx;

/// <summary>
/// Writes a checkpoint's ANN as an ONNX model (opset 13) that any ONNX runtime runs, and that <c>spikesharp import</c>
/// reads back: Conv, BatchNormalization (or folded into the conv), the QCFS activation as the node chain the importer
/// recognises (clip-first: Div → Clip → Mul → Add → Floor → Div → Mul, with λ and L as constants), Clip(0, λ) for clip
/// activations, Relu, AveragePool / MaxPool / GlobalAveragePool, Flatten, Gemm, and the residual Add of a ResNet block.
/// Input "input" [N, C, H, W] and output "logits" [N, K], N dynamic. NoisyQC exports as QCFS (its evaluation form).
/// </summary>
public static class OnnxExporter
{
    public const int Opset = 13;

    /// <summary>Exports <paramref name="checkpointDir"/> to <paramref name="outPath"/> (written atomically).</summary>
    /// <param name="foldBatchNorm">fold each BN into the conv before it (one node fewer per layer, same function up to rounding)</param>
    public static void Export(string checkpointDir, string outPath, bool foldBatchNorm = false)
    {
        var cp = Checkpoint.Load(checkpointDir);
        Export(cp.Model, cp.Spec, outPath, foldBatchNorm);
    }

    /// <summary>Exports <paramref name="module"/> (inputs shaped like <paramref name="spec"/>'s) to <paramref name="outPath"/>.</summary>
    public static void Export(Module module, ModelSpec spec, string outPath, bool foldBatchNorm = false) =>
        AtomicFile.Write(outPath, Build(module, spec, foldBatchNorm).WriteTo);

    /// <summary>The ONNX model of <paramref name="module"/> for inputs shaped like <paramref name="spec"/>'s.</summary>
    internal static ModelProto Build(Module module, ModelSpec spec, bool foldBatchNorm)
    {
        module.Eval();
        var w = new Writer(foldBatchNorm);
        string output = w.Walk("", module, "input");
        var graph = w.Graph;
        graph.Name = spec.Name;
        graph.Input.Add(Value("input", "N", spec.InChannels, spec.Height, spec.Width));
        graph.Output.Add(Value(output, "N", spec.Classes));
        var model = new ModelProto { IrVersion = 7, ProducerName = "SpikeSharp", ProducerVersion = typeof(OnnxExporter).Assembly.GetName().Version?.ToString() ?? "", Graph = graph };
        model.OpsetImport.Add(new OperatorSetIdProto { Domain = "", Version = Opset });
        return model;
    }

    private static ValueInfoProto Value(string name, string batch, params int[] dims)
    {
        var shape = new TensorShapeProto();
        shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimParam = batch });
        foreach (int d in dims) shape.Dim.Add(new TensorShapeProto.Types.Dimension { DimValue = d });
        return new ValueInfoProto
        {
            Name = name,
            Type = new TypeProto { TensorType = new TypeProto.Types.Tensor { ElemType = (int)TensorProto.Types.DataType.Float, Shape = shape } },
        };
    }

    /// <summary>Emits nodes module by module; every method returns the name of the tensor it produced.</summary>
    private sealed class Writer(bool foldBatchNorm)
    {
        public GraphProto Graph { get; } = new();
        private int _constants;
        private (NodeProto Node, string Name, Conv2d Conv)? _lastConv;

        public string Walk(string prefix, Module m, string x)
        {
            string name = prefix.TrimEnd('.');
            switch (m)
            {
                case Graphs.GraphModel graph: return WalkGraph(graph, x);
                case Conv2d conv: return Conv(name, conv, x);
                case BatchNorm bn: return BatchNorm(name, bn, x);
                case Linear linear: return Node("Gemm", name, [x, Initializer(name + ".weight", linear.Weight.Value), .. Bias(name, linear.Bias?.Value)], Int("transB", 1));
                case Activation act: return Activation(name, act, x);
                case AvgPool2d pool: return Node("AveragePool", name, [x], Ints("kernel_shape", pool.KernelSize, pool.KernelSize), Ints("strides", pool.Stride, pool.Stride));
                case MaxPool2d pool: return Node("MaxPool", name, [x], Ints("kernel_shape", pool.KernelSize, pool.KernelSize), Ints("strides", pool.Stride, pool.Stride));
                // Our global pool outputs [N, C]; ONNX's keeps [N, C, 1, 1].
                case GlobalAvgPool2d: return Node("Flatten", name + ".flatten", [Node("GlobalAveragePool", name, [x])], Int("axis", 1));
                case Flatten: return Node("Flatten", name, [x], Int("axis", 1));
                case Dropout or Identity: return x;
            }
            if (m is not Sequential && m.Children.Count == 0)
                throw new SpikeSharpException($"ONNX export: layer '{name}' ({m.GetType().Name}) has no ONNX equivalent here");
            foreach (var (child, module) in m.Children) x = Walk(prefix + child + ".", module, x);
            return x;
        }

        /// <summary>A graph's nodes in order, each reading the tensors its inputs produced.</summary>
        private string WalkGraph(Graphs.GraphModel graph, string x)
        {
            var values = new Dictionary<string, string> { [graph.Graph.InputName] = x };
            foreach (var (node, i) in graph.Graph.Nodes.Select((n, i) => (n, i)))
            {
                var inputs = node.Inputs.Select(n => values[n]).ToArray();
                values[node.Name] = graph.Children[i].Value switch
                {
                    Graphs.AddModule => Node("Add", node.Name, inputs),
                    Graphs.ConcatModule => Node("Concat", node.Name, inputs, Int("axis", 1)),
                    var module => Walk(node.Name + ".", module, inputs[0]),
                };
            }
            return values[graph.Graph.Output];
        }

        private string Conv(string name, Conv2d conv, string x)
        {
            int k = conv.KernelSize;
            var node = NewNode("Conv", name, [x, Initializer(name + ".weight", conv.Weight.Value), .. Bias(name, conv.Bias?.Value)],
                Ints("kernel_shape", k, k), Ints("strides", conv.Stride, conv.Stride), Ints("pads", conv.Padding, conv.Padding, conv.Padding, conv.Padding),
                Ints("dilations", conv.Dilation, conv.Dilation), Int("group", conv.Groups));
            _lastConv = (node, name, conv);
            return node.Output[0];
        }

        private string BatchNorm(string name, BatchNorm bn, string x)
        {
            if (foldBatchNorm && _lastConv is var (node, convName, conv) && node.Output[0] == x)
            {
                // w' = w·γ/√(var+ε) per output channel, b' = (b − μ)·γ/√(var+ε) + β: the conv then computes BN(conv(x)).
                var weight = conv.Weight.Value.Clone();
                var bias = new float[bn.Channels];
                int per = weight.Length / bn.Channels;
                for (int c = 0; c < bn.Channels; c++)
                {
                    float scale = bn.Weight.Value.Data[c] / MathF.Sqrt(bn.RunningVar.Data[c] + bn.Eps);
                    for (int i = 0; i < per; i++) weight.Data[c * per + i] *= scale;
                    bias[c] = ((conv.Bias?.Value.Data[c] ?? 0f) - bn.RunningMean.Data[c]) * scale + bn.Bias.Value.Data[c];
                }
                Replace(node.Input[1], weight);
                if (node.Input.Count == 3) Replace(node.Input[2], new Tensor(bias, bn.Channels));
                else node.Input.Add(Initializer(convName + ".bias", new Tensor(bias, bn.Channels)));
                _lastConv = null;
                return x;
            }
            _lastConv = null;
            return Node("BatchNormalization", name, [x, Initializer(name + ".weight", bn.Weight.Value), Initializer(name + ".bias", bn.Bias.Value),
                Initializer(name + ".running_mean", bn.RunningMean), Initializer(name + ".running_var", bn.RunningVar)], Float("epsilon", bn.Eps));
        }

        private string Activation(string name, Activation act, string x)
        {
            _lastConv = null;
            if (act.Lambda is not { } lambdaParameter) return act is ReLU ? Node("Relu", name, [x])
                : throw new SpikeSharpException($"ONNX export: activation '{name}' ({act.GetType().Name}) has no ONNX form here");
            float lambda = MathF.Abs(lambdaParameter.Value.Data[0]);
            if (act.Levels is not { } levels) return Node("Clip", name, [x, Scalar(0f), Scalar(lambda)]);
            // QCFS, clip-first: λ·floor(clip(x/λ, 0, 1)·L + ½)/L.
            string y = Node("Div", name + ".div", [x, Scalar(lambda)]);
            y = Node("Clip", name + ".clip", [y, Scalar(0f), Scalar(1f)]);
            y = Node("Mul", name + ".levels", [y, Scalar(levels)]);
            y = Node("Add", name + ".shift", [y, Scalar(0.5f)]);
            y = Node("Floor", name + ".floor", [y]);
            y = Node("Div", name + ".unlevels", [y, Scalar(levels)]);
            return Node("Mul", name + ".lambda", [y, Scalar(lambda)]);
        }

        private IEnumerable<string> Bias(string name, Tensor? bias) => bias is null ? [] : [Initializer(name + ".bias", bias)];

        private string Node(string op, string name, string[] inputs, params AttributeProto[] attributes) => NewNode(op, name, inputs, attributes).Output[0];

        private NodeProto NewNode(string op, string name, string[] inputs, params AttributeProto[] attributes)
        {
            var node = new NodeProto { OpType = op, Name = name };
            node.Input.AddRange(inputs);
            node.Output.Add(name + ":out");
            node.Attribute.AddRange(attributes);
            Graph.Node.Add(node);
            return node;
        }

        private string Initializer(string name, Tensor t)
        {
            var proto = new TensorProto { Name = name, DataType = (int)TensorProto.Types.DataType.Float };
            proto.Dims.AddRange(t.Shape.Select(d => (long)d));
            proto.RawData = ByteString.CopyFrom(System.Runtime.InteropServices.MemoryMarshal.AsBytes(t.Data.AsSpan()));
            Graph.Initializer.Add(proto);
            return name;
        }

        private void Replace(string name, Tensor t)
        {
            var proto = Graph.Initializer.Single(i => i.Name == name);
            proto.RawData = ByteString.CopyFrom(System.Runtime.InteropServices.MemoryMarshal.AsBytes(t.Data.AsSpan()));
        }

        private string Scalar(float value) => Initializer($"const{_constants++}", new Tensor([value]));

        private static AttributeProto Int(string name, long v) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Int, I = v };
        private static AttributeProto Float(string name, float v) => new() { Name = name, Type = AttributeProto.Types.AttributeType.Float, F = v };

        private static AttributeProto Ints(string name, params long[] v)
        {
            var a = new AttributeProto { Name = name, Type = AttributeProto.Types.AttributeType.Ints };
            a.Ints.AddRange(v);
            return a;
        }
    }
}
