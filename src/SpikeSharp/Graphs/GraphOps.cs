using SpikeSharp.Autograd;
using SpikeSharp.Autograd.Ops;
using SpikeSharp.Nn;

namespace SpikeSharp.Graphs;

/// <summary>What building a node's module needs beyond the node: its input shapes, the activation that replaces
/// every activation node when a training recipe sets one, and the seeded generator for initial weights.</summary>
public sealed record NodeContext(GraphNode Node, int[][] InputShapes, ActivationSpec? ActivationOverride, Random Rng);

/// <summary>One graph op: its name, how many inputs it takes, its attributes, its output shape and its module.</summary>
/// <param name="Attributes">the attributes it reads (others are an error naming the node)</param>
/// <param name="IsActivation">an activation: the converter turns its module into spiking neurons</param>
public sealed record GraphOp(string Name, int MinInputs, int MaxInputs, string[] Attributes, Func<GraphNode, int[][], int[]> InferShape,
    Func<NodeContext, Module> Create, bool IsActivation = false);

/// <summary>
/// The ops a <see cref="Graph"/> may use, one entry each: adding an op is one entry here (plus its kernel if it needs a
/// new one). Shapes are per sample: [C, H, W] for images, [F] for features.
/// </summary>
public static class GraphOps
{
    private static readonly GraphOp[] All =
    [
        new("conv2d", 1, 1, ["out_channels", "kernel", "stride", "padding", "dilation", "groups", "bias"], ConvShape, c =>
        {
            var n = c.Node;
            return new Conv2d(c.InputShapes[0][0], n.RequiredInt("out_channels"), n.RequiredInt("kernel"), n.Int("stride", 1), n.Int("padding", 0),
                bias: n.Int("bias", 1) != 0, rng: c.Rng, dilation: n.Int("dilation", 1), groups: n.Int("groups", 1));
        }),
        new("linear", 1, 1, ["out_features", "bias"], (n, s) =>
        {
            Positive(n, "out_features");
            return [n.RequiredInt("out_features")];
        }, c => new Linear(c.InputShapes[0].Aggregate(1, (a, b) => a * b), c.Node.RequiredInt("out_features"), c.Node.Int("bias", 1) != 0, c.Rng)),
        new("batchnorm", 1, 1, ["eps", "momentum"], (n, s) => s[0], c => new BatchNorm(c.InputShapes[0][0], c.Node.Float("momentum", 0.1f), c.Node.Float("eps", 1e-5f))),
        Activation("relu", []),
        Activation("clip", ["lambda"]),
        Activation("qcfs", ["levels", "lambda"]),
        Activation("noisyqc", ["levels", "lambda", "p"]),
        new("add", 2, 2, [], (n, s) => s[0].SequenceEqual(s[1]) ? s[0]
            : throw new SpikeSharpException($"{n}: adds [{string.Join(", ", s[0])}] and [{string.Join(", ", s[1])}]; the shapes must be equal"), _ => new AddModule()),
        new("concat", 2, 16, [], ConcatShape, _ => new ConcatModule()),
        new("avgpool2d", 1, 1, ["kernel", "stride"], PoolShape, c => new AvgPool2d(c.Node.RequiredInt("kernel"), c.Node.Int("stride", c.Node.RequiredInt("kernel")))),
        new("maxpool2d", 1, 1, ["kernel", "stride"], PoolShape, c => new MaxPool2d(c.Node.RequiredInt("kernel"), c.Node.Int("stride", c.Node.RequiredInt("kernel")))),
        // [C], as the module returns it (ONNX's [C, 1, 1] then Flatten come in as this alone).
        new("globalavgpool", 1, 1, [], (n, s) => [Image(n, s[0])[0]], _ => new GlobalAvgPool2d()),
        new("flatten", 1, 1, [], (n, s) => [s[0].Aggregate(1, (a, b) => a * b)], _ => new Flatten()),
        new("dropout", 1, 1, ["p"], (n, s) => n.Float("p", 0.5f) is >= 0 and < 1 ? s[0] : throw new SpikeSharpException($"{n}: p must be in [0, 1)"),
            c => new Dropout(c.Node.Float("p", 0.5f))),
        new("identity", 1, 1, [], (n, s) => s[0], _ => new Identity()),
    ];

    public static IReadOnlyList<string> Names => All.Select(o => o.Name).ToArray();

    /// <summary>The op of <paramref name="node"/>, with its input count and attribute names checked.</summary>
    public static GraphOp Get(GraphNode node)
    {
        var op = All.FirstOrDefault(o => o.Name == node.Op)
            ?? throw new SpikeSharpException($"{node}: unknown op; expected one of {string.Join(", ", Names)}");
        if (node.Inputs.Count < op.MinInputs || node.Inputs.Count > op.MaxInputs)
            throw new SpikeSharpException($"{node}: {node.Inputs.Count} input(s); {op.Name} takes " +
                (op.MinInputs == op.MaxInputs ? $"{op.MinInputs}" : $"{op.MinInputs} to {op.MaxInputs}"));
        var unknown = node.Attributes.Keys.Where(k => !op.Attributes.Contains(k)).ToList();
        if (unknown.Count > 0)
            throw new SpikeSharpException($"{node}: unknown attribute(s) {string.Join(", ", unknown)}; {op.Name} reads {(op.Attributes.Length == 0 ? "none" : string.Join(", ", op.Attributes))}");
        return op;
    }

    /// <summary>The activation a node of op <paramref name="op"/> builds: the recipe's if it sets one, else the node's own.</summary>
    private static GraphOp Activation(string op, string[] attributes) => new(op, 1, 1, attributes, (n, s) =>
    {
        if (op is "qcfs" or "noisyqc" && n.Int("levels", 4) < 1) throw new SpikeSharpException($"{n}: levels must be ≥ 1");
        if (op != "relu" && !(n.Float("lambda", 8f) > 0)) throw new SpikeSharpException($"{n}: λ must be positive (a QCFS threshold λ ≤ 0 cannot become a firing threshold)");
        return s[0];
    }, c => (c.ActivationOverride ?? new ActivationSpec(op, c.Node.Int("levels", 4), c.Node.Float("lambda", 8f), NoiseP: c.Node.Float("p", 0.1f))).Create(),
        IsActivation: true);

    private static int[] Image(GraphNode n, int[] s) => s.Length == 3 ? s
        : throw new SpikeSharpException($"{n}: expects an image [C, H, W], got [{string.Join(", ", s)}] (flatten comes after the last image op)");

    private static void Positive(GraphNode n, string attribute)
    {
        if (n.RequiredInt(attribute) <= 0) throw new SpikeSharpException($"{n}: {attribute} must be positive, got {n.RequiredInt(attribute)}");
    }

    private static int[] ConvShape(GraphNode n, int[][] s)
    {
        var x = Image(n, s[0]);
        Positive(n, "out_channels");
        Positive(n, "kernel");
        int k = n.RequiredInt("kernel"), stride = n.Int("stride", 1), pad = n.Int("padding", 0), dil = n.Int("dilation", 1), groups = n.Int("groups", 1);
        if (stride < 1 || pad < 0 || dil < 1 || groups < 1) throw new SpikeSharpException($"{n}: stride {stride}, padding {pad}, dilation {dil}, groups {groups}; expected stride, dilation, groups ≥ 1 and padding ≥ 0");
        if (x[0] % groups != 0 || n.RequiredInt("out_channels") % groups != 0)
            throw new SpikeSharpException($"{n}: groups {groups} must divide the input channels ({x[0]}) and out_channels ({n.RequiredInt("out_channels")})");
        int h = (x[1] + 2 * pad - dil * (k - 1) - 1) / stride + 1, w = (x[2] + 2 * pad - dil * (k - 1) - 1) / stride + 1;
        if (h <= 0 || w <= 0) throw new SpikeSharpException($"{n}: a {k}×{k} kernel (dilation {dil}) does not fit the padded input {x[1] + 2 * pad}×{x[2] + 2 * pad}");
        return [n.RequiredInt("out_channels"), h, w];
    }

    private static int[] PoolShape(GraphNode n, int[][] s)
    {
        var x = Image(n, s[0]);
        Positive(n, "kernel");
        int k = n.RequiredInt("kernel"), stride = n.Int("stride", k);
        if (stride < 1 || k > x[1] || k > x[2]) throw new SpikeSharpException($"{n}: a {k}×{k} window with stride {stride} does not fit the {x[1]}×{x[2]} input");
        return [x[0], (x[1] - k) / stride + 1, (x[2] - k) / stride + 1];
    }

    private static int[] ConcatShape(GraphNode n, int[][] s)
    {
        foreach (var x in s)
            if (x.Length != s[0].Length || !x.Skip(1).SequenceEqual(s[0].Skip(1)))
                throw new SpikeSharpException($"{n}: concatenates {string.Join(" and ", s.Select(x => $"[{string.Join(", ", x)}]"))} along channels; the other sizes must agree");
        var shape = (int[])s[0].Clone();
        shape[0] = s.Sum(x => x[0]);
        return shape;
    }
}

/// <summary>A module with several inputs (add, concat). In the layer-major SNN an input computed before the first
/// neuron has B rows while a spiking one has T·B: the B rows are repeated over the T steps (the input is constant).</summary>
public abstract class MergeModule : Module
{
    public override Variable Forward(Variable x) => throw new InvalidOperationException($"{GetType().Name} takes several inputs");

    public Variable Forward(IReadOnlyList<Variable> inputs)
    {
        int rows = inputs.Max(v => v.Shape[0]);
        return Merge(inputs.Select(v => v.Shape[0] == rows ? v : Repeat(v, rows)).ToList());
    }

    protected abstract Variable Merge(IReadOnlyList<Variable> inputs);

    private static Variable Repeat(Variable v, int rows)
    {
        if (rows % v.Shape[0] != 0) throw new ArgumentException($"cannot merge inputs of {v.Shape[0]} and {rows} rows");
        var shape = (int[])v.Shape.Clone();
        shape[0] = rows;
        var y = Tensors.Tensor.Scratch(shape);
        for (int r = 0; r < rows; r += v.Shape[0]) v.Value.Data.CopyTo(y.Data, (long)r * v.Value.SizeFrom(1));
        return new Variable(y);
    }
}

/// <summary>a + b.</summary>
public sealed class AddModule : MergeModule
{
    protected override Variable Merge(IReadOnlyList<Variable> inputs) => ElementwiseOps.Add(inputs[0], inputs[1]);
}

/// <summary>The inputs joined along channels.</summary>
public sealed class ConcatModule : MergeModule
{
    protected override Variable Merge(IReadOnlyList<Variable> inputs) => ElementwiseOps.Concat(inputs);
}
