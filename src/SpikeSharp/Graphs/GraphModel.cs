using SpikeSharp.Autograd;
using SpikeSharp.Nn;
using SpikeSharp.Tensors;

namespace SpikeSharp.Graphs;

/// <summary>
/// A <see cref="Graph"/> as a module: one child per node, named by the node (so state-dict keys are the node names
/// plus <c>.weight</c>, <c>.bias</c>, …, as PyTorch's), run by one executor for training (the tape records each op),
/// ANN inference and the layer-major SNN (the converter swaps activation children for neurons). The executor's plan
/// (<see cref="GraphPlan"/>) decides what runs fused and when intermediates go back to the arena; no node module knows.
/// </summary>
public sealed class GraphModel : Module
{
    public Graph Graph { get; }
    private readonly GraphPlan _plan;

    /// <param name="activation">the activation every activation node builds (a training recipe's), or null for each
    /// node's own op and attributes</param>
    public GraphModel(Graph graph, ActivationSpec? activation = null, int seed = 0)
    {
        Graph = graph;
        var rng = new Random(seed);
        foreach (var node in graph.Nodes)
        {
            var shapes = node.Inputs.Select(i => i == graph.InputName ? graph.InputShape.ToArray() : graph.Shapes[i]).ToArray();
            AddModule(node.Name, GraphOps.Get(node).Create(new NodeContext(node, shapes, activation, rng)));
        }
        _plan = new GraphPlan(graph);
        for (int i = 0; i < graph.Nodes.Count; i++)
            if (Children[i].Value is MaxPool2d pool) pool.Input = _plan.MaxPoolsOnSpikes.Contains(i) ? PoolInput.Spikes : PoolInput.Current;
    }

    /// <summary>The module of node <paramref name="i"/> now (the converter may have swapped it).</summary>
    private Module At(int i) => Children[i].Value;

    protected internal override bool FeedsOnlyNext(int child) => _plan.FeedsOnlyNext(child);

    public override Variable Forward(Variable x)
    {
        var values = new Variable?[Graph.Nodes.Count];
        // Intermediates go back to the arena early only in inference without a tape (TensorArena.ReleaseIntermediates).
        var arena = Tape.Current == null && TensorArena.Active is { ReleaseIntermediates: true } a ? a : null;
        var live = arena != null ? new Dictionary<float[], int>(ReferenceEqualityComparer.Instance) : null;
        Variable Value(int source) => source < 0 ? x : values[source]!;
        foreach (var step in _plan.Steps)
        {
            var inputs = step.Inputs.Select(Value).ToArray();
            var y = Run(step, inputs, Value, arena);
            values[step.Node] = y;
            if (live == null) continue;
            // Liveness: an array goes back to the arena once no live value (views included) refers to it.
            live[y.Value.Data] = live.GetValueOrDefault(y.Value.Data) + step.Uses;
            foreach (int source in step.Releases)
            {
                var data = Value(source).Value.Data;
                if (ReferenceEquals(data, x.Value.Data) || !live.ContainsKey(data)) continue;
                if (--live[data] == 0) { live.Remove(data); arena!.Release(data); }
            }
        }
        return values[_plan.OutputNode]!;
    }

    private Variable Run(GraphPlan.Step step, Variable[] inputs, Func<int, Variable> value, TensorArena? arena)
    {
        var module = At(step.Node);
        switch (step.Fusion)
        {
            case GraphPlan.FusionKind.ConvolutionInto when Fusion.ConvolutionsEnabled && At(step.Consumer) is IConvOutputConsumer consumer && consumer.CanFuse(inputs[0].Shape[0]):
            {
                // conv → [eval BN] → [+ addend] → neuron, one output image at a time.
                var conv = (Conv2d)At(step.Fused[0]);
                // The BN node holds an eval BN, or an identity once BN folding moved it into the conv.
                var norm = step.BatchNorm >= 0 ? At(step.BatchNorm) : null;
                if (norm is not (null or Identity or BatchNorm { IsTraining: false })) break;
                var bn = norm as BatchNorm;
                var addend = step.Addend != GraphPlan.None ? value(step.Addend) : null;
                if (addend != null && addend.Shape[0] != inputs[0].Shape[0]) break;
                return Fusion.RunConvolution(conv, bn, inputs[0], addend, consumer);
            }
            case GraphPlan.FusionKind.NormalizationInto when Fusion.NormalizationsEnabled && At(step.Consumer) is Activation { FusesWithBatchNorm: true } act
                && At(step.BatchNorm) is BatchNorm bn:
            {
                // BN → [+ addend] → activation as one op (training and inference).
                var addend = step.Addend != GraphPlan.None ? value(step.Addend) : null;
                return act.ForwardAfterBatchNorm(bn, inputs[0], addend);
            }
        }
        return step.Fusion == GraphPlan.FusionKind.None ? Single(module, inputs) : RunUnfused(step, inputs, value, arena);
    }

    private static Variable Single(Module module, Variable[] inputs) => module is MergeModule merge ? merge.Forward(inputs) : module.Forward(inputs[0]);

    /// <summary>A fused step whose convolution epilogue did not apply this call (a tape is recording, or the consumer
    /// cannot fuse): node by node, with BN → [+] → activation still one op where the activation allows it. The step's
    /// intermediates are read by nothing else: each goes back to the arena once the next node ran.</summary>
    private Variable RunUnfused(GraphPlan.Step step, Variable[] inputs, Func<int, Variable> value, TensorArena? arena)
    {
        var y = inputs[0];
        var addend = step.Addend != GraphPlan.None ? value(step.Addend) : null;
        Variable Next(Variable next)
        {
            if (arena != null && !ReferenceEquals(y.Value.Data, inputs[0].Value.Data) && !ReferenceEquals(y.Value.Data, next.Value.Data))
                arena.Release(y.Value.Data);
            return y = next;
        }
        foreach (int node in step.Fused)
        {
            var module = At(node);
            if (module is BatchNorm bn && Fusion.NormalizationsEnabled && At(step.Consumer) is Activation { FusesWithBatchNorm: true } act)
                return Next(act.ForwardAfterBatchNorm(bn, y, addend)); // the rest of the chain is [+] → activation
            Next(module is MergeModule merge ? merge.Forward([y, addend!]) : module.Forward(y));
        }
        return y;
    }
}
