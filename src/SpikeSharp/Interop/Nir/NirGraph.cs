namespace SpikeSharp.Interop.Nir;

/// <summary>A parameter or metadata value of a NIR node: a float32 or int64 array (empty shape = scalar) or a string.</summary>
public abstract record NirValue;
public sealed record NirFloats(float[] Data, int[] Shape) : NirValue;
public sealed record NirInts(long[] Data, int[] Shape) : NirValue
{
    public static NirInts Scalar(long v) => new([v], []);
    public static NirInts Vector(params long[] v) => new(v, [v.Length]);
}
public sealed record NirString(string Value) : NirValue;

/// <summary>One NIR node: its type name (<c>Conv2d</c>, <c>IF</c>, …), the datasets its Python class takes as
/// constructor arguments, and free-form metadata for what the type cannot say.</summary>
public sealed class NirNode(string name, string type)
{
    public string Name { get; } = name;
    public string Type { get; } = type;
    public Dictionary<string, NirValue> Params { get; } = new();
    public Dictionary<string, NirValue> Metadata { get; } = new();
}

/// <summary>
/// A flat NIR graph and its HDF5 serialization, the layout of the reference implementation (neuromorphs/NIR
/// <c>nir/serialization.py</c>, nir 1.0.x): root dataset <c>version</c> (string), group <c>node</c> holding the graph
/// as a node: <c>type</c> = "NIRGraph", <c>nodes/&lt;name&gt;/{type, params…, metadata/…}</c>, <c>edges</c> [E,2]
/// strings (src, dst), optional <c>metadata/</c>. A node with several incoming edges receives their sum.
/// </summary>
public sealed class NirGraph
{
    /// <summary>The nir package version whose layout this writes (stored in the file's <c>version</c>).</summary>
    public const string Version = "1.0.8";

    public List<NirNode> Nodes { get; } = new();
    public List<(string Source, string Target)> Edges { get; } = new();
    public Dictionary<string, NirValue> Metadata { get; } = new();

    public NirNode Add(NirNode node, IEnumerable<string> inputs)
    {
        if (Nodes.Any(n => n.Name == node.Name)) throw new InvalidOperationException($"duplicate NIR node '{node.Name}'");
        Nodes.Add(node);
        foreach (var src in inputs) Edges.Add((src, node.Name));
        return node;
    }

    /// <summary>Writes the graph to a new HDF5 file at <paramref name="path"/> (truncating it).</summary>
    public void Write(string path)
    {
        var f = new Hdf5Writer();
        f.WriteString("version", Version);
        f.CreateGroup("node");
        f.WriteString("node/type", "NIRGraph");
        f.CreateGroup("node/nodes");
        foreach (var n in Nodes)
        {
            string g = "node/nodes/" + n.Name;
            f.CreateGroup(g);
            f.WriteString(g + "/type", n.Type);
            WriteValues(f, g, n.Params);
            if (n.Metadata.Count > 0) { f.CreateGroup(g + "/metadata"); WriteValues(f, g + "/metadata", n.Metadata); }
        }
        f.WriteStrings("node/edges", Edges.SelectMany(e => new[] { e.Source, e.Target }).ToArray(), Edges.Count, 2);
        if (Metadata.Count > 0) { f.CreateGroup("node/metadata"); WriteValues(f, "node/metadata", Metadata); }
        f.Save(path);
    }

    private static void WriteValues(Hdf5Writer f, string group, Dictionary<string, NirValue> values)
    {
        foreach (var (key, v) in values)
        {
            string p = group + "/" + key;
            switch (v)
            {
                case NirFloats a: f.WriteFloats(p, a.Data, a.Shape); break;
                case NirInts a: f.WriteInt64s(p, a.Data, a.Shape); break;
                case NirString s: f.WriteString(p, s.Value); break;
            }
        }
    }
}
