namespace SpikeSharp.Graphs;

/// <summary>
/// How <see cref="GraphModel"/> runs a graph, decided once from the graph alone (planner passes, in order):
/// <list type="number">
/// <item><b>Currents and spikes.</b> Which values are spikes in the SNN (activation outputs, and what only pools,
/// reshapes or joins them); a max pool of spikes is pooled by gating in the SNN, one of currents as is
/// (docs/conversion-methods.md "Max pooling").</item>
/// <item><b>Fusion.</b> conv → [BN] → [+ an operand that does not depend on the chain] → activation runs as one step
/// when every intermediate is read by nothing else; at run time it takes the convolution-epilogue path (inference, a neuron or an
/// activation that can fuse) or BN → [+] → activation as one op (training), else node by node.</item>
/// <item><b>Schedule.</b> Steps in graph order, except that a fused step waits for the operand it adds.</item>
/// <item><b>Liveness.</b> How many later steps read each step's output, so the executor hands arrays back to the arena
/// as soon as the last reader ran.</item>
/// </list>
/// </summary>
internal sealed class GraphPlan
{
    /// <summary>The image, as a source.</summary>
    public const int GraphInput = -1;

    /// <summary>No such node (a step without BN, addend or consumer).</summary>
    public const int None = -2;

    public enum FusionKind { None, ConvolutionInto, NormalizationInto }

    /// <summary>One step: it computes node <see cref="Node"/> (the last of <see cref="Fused"/> when fused) from
    /// <see cref="Inputs"/> (node indices, <see cref="GraphInput"/> for the image).</summary>
    public sealed record Step(int Node, int[] Inputs, FusionKind Fusion = FusionKind.None, int[]? FusedNodes = null, int BatchNorm = None, int Addend = None, int Consumer = None)
    {
        /// <summary>The nodes a fused step stands for, in order.</summary>
        public int[] Fused => FusedNodes ?? [Node];

        /// <summary>Later reads of this step's output (+1 for the graph output, which is never released).</summary>
        public int Uses { get; set; }

        /// <summary>The sources this step reads (its inputs and addend, a source once per read).</summary>
        public List<int> Releases { get; } = new();
    }

    public IReadOnlyList<Step> Steps { get; }
    public int OutputNode { get; }
    public IReadOnlyList<int> MaxPoolsOnSpikes { get; }
    private readonly Graph _graph;

    public GraphPlan(Graph graph)
    {
        _graph = graph;
        int n = graph.Nodes.Count;
        int Source(string name) => name == graph.InputName ? GraphInput : graph.Index[name];
        var inputs = graph.Nodes.Select(node => node.Inputs.Select(Source).ToList()).ToArray();
        OutputNode = graph.Index[graph.Output];

        // 1. Which values are spikes in the SNN (activation outputs, and what only pools, reshapes or joins them).
        var spikes = new bool[n];
        for (int i = 0; i < n; i++)
            spikes[i] = IsActivation(i) || graph.Nodes[i].Op is "avgpool2d" or "maxpool2d" or "globalavgpool" or "flatten" or "dropout" or "identity" or "concat"
                && inputs[i].Any(s => s >= 0 && spikes[s]);
        MaxPoolsOnSpikes = Enumerable.Range(0, n).Where(i => graph.Nodes[i].Op == "maxpool2d" && inputs[i][0] >= 0 && spikes[inputs[i][0]]).ToList();

        // 2. Fusion. A chain claims its nodes in graph order; the operand it adds may come later in the graph (a
        //    shortcut written after the residual branch) as long as it does not depend on the chain.
        int? OnlyReader(int node) => node != OutputNode && Readers(inputs, node) is [var r] ? r : null;
        var steps = new List<Step>();
        var absorbed = new HashSet<int>();
        int? Free(int? node) => node is { } k && !absorbed.Contains(k) ? k : null;
        for (int i = 0; i < n; i++)
        {
            if (absorbed.Contains(i)) continue;
            var node = graph.Nodes[i];
            Step? fused = null;
            bool dense = node.Op == "conv2d" && node.Int("groups", 1) == 1 && node.Int("dilation", 1) == 1;
            if (dense || node.Op == "batchnorm")
            {
                int bn = None;
                var next = Free(OnlyReader(i));
                if (dense && next is { } b && graph.Nodes[b].Op == "batchnorm") { bn = b; next = Free(OnlyReader(b)); }
                if (node.Op == "batchnorm") bn = i;
                var chain = new List<int> { i };
                if (bn >= 0 && bn != i) chain.Add(bn);
                int addend = None;
                if (next is { } add && graph.Nodes[add].Op == "add")
                {
                    int other = inputs[add][0] == (bn >= 0 ? bn : i) ? inputs[add][1] : inputs[add][0];
                    if (other != GraphInput && DependsOn(inputs, other, i)) next = null;
                    else { addend = other; chain.Add(add); next = Free(OnlyReader(add)); }
                }
                if (next is { } act && IsActivation(act) && (dense || bn >= 0))
                {
                    chain.Add(act);
                    fused = new Step(act, [inputs[i][0]], dense ? FusionKind.ConvolutionInto : FusionKind.NormalizationInto, chain.ToArray(), bn, addend, act);
                }
            }
            if (fused != null)
            {
                foreach (int f in fused.Fused) absorbed.Add(f);
                steps.Add(fused);
            }
            else steps.Add(new Step(i, inputs[i].ToArray()));
        }
        steps = Schedule(steps);

        // 3. Liveness.
        var byNode = steps.ToDictionary(s => s.Node);
        foreach (var s in steps)
            foreach (int source in s.Addend != None ? [.. s.Inputs, s.Addend] : s.Inputs)
            {
                s.Releases.Add(source);
                if (source >= 0) byNode[source].Uses++;
            }
        byNode[OutputNode].Uses++;
        Steps = steps;
    }

    /// <summary>The steps in an order where each runs after the steps it reads (its inputs and addend): the earliest
    /// ready step in graph order first, so a graph already in a good order runs as written.</summary>
    private static List<Step> Schedule(List<Step> steps)
    {
        var done = new HashSet<int> { GraphInput };
        var order = new List<Step>(steps.Count);
        var pending = new List<Step>(steps);
        while (pending.Count > 0)
        {
            int k = pending.FindIndex(s => s.Inputs.Append(s.Addend).All(src => src == None || done.Contains(src)));
            order.Add(pending[k]);
            done.Add(pending[k].Node);
            pending.RemoveAt(k);
        }
        return order;
    }

    /// <summary>Whether node <paramref name="node"/> reads, directly or not, the output of node <paramref name="ancestor"/>.</summary>
    private static bool DependsOn(List<int>[] inputs, int node, int ancestor)
    {
        if (node <= ancestor) return node == ancestor;
        var seen = new HashSet<int>();
        var stack = new Stack<int>([node]);
        while (stack.Count > 0)
            foreach (int src in inputs[stack.Pop()])
                if (src == ancestor) return true;
                else if (src > ancestor && seen.Add(src)) stack.Push(src);
        return false;
    }

    private bool IsActivation(int i) => GraphOps.Get(_graph.Nodes[i]).IsActivation;

    private static List<int> Readers(List<int>[] inputs, int node) =>
        Enumerable.Range(0, inputs.Length).Where(r => inputs[r].Contains(node)).ToList();

    /// <summary>Whether node <paramref name="child"/>'s output goes only into node child + 1, which reads nothing else
    /// (what BN folding needs to fold a BN into the layer before it).</summary>
    public bool FeedsOnlyNext(int child)
    {
        if (child + 1 >= _graph.Nodes.Count) return false;
        var name = _graph.Nodes[child].Name;
        return _graph.Nodes[child + 1].Inputs is [var only] && only == name && _graph.Consumers(name).Count() == 1 && name != _graph.Output;
    }
}
