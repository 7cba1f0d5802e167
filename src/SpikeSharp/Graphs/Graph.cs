using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using SpikeSharp.Nn;

namespace SpikeSharp.Graphs;

/// <summary>
/// One operation of a <see cref="Graph"/>: its name (also the prefix of its parameters' state-dict keys, e.g.
/// <c>features.0</c> → <c>features.0.weight</c>), its op (<see cref="GraphOps.Names"/>), the names of the nodes (or
/// the graph input) it reads, and its attributes (numbers; booleans as 0/1).
/// </summary>
public sealed record GraphNode(string Name, string Op, IReadOnlyList<string> Inputs, IReadOnlyDictionary<string, double> Attributes)
{
    public GraphNode(string name, string op, params string[] inputs) : this(name, op, inputs, new Dictionary<string, double>()) { }

    /// <summary>This node with one more attribute.</summary>
    public GraphNode With(string attribute, double value) =>
        this with { Attributes = new Dictionary<string, double>(Attributes) { [attribute] = value } };

    public int Int(string attribute, int fallback) => Attributes.TryGetValue(attribute, out double v) ? (int)v : fallback;

    public float Float(string attribute, float fallback) => Attributes.TryGetValue(attribute, out double v) ? (float)v : fallback;

    public int RequiredInt(string attribute) => Attributes.TryGetValue(attribute, out double v) ? (int)v
        : throw new SpikeSharpException($"node '{Name}' ({Op}) needs the attribute '{attribute}'");

    public override string ToString() => $"node '{Name}' ({Op})";
}

/// <summary>
/// A network as a directed acyclic graph: one image input of shape [C, H, W], nodes in a topological order, one
/// output. Built through <see cref="Create"/>, which checks names, references, ops, attributes and every node's shape,
/// and names the offending node. Serialized as the graph JSON that <c>train --graph</c>, <c>import</c> and a
/// checkpoint's model.json use (<see cref="ToJson"/>, <see cref="Parse"/>).
/// </summary>
public sealed class Graph
{
    public const string Format = "spikesharp-graph";
    public const int Version = 1;

    /// <summary>What reports call the network (the ONNX file's or graph file's name); "graph" when unnamed.</summary>
    public string Name { get; init; } = "graph";

    public string InputName { get; }
    public IReadOnlyList<int> InputShape { get; }
    public IReadOnlyList<GraphNode> Nodes { get; }
    public string Output { get; }

    /// <summary>Per-sample output shape of every node ([C, H, W] or [F]), by node name.</summary>
    public IReadOnlyDictionary<string, int[]> Shapes { get; }

    /// <summary>Index of each node in <see cref="Nodes"/>.</summary>
    public IReadOnlyDictionary<string, int> Index { get; }

    private Graph(string inputName, int[] inputShape, IReadOnlyList<GraphNode> nodes, string output, Dictionary<string, int[]> shapes)
    {
        (InputName, InputShape, Nodes, Output, Shapes) = (inputName, inputShape, nodes, output, shapes);
        Index = nodes.Select((n, i) => (n.Name, i)).ToDictionary(p => p.Name, p => p.i);
    }

    /// <summary>Number of classes: the output's size.</summary>
    public int Classes => Shapes[Output].Aggregate(1, (a, b) => a * b);

    /// <summary>Builds and checks a graph; the nodes may come in any order that respects their inputs (they are kept
    /// in that order). The output defaults to the last node.</summary>
    public static Graph Create(IReadOnlyList<int> inputShape, IReadOnlyList<GraphNode> nodes, string? output = null, string inputName = "input")
    {
        if (inputShape.Count != 3 || inputShape.Any(d => d <= 0))
            throw new SpikeSharpException($"graph input shape [{string.Join(", ", inputShape)}]: expected [C, H, W] with positive sizes");
        if (nodes.Count == 0) throw new SpikeSharpException("the graph has no nodes");
        var shapes = new Dictionary<string, int[]> { [inputName] = inputShape.ToArray() };
        foreach (var node in nodes)
        {
            if (string.IsNullOrWhiteSpace(node.Name)) throw new SpikeSharpException($"a {node.Op} node has no name");
            if (shapes.ContainsKey(node.Name)) throw new SpikeSharpException($"{node}: the name is used twice (or is the graph input's)");
            var op = GraphOps.Get(node);
            foreach (var input in node.Inputs)
                if (!shapes.ContainsKey(input))
                    throw new SpikeSharpException($"{node}: input '{input}' is not the graph input or an earlier node" +
                        (nodes.Any(n => n.Name == input) ? " (nodes must come after the nodes they read)" : ""));
            shapes[node.Name] = op.InferShape(node, node.Inputs.Select(i => shapes[i]).ToArray());
        }
        output ??= nodes[^1].Name;
        if (!shapes.ContainsKey(output) || output == inputName) throw new SpikeSharpException($"graph output '{output}' is not a node");
        if (shapes[output].Length != 1) throw new SpikeSharpException($"graph output '{output}' has shape [{string.Join(", ", shapes[output])}]; expected class scores [K] (end in a linear layer)");
        var used = new HashSet<string>(nodes.SelectMany(n => n.Inputs)) { output };
        var dead = nodes.Where(n => !used.Contains(n.Name)).Select(n => n.Name).ToList();
        if (dead.Count > 0) throw new SpikeSharpException($"node(s) {string.Join(", ", dead.Select(d => $"'{d}'"))} feed nothing and are not the output");
        shapes.Remove(inputName);
        return new Graph(inputName, inputShape.ToArray(), nodes, output, shapes);
    }

    /// <summary>The activation of every activation node when they all have the same op and levels (λ init from the
    /// first), else null.</summary>
    public ActivationSpec? UniformActivation()
    {
        var acts = Nodes.Where(n => GraphOps.Get(n).IsActivation).ToList();
        if (acts.Count == 0 || acts.Any(a => a.Op != acts[0].Op || a.Int("levels", 4) != acts[0].Int("levels", 4))) return null;
        return new ActivationSpec(acts[0].Op, acts[0].Int("levels", 4), acts[0].Float("lambda", 8f), NoiseP: acts[0].Float("p", 0.1f));
    }

    /// <summary>Elements of the largest weight tensor, from the shapes alone (checked before any weight is allocated).</summary>
    public long LargestWeightCount()
    {
        long largest = 0;
        foreach (var n in Nodes)
        {
            var inShape = n.Inputs.Count > 0 && n.Inputs[0] != InputName ? Shapes[n.Inputs[0]] : InputShape.ToArray();
            long count = n.Op switch
            {
                "conv2d" => (long)n.RequiredInt("out_channels") * (inShape[0] / Math.Max(1, n.Int("groups", 1))) * n.RequiredInt("kernel") * n.RequiredInt("kernel"),
                "linear" => (long)n.RequiredInt("out_features") * inShape.Aggregate(1L, (a, b) => a * b),
                _ => 0,
            };
            largest = Math.Max(largest, count);
        }
        return largest;
    }

    /// <summary>This graph under another name.</summary>
    public Graph Named(string name) => new(InputName, InputShape.ToArray(), Nodes, Output, new Dictionary<string, int[]>(Shapes)) { Name = name };

    /// <summary>The nodes that read <paramref name="name"/>.</summary>
    public IEnumerable<GraphNode> Consumers(string name) => Nodes.Where(n => n.Inputs.Contains(name));

    public JsonObject ToJson()
    {
        var nodes = new JsonArray();
        foreach (var n in Nodes)
        {
            var o = new JsonObject { ["name"] = n.Name, ["op"] = n.Op, ["inputs"] = new JsonArray(n.Inputs.Select(i => (JsonNode)i).ToArray()) };
            foreach (var (k, v) in n.Attributes.OrderBy(a => a.Key, StringComparer.Ordinal))
                o[k] = v == Math.Floor(v) && Math.Abs(v) < 1e15 ? JsonValue.Create((long)v) : JsonValue.Create(v);
            nodes.Add(o);
        }
        return new JsonObject
        {
            ["format"] = Format,
            ["version"] = Version,
            ["name"] = Name,
            ["input"] = new JsonObject { ["name"] = InputName, ["shape"] = new JsonArray(InputShape.Select(d => (JsonNode)d).ToArray()) },
            ["nodes"] = nodes,
            ["output"] = Output,
        };
    }

    /// <summary>Reads a graph JSON file.</summary>
    public static Graph Load(string path)
    {
        if (!File.Exists(path)) throw new SpikeSharpException($"{path} not found; expected a graph JSON file (format '{Format}')");
        try { return Parse(JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new InvalidFileException(path, "expected a JSON object"), path); }
        catch (JsonException e) { throw new InvalidFileException(path, $"invalid JSON: {e.Message}", e); }
    }

    /// <summary>Reads the graph JSON <paramref name="o"/>; <paramref name="path"/> names it in messages.</summary>
    public static Graph Parse(JsonObject o, string path)
    {
        // Values built in memory keep their CLR type (a long does not read as double); parsed text converts.
        o = JsonNode.Parse(o.ToJsonString())!.AsObject();
        try
        {
            string format = o["format"]?.GetValue<string>() ?? throw new InvalidFileException(path, $"missing field 'format' (expected \"{Format}\")");
            if (format != Format) throw new InvalidFileException(path, $"field 'format' is \"{format}\"; expected \"{Format}\"");
            int version = o["version"]?.GetValue<int>() ?? throw new InvalidFileException(path, "missing field 'version'");
            if (version > Version) throw new InvalidFileException(path, $"graph version {version} is newer than this SpikeSharp reads ({Version})");
            var input = o["input"] as JsonObject ?? throw new InvalidFileException(path, "missing object 'input' ({\"name\": …, \"shape\": [C, H, W]})");
            var shape = (input["shape"] as JsonArray ?? throw new InvalidFileException(path, "missing array 'input.shape'")).Select(d => d!.GetValue<int>()).ToArray();
            var nodes = new List<GraphNode>();
            foreach (var (item, i) in (o["nodes"] as JsonArray ?? throw new InvalidFileException(path, "missing array 'nodes'")).Select((n, i) => (n, i)))
            {
                var n = item as JsonObject ?? throw new InvalidFileException(path, $"nodes[{i}] is not an object");
                string name = n["name"]?.GetValue<string>() ?? throw new InvalidFileException(path, $"nodes[{i}] has no 'name'");
                string op = n["op"]?.GetValue<string>() ?? throw new InvalidFileException(path, $"node '{name}' has no 'op'");
                var inputs = (n["inputs"] as JsonArray ?? throw new InvalidFileException(path, $"node '{name}' has no array 'inputs'"))
                    .Select(x => x?.GetValue<string>() ?? throw new InvalidFileException(path, $"node '{name}': an input is null")).ToArray();
                var attrs = new Dictionary<string, double>();
                foreach (var (k, v) in n)
                {
                    if (k is "name" or "op" or "inputs") continue;
                    attrs[k] = v switch
                    {
                        JsonValue jv when jv.GetValueKind() == JsonValueKind.True => 1,
                        JsonValue jv when jv.GetValueKind() == JsonValueKind.False => 0,
                        JsonValue jv when jv.GetValueKind() == JsonValueKind.Number => jv.GetValue<double>(),
                        _ => throw new InvalidFileException(path, $"node '{name}': attribute '{k}' must be a number or a boolean"),
                    };
                }
                nodes.Add(new GraphNode(name, op, inputs, attrs));
            }
            var graph = Create(shape, nodes, o["output"]?.GetValue<string>(), input["name"]?.GetValue<string>() ?? "input");
            return o["name"]?.GetValue<string>() is { Length: > 0 } graphName ? graph.Named(graphName) : graph;
        }
        catch (InvalidFileException) { throw; }
        catch (SpikeSharpException e) { throw new InvalidFileException(path, e.Message, e); }
        catch (Exception e) when (e is InvalidOperationException or FormatException)
        {
            throw new InvalidFileException(path, $"malformed graph: {e.Message}", e);
        }
    }

    private string? _text;

    /// <summary>The graph JSON as text: two graphs are equal when it is (same nodes, attributes and order).</summary>
    private string Text => _text ??= ToJson().ToJsonString();

    public override bool Equals(object? obj) => obj is Graph g && g.Text == Text;

    public override int GetHashCode() => Text.GetHashCode(StringComparison.Ordinal);

    public override string ToString() =>
        $"graph of {Nodes.Count} nodes, input [{string.Join("×", InputShape)}], {Classes} classes; ops: " +
        string.Join(", ", Nodes.GroupBy(n => n.Op).Select(g => $"{g.Key} ×{g.Count().ToString(CultureInfo.InvariantCulture)}"));
}
