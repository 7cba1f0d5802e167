using SpikeSharp.Models;
using SpikeSharp.Nn;

namespace SpikeSharp.Graphs;

/// <summary>
/// A short way to write a <see cref="Graph"/> in C#: each call adds one node named as given (its parameters' state-dict
/// prefix) and returns that name, to pass on as the next node's input.
/// <code>
/// var g = new GraphBuilder(1, 28, 28);
/// var x = g.Conv("conv1", g.Input, 16, kernel: 3, padding: 1);
/// x = g.Activation("act1", g.BatchNorm("bn1", x), "qcfs");
/// var graph = g.Build(g.Linear("fc", g.Flatten("flat", g.MaxPool("pool1", x, 2)), 10));
/// </code>
/// </summary>
public sealed class GraphBuilder(int channels, int height, int width)
{
    private readonly List<GraphNode> _nodes = new();

    public string Input => "input";

    public string Add(GraphNode node)
    {
        _nodes.Add(node);
        return node.Name;
    }

    private string Node(string name, string op, string[] inputs, params (string Key, double Value)[] attributes) =>
        Add(new GraphNode(name, op, inputs, attributes.ToDictionary(a => a.Key, a => a.Value)));

    public string Conv(string name, string x, int outChannels, int kernel, int stride = 1, int padding = 0, bool bias = true, int dilation = 1, int groups = 1) =>
        Node(name, "conv2d", [x], ("out_channels", outChannels), ("kernel", kernel), ("stride", stride), ("padding", padding), ("bias", bias ? 1 : 0),
            ("dilation", dilation), ("groups", groups));

    public string Linear(string name, string x, int outFeatures, bool bias = true) => Node(name, "linear", [x], ("out_features", outFeatures), ("bias", bias ? 1 : 0));

    public string BatchNorm(string name, string x) => Node(name, "batchnorm", [x]);

    /// <summary>An activation node: relu, clip, qcfs or noisyqc (λ init and L as attributes).</summary>
    public string Activation(string name, string x, string op = "relu", int levels = 4, float lambda = 8f) =>
        op == "relu" ? Node(name, op, [x]) : op == "clip" ? Node(name, op, [x], ("lambda", lambda)) : Node(name, op, [x], ("levels", levels), ("lambda", lambda));

    /// <summary>The activation <paramref name="spec"/> describes.</summary>
    public string Activation(string name, string x, ActivationSpec spec) => Activation(name, x, spec.Kind, spec.Levels, spec.LambdaInit);

    public string AddNodes(string name, string a, string b) => Node(name, "add", [a, b]);

    public string Concat(string name, params string[] xs) => Node(name, "concat", xs);

    public string AvgPool(string name, string x, int kernel, int? stride = null) => Node(name, "avgpool2d", [x], ("kernel", kernel), ("stride", stride ?? kernel));

    public string MaxPool(string name, string x, int kernel, int? stride = null) => Node(name, "maxpool2d", [x], ("kernel", kernel), ("stride", stride ?? kernel));

    public string GlobalAvgPool(string name, string x) => Node(name, "globalavgpool", [x]);

    public string Flatten(string name, string x) => Node(name, "flatten", [x]);

    public string Dropout(string name, string x, float p) => Node(name, "dropout", [x], ("p", p));

    public string Identity(string name, string x) => Node(name, "identity", [x]);

    /// <summary>The checked graph whose output is <paramref name="output"/>.</summary>
    public Graph Build(string output) => Graph.Create([channels, height, width], _nodes, output, Input);
}

/// <summary>The built-in architectures as graphs, with the same node names as the modules' state-dict prefixes, so a
/// built-in checkpoint's tensors load into <see cref="GraphModel"/> unchanged (tested: same logits, gradients and spikes).</summary>
public static class BuiltinGraphs
{
    public static Graph Create(ModelSpec spec) => spec.Name switch
    {
        "cnn-small" => CnnSmall(spec),
        "vgg16" => Vgg16(spec),
        "resnet20" => ResNet(spec, [3, 3, 3], [16, 32, 64]),
        "resnet18" => ResNet(spec, [2, 2, 2, 2], [64, 128, 256, 512]),
        "resnet34" => ResNet(spec, [3, 4, 6, 3], [64, 128, 256, 512]),
        _ => throw new SpikeSharpException($"unknown model '{spec.Name}'"),
    };

    private static Graph CnnSmall(ModelSpec spec)
    {
        var g = new GraphBuilder(spec.InChannels, spec.Height, spec.Width);
        var act = spec.ActivationOrDefault;
        var x = g.Conv("features.0", g.Input, spec.Scaled(32), 3, padding: 1, bias: false);
        x = g.AvgPool("features.3", g.Activation("features.2", g.BatchNorm("features.1", x), act), 2);
        x = g.Conv("features.4", x, spec.Scaled(64), 3, padding: 1, bias: false);
        x = g.AvgPool("features.7", g.Activation("features.6", g.BatchNorm("features.5", x), act), 2);
        x = g.Activation("classifier.2", g.Linear("classifier.1", g.Flatten("classifier.0", x), spec.Scaled(128)), act);
        return g.Build(g.Linear("classifier.3", x, spec.Classes));
    }

    private static Graph Vgg16(ModelSpec spec)
    {
        int[][] blocks = [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]];
        var g = new GraphBuilder(spec.InChannels, spec.Height, spec.Width);
        var act = spec.ActivationOrDefault;
        var x = g.Input;
        for (int b = 0; b < blocks.Length; b++)
        {
            int k = 0;
            string p = $"layer{b + 1}.";
            foreach (int width in blocks[b])
            {
                x = g.Conv(p + k, x, spec.Scaled(width), 3, padding: 1);
                x = g.Dropout(p + (k + 3), g.Activation(p + (k + 2), g.BatchNorm(p + (k + 1), x), act), 0f);
                k += 4;
            }
            x = g.AvgPool(p + k, x, 2);
        }
        int hidden = spec.Scaled(4096);
        x = g.Flatten("classifier.0", x);
        x = g.Dropout("classifier.3", g.Activation("classifier.2", g.Linear("classifier.1", x, hidden), act), 0f);
        x = g.Dropout("classifier.6", g.Activation("classifier.5", g.Linear("classifier.4", x, hidden), act), 0f);
        return g.Build(g.Linear("classifier.7", x, spec.Classes));
    }

    private static Graph ResNet(ModelSpec spec, int[] blocks, int[] widths)
    {
        var g = new GraphBuilder(spec.InChannels, spec.Height, spec.Width);
        var act = spec.ActivationOrDefault;
        int c = spec.Scaled(widths[0]);
        var x = g.Activation("conv1.2", g.BatchNorm("conv1.1", g.Conv("conv1.0", g.Input, c, 3, padding: 1, bias: false)), act);
        for (int s = 0; s < blocks.Length; s++)
        {
            int outC = spec.Scaled(widths[s]);
            for (int b = 0; b < blocks[s]; b++)
            {
                int stride = b == 0 && s > 0 ? 2 : 1;
                string p = $"conv{s + 2}_x.{b}.";
                // Residual branch, then shortcut: the order the parameters are initialized and stored in (the planner
                // still fuses the branch's last conv with the add, computing the shortcut first).
                var r = g.Conv(p + "residual_function.0", x, outC, 3, stride, 1, bias: false);
                r = g.Activation(p + "residual_function.2", g.BatchNorm(p + "residual_function.1", r), act);
                r = g.BatchNorm(p + "residual_function.4", g.Conv(p + "residual_function.3", r, outC, 3, 1, 1, bias: false));
                var shortcut = stride != 1 || c != outC
                    ? g.BatchNorm(p + "shortcut.1", g.Conv(p + "shortcut.0", x, outC, 1, stride, 0, bias: false))
                    : x;
                x = g.Activation(p + "relu", g.AddNodes(p + "add", r, shortcut), act);
                c = outC;
            }
        }
        return g.Build(g.Linear("fc", g.GlobalAvgPool("avg_pool", x), spec.Classes));
    }
}
