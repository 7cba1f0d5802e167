using SpikeSharp.Nn;

namespace SpikeSharp.Models;

/// <summary>Everything needed to rebuild a model: architecture (a built-in name, or <see cref="GraphName"/> with the
/// <see cref="Graph"/> itself), input geometry, classes, width multiplier and activation. Stored in a checkpoint's
/// model.json. For a graph, <see cref="Activation"/> is what every activation node becomes (a training recipe's), or
/// null for each node's own op.</summary>
public sealed record ModelSpec(string Name, int InChannels = 3, int Height = 32, int Width = 32, int Classes = 10,
    float WidthMultiplier = 1f, ActivationSpec? Activation = null)
{
    public static readonly string[] Names = ["vgg16", "resnet18", "resnet20", "resnet34", "cnn-small"];

    /// <summary>The <see cref="Name"/> of a model described by a graph.</summary>
    public const string GraphName = "graph";

    /// <summary>The network, for a model that is not built in.</summary>
    public Graphs.Graph? Graph { get; init; }

    /// <summary>A spec for <paramref name="graph"/> (input shape and classes from the graph).</summary>
    public static ModelSpec For(Graphs.Graph graph, ActivationSpec? activation = null) =>
        new(GraphName, graph.InputShape[0], graph.InputShape[1], graph.InputShape[2], graph.Classes, 1f, activation) { Graph = graph };

    /// <summary>The activation of the model: the spec's, or a graph's when all its activation nodes agree, else ReLU.</summary>
    public ActivationSpec ActivationOrDefault => Activation ?? Graph?.UniformActivation() ?? ActivationSpec.Relu;

    public int Scaled(int channels) => Math.Max(1, (int)MathF.Round(channels * WidthMultiplier));

    /// <summary>Limits checked by <see cref="Validate"/> before any weight is allocated (a forged model.json must not
    /// make a model of gigabytes).</summary>
    public const int MaxChannels = 64, MaxSide = 4096, MaxClasses = 100_000, MaxWeightCount = 1 << 28;

    /// <summary>Elements of the model's largest weight tensor, from the graph's shapes (a built-in's graph has no
    /// weights yet, so this allocates none).</summary>
    public long LargestWeightCount() => (Graph ?? Graphs.BuiltinGraphs.Create(this)).LargestWeightCount();

    public void Validate()
    {
        if (Name == GraphName)
        {
            if (Graph == null) throw new SpikeSharpException("a graph model needs its graph (--graph FILE, or the checkpoint's model.json)");
            if (Graph.InputShape[0] != InChannels || Graph.InputShape[1] != Height || Graph.InputShape[2] != Width || Graph.Classes != Classes)
                throw new SpikeSharpException($"the graph takes {string.Join("x", Graph.InputShape)} and gives {Graph.Classes} classes; the model needs {InChannels}x{Height}x{Width} and {Classes}");
            if (InChannels > MaxChannels || Height > MaxSide || Width > MaxSide)
                throw new SpikeSharpException($"invalid graph input {InChannels}x{Height}x{Width}; expected 1..{MaxChannels} channels and sides of 1..{MaxSide}");
            if (Graph.LargestWeightCount() > MaxWeightCount)
                throw new SpikeSharpException($"the graph needs a weight tensor of {Graph.LargestWeightCount()} elements; expected at most {MaxWeightCount}");
            Activation?.Validate();
            return;
        }
        if (!Names.Contains(Name)) throw new SpikeSharpException($"unknown model '{Name}'; expected one of {string.Join(", ", Names)} (or train --graph FILE)");
        if (InChannels <= 0 || Height <= 0 || Width <= 0 || InChannels > MaxChannels || Height > MaxSide || Width > MaxSide)
            throw new SpikeSharpException($"invalid input shape {InChannels}x{Height}x{Width}; expected 1..{MaxChannels} channels and sides of 1..{MaxSide}");
        if (Classes < 2 || Classes > MaxClasses) throw new SpikeSharpException($"a classifier needs 2..{MaxClasses} classes, got {Classes}");
        if (!(WidthMultiplier > 0 && WidthMultiplier <= 16)) throw new SpikeSharpException($"--width must be in (0, 16], got {WidthMultiplier}");
        ActivationOrDefault.Validate();
        if (Name == "vgg16" && (Height < 32 || Width < 32))
            throw new SpikeSharpException($"vgg16 halves the image five times and needs inputs of at least 32x32, got {Height}x{Width}; pad the data (CIFAR layout)");
        if (Name == "cnn-small" && (Height < 4 || Width < 4))
            throw new SpikeSharpException($"cnn-small needs inputs of at least 4x4, got {Height}x{Width}");
        // After the size checks: the built-in's graph is built to measure it, and a too-small input has no graph.
        if (LargestWeightCount() is var largest && largest > MaxWeightCount)
            throw new SpikeSharpException($"{Name} at width {WidthMultiplier} with input {InChannels}x{Height}x{Width} and {Classes} classes would need a " +
                $"weight tensor of {largest} elements; expected at most {MaxWeightCount} (lower --width or the input size)");
    }
}

/// <summary>Builds a model from its spec: a built-in architecture of spec §0 (<see cref="Graphs.BuiltinGraphs"/>) or the
/// spec's own graph, as a <see cref="Graphs.GraphModel"/> with weights initialized from a seeded generator.</summary>
public static class ModelFactory
{
    public static Module Create(ModelSpec spec, int seed = 0)
    {
        spec.Validate();
        // A built-in's activation nodes all take the spec's activation, every field of it (the graph stores L and λ only).
        return spec.Graph != null
            ? new Graphs.GraphModel(spec.Graph, spec.Activation, seed)
            : new Graphs.GraphModel(Graphs.BuiltinGraphs.Create(spec), spec.ActivationOrDefault, seed);
    }
}
