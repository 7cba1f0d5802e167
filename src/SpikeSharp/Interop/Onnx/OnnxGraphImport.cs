using SpikeSharp.Graphs;
using SpikeSharp.Tensors;

namespace SpikeSharp.Interop.Onnx;

/// <summary>
/// Imports any ONNX network made of the graph ops (<see cref="GraphOps"/>) as a <see cref="Graph"/> plus its tensors,
/// with no architecture given: the interpreted layers (<see cref="OnnxGraphReader"/>: QCFS chains in both orders, BN
/// folded or not, the flatten chain, dropout and identities dropped) become nodes. Node names follow PyTorch's module
/// paths where the exporter recorded them (<c>/layer1/layer1.0/conv1/Conv</c> → <c>layer1.0.conv1</c>), so the
/// checkpoint's keys read like the source's state dict.
/// </summary>
public static class OnnxGraphImport
{
    public static (Graph Graph, ImportedTensors Tensors) Read(string path, int channels, int height, int width)
    {
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new InvalidFileException(path, $"cannot be read: {e.Message}", e); }
        return Read(bytes, path, channels, height, width);
    }

    /// <summary>Imports an ONNX model held in memory; <paramref name="path"/> names it in messages.</summary>
    public static (Graph Graph, ImportedTensors Tensors) Read(byte[] bytes, string path, int channels, int height, int width)
    {
        var read = OnnxGraphReader.Read(bytes, path, channels, height, width);
        var notes = new List<string>(read.Notes);
        // Each activation node keeps its own kind, λ and L (a graph may mix them, e.g. a ReLU head on QCFS features).
        var acts = read.Layers.OfType<OnnxActivationLayer>().ToList();
        var levels = acts.Where(a => a.Levels != null).Select(a => a.Levels!.Value).Distinct().ToList();
        foreach (var kind in acts.GroupBy(a => a.Kind))
            notes.Add($"{kind.Count()} {kind.Key} activation layer(s)" + (kind.Key == "qcfs" ? $", λ and L = {string.Join("/", kind.Select(a => a.Levels).Distinct())} from the graph constants" : ""));

        var names = new Names();
        var nodeOf = new Dictionary<OnnxLayer, string>(ReferenceEqualityComparer.Instance);
        var nodes = new List<GraphNode>();
        var tensors = new Dictionary<string, Tensor>();
        string Input(OnnxLayer layer) => layer is OnnxInputLayer ? "input" : nodeOf[layer];
        foreach (var layer in OnnxGraphReader.Linearize(read.Layers[^1], shallowFirst: true))
        {
            var inputs = layer.Inputs.Select(Input).ToArray();
            GraphNode node;
            switch (layer)
            {
                case OnnxConvLayer c:
                {
                    string name = names.Take(c.Node, parametric: true, c.Weight.Name);
                    int k = (int)c.Weight.Dims[2], outC = (int)c.Weight.Dims[0];
                    node = new GraphNode(name, "conv2d", inputs, new Dictionary<string, double>
                    {
                        ["out_channels"] = outC, ["kernel"] = k, ["stride"] = c.Stride, ["padding"] = c.Padding,
                        ["dilation"] = c.Dilation, ["groups"] = c.Groups, ["bias"] = c.Bias != null ? 1 : 0,
                    });
                    tensors[name + ".weight"] = new Tensor((float[])c.Weight.Floats.Clone(), c.Weight.IntDims);
                    if (c.Bias != null) tensors[name + ".bias"] = new Tensor((float[])c.Bias.Floats.Clone(), outC);
                    break;
                }
                case OnnxBatchNormLayer b:
                {
                    string name = names.Take(b.Node, parametric: true, b.Scale.Name);
                    node = new GraphNode(name, "batchnorm", inputs, new Dictionary<string, double> { ["eps"] = b.Eps });
                    int ch = b.Scale.Count;
                    tensors[name + ".weight"] = new Tensor((float[])b.Scale.Floats.Clone(), ch);
                    tensors[name + ".bias"] = new Tensor((float[])b.Bias.Floats.Clone(), ch);
                    tensors[name + ".running_mean"] = new Tensor((float[])b.Mean.Floats.Clone(), ch);
                    tensors[name + ".running_var"] = new Tensor((float[])b.Var.Floats.Clone(), ch);
                    break;
                }
                case OnnxLinearLayer l:
                {
                    string name = names.Take(l.Node, parametric: true, null);
                    node = new GraphNode(name, "linear", inputs, new Dictionary<string, double> { ["out_features"] = l.Out, ["bias"] = l.Bias != null ? 1 : 0 });
                    tensors[name + ".weight"] = new Tensor((float[])l.Weight.Clone(), l.Out, l.In);
                    if (l.Bias != null) tensors[name + ".bias"] = new Tensor((float[])l.Bias.Clone(), l.Out);
                    break;
                }
                case OnnxActivationLayer a:
                {
                    string name = names.Take(a.Node, parametric: true, null);
                    var attrs = new Dictionary<string, double>();
                    if (a.Kind == "qcfs") attrs["levels"] = a.Levels!.Value;
                    if (a.Lambda is { } lambda)
                    {
                        attrs["lambda"] = lambda;
                        tensors[name + ".lambda"] = new Tensor([lambda], 1);
                    }
                    node = new GraphNode(name, a.Kind, inputs, attrs);
                    break;
                }
                case OnnxPoolLayer p:
                    node = p.Kind == "global"
                        ? new GraphNode(names.Take(p.Node, false, null, "gap"), "globalavgpool", inputs, new Dictionary<string, double>())
                        : new GraphNode(names.Take(p.Node, false, null, p.Kind + "pool"), p.Kind == "max" ? "maxpool2d" : "avgpool2d", inputs,
                            new Dictionary<string, double> { ["kernel"] = p.Kernel, ["stride"] = p.Stride });
                    break;
                case OnnxAddLayer add:
                    node = new GraphNode(names.Take(add.Node, false, null, "add"), "add", inputs, new Dictionary<string, double>());
                    break;
                case OnnxConcatLayer cat:
                    node = new GraphNode(names.Take(cat.Node, false, null, "cat"), "concat", inputs, new Dictionary<string, double>());
                    break;
                default:
                    throw new InvalidFileException(path, $"{layer.Describe} has no graph op");
            }
            nodeOf[layer] = node.Name;
            nodes.Add(node);
        }
        Graph graph;
        try { graph = Graph.Create([channels, height, width], nodes).Named(Path.GetFileNameWithoutExtension(path)); }
        catch (SpikeSharpException e) { throw new InvalidFileException(path, e.Message, e); }
        notes.Add($"imported as a {graph}");
        return (graph, new ImportedTensors(path, "onnx", tensors, levels.Count == 1 ? levels[0] : null, notes));
    }

    /// <summary>Node names from the exporter's: a parameter's name (<c>features.0.weight</c> → <c>features.0</c>) or
    /// the node's scope (<c>/layer1/layer1.0/conv1/Conv</c> → <c>layer1.0.conv1</c>); ops without parameters get their
    /// kind appended (<c>layer1.0.add</c>). Repeats get _2, _3, ….</summary>
    private sealed class Names
    {
        private readonly HashSet<string> _used = new();
        private int _anonymous;

        public string Take(string onnxNode, bool parametric, string? parameterName, string? kind = null)
        {
            string? name = null;
            if (parameterName != null && parameterName.EndsWith(".weight", StringComparison.Ordinal) && !parameterName.StartsWith("onnx::", StringComparison.Ordinal))
                name = parameterName[..^".weight".Length];
            name ??= Scope(onnxNode);
            if (name != null && !parametric) name += "." + kind;
            name ??= $"{kind ?? "node"}{++_anonymous}";
            string unique = name;
            for (int k = 2; !_used.Add(unique); k++) unique = $"{name}_{k}";
            return unique;
        }

        /// <summary>PyTorch's module path from a node name such as <c>/layer1/layer1.0/b2/b2.1/Conv</c>: each scope is
        /// the child's own name, written <c>container.index</c> for a container's numbered child (→ layer1.0.b2.1).</summary>
        private static string? Scope(string onnxNode)
        {
            if (!onnxNode.StartsWith('/')) return null;
            var parts = onnxNode.Split('/', StringSplitOptions.RemoveEmptyEntries);
            if (parts.Length < 2) return null;
            string path = "", previous = "";
            foreach (var part in parts[..^1])
            {
                path = previous.Length > 0 && part.StartsWith(previous + ".", StringComparison.Ordinal) ? path + part[previous.Length..]
                    : path.Length > 0 ? path + "." + part : part;
                previous = part;
            }
            return path.Length > 0 ? path : null;
        }
    }
}
