using System.Runtime.Intrinsics;
using SpikeSharp.Autograd;
using SpikeSharp.Models;
using SpikeSharp.Nn;
using SpikeSharp.Snn;
using SpikeSharp.Tensors;

namespace SpikeSharp.Conversion.Methods;

/// <summary>
/// Layer-wise BPTT of dual-phase Phase II (spec §4b), reduced to the initial potentials: for one IF layer, given its
/// recorded input currents I[t, b, i] and the ANN activations a[b, i], train the per-neuron offset of v0 so the SNN
/// rate r[b, i] = Σ_t θ·s_t / T matches a under the per-sample loss KL(softmax(a_b) ‖ log_softmax(r_b)). The spike uses
/// the tanh surrogate ∂s/∂m = (α/θ)·½(1 − tanh²(α(m − θ)/θ)), α = 2.5, through the soft reset (v = m − θ·s) and back
/// through time. Adam; early stopping on the validation loss. <see cref="TrainWithSynapse"/> also trains the layer's
/// weights and bias (the paper's full stage b); <see cref="Train"/> only the offsets.
/// </summary>
public sealed class LayerwiseBptt
{
    public float Alpha { get; init; } = 2.5f;
    public float LearningRate { get; init; } = 1e-2f;
    public int MaxEpochs { get; init; } = 30;
    public int Patience { get; init; } = 5;
    public int BatchSize { get; init; } = 128;

    /// <summary>Workers of <see cref="Loss"/>; its results do not depend on their number.</summary>
    public Tensors.WorkerPool Pool { get; init; } = Tensors.WorkerPool.Shared;

    /// <summary>Samples of a batch are split into this many fixed slices, each summing its gradient in sample order.</summary>
    private const int GradientSlices = 8;

    /// <summary>Adam learning rate of the synaptic weights and bias (spec §4b: 1e-4).</summary>
    public float WeightLearningRate { get; init; } = 1e-4f;

    /// <summary>One layer's data: currents [T, N, S] (or [N, S] constant), ANN targets [N, S].</summary>
    public sealed record LayerData(float[] Currents, bool Constant, float[] Targets, int Samples, int Neurons, int Steps);

    /// <summary>Trains the offsets (absolute units, length S) in place; returns (validation loss before, after).</summary>
    public (double Before, double After) Train(IfNeuron neuron, float[] offsets, LayerData train, LayerData valid)
    {
        int s = train.Neurons;
        var grad = new float[s];
        var m1 = new float[s];
        var m2 = new float[s];
        var best = (float[])offsets.Clone();
        double before = Loss(neuron, offsets, valid, null), bestLoss = before;
        int bad = 0, step = 0;
        for (int epoch = 0; epoch < MaxEpochs && bad < Patience; epoch++)
        {
            for (int b0 = 0; b0 < train.Samples; b0 += BatchSize)
            {
                Array.Clear(grad);
                Loss(neuron, offsets, train, grad, b0, Math.Min(BatchSize, train.Samples - b0));
                step++;
                AdamStep(offsets, grad, m1, m2, step, LearningRate * neuron.Threshold);
            }
            double val = Loss(neuron, offsets, valid, null);
            if (val < bestLoss - 1e-9) { bestLoss = val; Array.Copy(offsets, best, s); bad = 0; }
            else bad++;
        }
        Array.Copy(best, offsets, s);
        return (before, bestLoss);
    }

    /// <summary>One Adam update (β = 0.9, 0.999) of the offsets, in absolute units (lr scaled by θ by the callers).</summary>
    private static void AdamStep(float[] offsets, float[] grad, float[] m1, float[] m2, int step, float lr)
    {
        float c1 = 1 - MathF.Pow(0.9f, step), c2 = 1 - MathF.Pow(0.999f, step);
        for (int i = 0; i < offsets.Length; i++)
        {
            m1[i] = 0.9f * m1[i] + 0.1f * grad[i];
            m2[i] = 0.999f * m2[i] + 0.001f * grad[i] * grad[i];
            offsets[i] -= lr * (m1[i] / c1) / (MathF.Sqrt(m2[i] / c2) + 1e-8f);
        }
    }

    /// <summary>Mean per-sample KL over samples [b0, b0+count) (all when count is 0); adds ∂loss/∂offset into grad and,
    /// when <paramref name="currentGrad"/> is given, writes ∂loss/∂I into it (layout of <see cref="LayerData.Currents"/>
    /// for those samples: [T, count, S], or [count, S] for a constant input, summed over t).</summary>
    public double Loss(IfNeuron neuron, float[] offsets, LayerData d, float[]? grad, int b0 = 0, int count = 0, float[]? currentGrad = null)
    {
        if (count == 0) count = d.Samples;
        int s = d.Neurons, steps = d.Steps;
        float theta = neuron.Threshold, v0 = neuron.InitialFraction * theta;
        bool strict = neuron.Rule == FireRule.Greater;
        // One gradient partial per fixed slice of samples (not per worker), summed in slice order: neither which worker
        // ran which sample nor the worker count may change the rounding, or two runs with the same seed train different
        // offsets.
        int slices = Math.Max(1, Math.Min(GradientSlices, count)), perSlice = (count + slices - 1) / slices;
        var partialGrad = grad == null ? null : new float[slices * s];
        var losses = new double[count];
        Pool.For(slices, (slice, _) =>
        {
            for (int k = slice * perSlice; k < Math.Min(count, (slice + 1) * perSlice); k++)
                Sample(k, slice);
        });
        if (grad != null)
            for (int sl = 0; sl < slices; sl++) TensorPrimitives.Add(grad, partialGrad.AsSpan(sl * s, s), grad);
        return losses.Sum() / count;

        void Sample(int k, int slice)
        {
            int b = b0 + k;
            var m = Tensors.ThreadScratch.Get(4, steps * s).AsSpan(0, steps * s);
            var rate = Tensors.ThreadScratch.Get(5, s).AsSpan(0, s);
            Simulate(d, b, offsets, v0, theta, strict, m, rate);
            var target = d.Targets.AsSpan(b * s, s);
            var p = Tensors.ThreadScratch.Get(6, s).AsSpan(0, s);
            var q = Tensors.ThreadScratch.Get(7, s).AsSpan(0, s);
            TensorPrimitives.SoftMax(target, p);
            TensorPrimitives.SoftMax(rate, q);
            double kl = 0;
            for (int i = 0; i < s; i++) if (p[i] > 0) kl += p[i] * (Math.Log(p[i]) - Math.Log(Math.Max(q[i], 1e-30f)));
            losses[k] = kl;
            if (partialGrad == null) return;
            // ∂s/∂m at every step, in place of m: (α/θ)·½(1 − tanh²(α(m − θ)/θ)).
            TensorPrimitives.Add(m, -theta, m);
            TensorPrimitives.Multiply(m, Alpha / theta, m);
            TensorPrimitives.Tanh(m, m);
            TensorPrimitives.Multiply(m, m, m);
            TensorPrimitives.Multiply(m, -0.5f * Alpha / theta, m);
            TensorPrimitives.Add(m, 0.5f * Alpha / theta, m);
            // ∂KL/∂r = q − p (mean over the batch); r = Σ θ s_t / T. Reuses p for it.
            TensorPrimitives.Subtract(q, p, p);
            TensorPrimitives.Multiply(p, theta / steps / count, p);
            BackThroughTime(d.Constant, steps, count, k, theta, m, p, partialGrad.AsSpan(slice * s, s), currentGrad);
        }
    }

    /// <summary>One sample's forward: the pre-reset potential m[t, i] at every step and the rate r[i] = Σ θ·s_t / T.</summary>
    private static void Simulate(LayerData d, int b, float[] offsets, float v0, float theta, bool strict, Span<float> m, Span<float> rate)
    {
        int s = d.Neurons, steps = d.Steps, i = 0;
        ReadOnlySpan<float> Current(int t) => d.Constant ? d.Currents.AsSpan(b * s, s) : d.Currents.AsSpan((int)(((long)t * d.Samples + b) * s), s);
        if (Vector512.IsHardwareAccelerated)
        {
            Vector512<float> th = Vector512.Create(theta), zero = Vector512<float>.Zero;
            for (; i <= s - 16; i += 16)
            {
                var v = Vector512.Create(v0) + Vector512.Create(offsets.AsSpan(i, 16));
                var r = zero;
                for (int t = 0; t < steps; t++)
                {
                    v += Vector512.Create(Current(t).Slice(i, 16));
                    v.CopyTo(m.Slice(t * s + i, 16));
                    var fire = strict ? Vector512.GreaterThan(v, th) : Vector512.GreaterThanOrEqual(v, th);
                    var spike = Vector512.ConditionalSelect(fire, th, zero);
                    v -= spike;
                    r += spike;
                }
                (r / steps).CopyTo(rate.Slice(i, 16));
            }
        }
        for (; i < s; i++)
        {
            float v = v0 + offsets[i], r = 0;
            for (int t = 0; t < steps; t++)
            {
                v += Current(t)[i];
                m[t * s + i] = v;
                if (IfStep.Fires(v, theta, strict)) { v -= theta; r += theta; }
            }
            rate[i] = r / steps;
        }
    }

    /// <summary>Back through the steps: with ds[t, i] = ∂s/∂m and gr[i] = θ/T·∂loss/∂r, ∂loss/∂m(t) = ∂loss/∂m(t+1)·(1 −
    /// θ·ds) + gr·ds (the soft reset's path and the spike's). That is also ∂loss/∂I(t) (written to currentGrad, summed
    /// over t for a constant input) and, at t = 0, ∂loss/∂v0 (added to g).</summary>
    private static void BackThroughTime(bool constant, int steps, int count, int k, float theta, ReadOnlySpan<float> ds, ReadOnlySpan<float> gr,
        Span<float> g, float[]? currentGrad)
    {
        int s = g.Length, i = 0;
        if (Vector512.IsHardwareAccelerated)
        {
            var th = Vector512.Create(theta);
            for (; i <= s - 16; i += 16)
            {
                var r = Vector512.Create(gr.Slice(i, 16));
                Vector512<float> gv = Vector512<float>.Zero, sum = Vector512<float>.Zero;
                for (int t = steps - 1; t >= 0; t--)
                {
                    var d = Vector512.Create(ds.Slice(t * s + i, 16));
                    gv = gv * (Vector512<float>.One - th * d) + r * d;
                    if (currentGrad == null) continue;
                    if (constant) sum += gv;
                    else gv.CopyTo(currentGrad.AsSpan((int)(((long)t * count + k) * s + i), 16));
                }
                if (currentGrad != null && constant) sum.CopyTo(currentGrad.AsSpan(k * s + i, 16));
                (Vector512.Create(g.Slice(i, 16)) + gv).CopyTo(g.Slice(i, 16));
            }
        }
        for (; i < s; i++)
        {
            float gv = 0, sum = 0;
            for (int t = steps - 1; t >= 0; t--)
            {
                float d = ds[t * s + i];
                gv = gv * (1 - theta * d) + gr[i] * d;
                if (currentGrad == null) continue;
                if (constant) sum += gv;
                else currentGrad[((long)t * count + k) * s + i] = gv;
            }
            if (currentGrad != null && constant) currentGrad[(long)k * s + i] = sum;
            g[i] += gv;
        }
    }

    /// <summary>The layer feeding an IF neuron: a Conv2d or Linear (<see cref="Layer"/>, child <see cref="LayerName"/> of
    /// <see cref="Parent"/>), optionally followed by eval-mode BatchNorm. A residual block's output neuron also gets the
    /// shortcut current, which stage b holds fixed.</summary>
    public sealed record Synapse(Module Parent, string LayerName, Module Layer, BatchNorm? Norm)
    {
        public Variable Forward(Variable x) => Norm == null ? Layer.Forward(x) : Norm.Forward(Layer.Forward(x));

        public List<KeyValuePair<string, Parameter>> Parameters() =>
            Layer.NamedParameters("layer.").Concat(Norm?.NamedParameters("norm.") ?? []).ToList();

        /// <summary>Finds the synapse of the neuron at <paramref name="neuronName"/> (a module path); null when the layer
        /// before it is not a Conv2d/Linear (+ BatchNorm).</summary>
        public static Synapse? Find(Module model, string neuronName)
        {
            var (parent, child) = model.NamedModules()
                .SelectMany(m => m.Value.Children.Select(c => (Parent: m.Value, c.Key, Path: m.Key.Length == 0 ? c.Key : m.Key + "." + c.Key)))
                .Where(c => c.Path == neuronName).Select(c => (c.Parent, c.Key)).First();
            if (parent is Graphs.GraphModel graph) return FromGraph(graph, child);
            int index = parent.Children.ToList().FindIndex(c => c.Key == child);
            return FromSequence(parent, index);
        }

        /// <summary>The layer (+ BN) whose output the neuron node reads; through an add, the first operand that is one
        /// (a residual branch: the other operand is the shortcut's current).</summary>
        private static Synapse? FromGraph(Graphs.GraphModel model, string neuron)
        {
            var graph = model.Graph;
            Module At(string node) => model.Children[graph.Index[node]].Value;
            bool OnlyFeeds(string node, string reader) => graph.Consumers(node).Select(c => c.Name).SequenceEqual([reader]) && node != graph.Output;
            Synapse? Through(string node, string reader)
            {
                if (node == graph.InputName || !OnlyFeeds(node, reader)) return null;
                var inputs = graph.Nodes[graph.Index[node]].Inputs;
                return At(node) switch
                {
                    Conv2d or Linear => new Synapse(model, node, At(node), null),
                    BatchNorm bn when inputs[0] != graph.InputName && At(inputs[0]) is Conv2d or Linear && OnlyFeeds(inputs[0], node)
                        => new Synapse(model, inputs[0], At(inputs[0]), bn),
                    _ => null,
                };
            }
            string input = graph.Nodes[graph.Index[neuron]].Inputs[0];
            if (input != graph.InputName && graph.Nodes[graph.Index[input]].Op == "add" && OnlyFeeds(input, neuron))
                return graph.Nodes[graph.Index[input]].Inputs.Select(operand => Through(operand, input)).FirstOrDefault(s => s != null);
            return Through(input, neuron);
        }

        private static Synapse? FromSequence(Module parent, int end)
        {
            var children = parent.Children;
            if (end >= 1 && children[end - 1].Value is BatchNorm bn && end >= 2 && children[end - 2].Value is Conv2d or Linear)
                return new Synapse(parent, children[end - 2].Key, children[end - 2].Value, bn);
            if (end >= 1 && children[end - 1].Value is Conv2d or Linear)
                return new Synapse(parent, children[end - 1].Key, children[end - 1].Value, null);
            return null;
        }
    }

    /// <summary>Inputs of a synapse for stage b: the layer's input rows (spikes [T·N, …], or [N, …] when constant over
    /// time), the part of the neuron's current that does not come through the synapse (a residual shortcut; null when
    /// none) and the ANN targets [N, S].</summary>
    public sealed record SynapseData(Tensor Inputs, bool Constant, float[]? ExtraCurrent, float[] Targets, int Samples, int Neurons, int Steps);

    /// <summary>Trains the synapse's weights and bias together with the offsets (spec §4b), restoring the best by
    /// held-out loss; returns (validation loss before, after).</summary>
    public (double Before, double After) TrainWithSynapse(IfNeuron neuron, float[] offsets, Synapse synapse, SynapseData train, SynapseData valid)
    {
        var parameters = synapse.Parameters();
        var adam = new Adam(parameters);
        int s = train.Neurons;
        var m1 = new float[s];
        var m2 = new float[s];
        var arena = new TensorArena();
        double Validate()
        {
            using var scope = arena.Activate();
            return Loss(neuron, offsets, Currents(synapse, valid, 0, valid.Samples, record: false).Data, null);
        }
        float[][] Save() => parameters.Select(p => (float[])p.Value.Value.Data.Clone()).Append((float[])offsets.Clone()).ToArray();
        double before = Validate(), bestLoss = before;
        var best = Save();
        int bad = 0, step = 0;
        float[] currentGrad = [];
        for (int epoch = 0; epoch < MaxEpochs && bad < Patience; epoch++)
        {
            for (int b0 = 0; b0 < train.Samples; b0 += BatchSize)
            {
                int count = Math.Min(BatchSize, train.Samples - b0);
                using var scope = arena.Activate();
                using var tape = Tape.Start();
                var (current, data) = Currents(synapse, train, b0, count, record: true);
                var offsetGrad = new float[s];
                // Loss writes every element, so one buffer serves every batch (zeroing a fresh one cost as much as
                // the layer's currents).
                if (currentGrad.Length < current.Value.Length) currentGrad = GC.AllocateUninitializedArray<float>(current.Value.Length);
                Loss(neuron, offsets, data, offsetGrad, 0, count, currentGrad);
                var seed = new Variable(new Tensor(1), requiresGrad: true);
                var batchGrad = currentGrad;
                Tape.Record(() => current.AccumulateGrad(batchGrad.AsSpan(0, current.Value.Length)));
                tape.Backward(seed);
                adam.Step(WeightLearningRate);
                foreach (var (_, p) in parameters) p.ZeroGrad();
                step++;
                AdamStep(offsets, offsetGrad, m1, m2, step, LearningRate * neuron.Threshold);
            }
            double val = Validate();
            if (val < bestLoss - 1e-9) { bestLoss = val; best = Save(); bad = 0; }
            else bad++;
        }
        for (int j = 0; j < parameters.Count; j++) best[j].CopyTo(parameters[j].Value.Value.Data, 0);
        best[^1].CopyTo(offsets, 0);
        return (before, bestLoss);
    }

    /// <summary>The neuron's input currents for samples [b0, b0+count): the synapse applied to their input rows (recorded
    /// on the tape when <paramref name="record"/>) plus the fixed extra current, as a <see cref="LayerData"/>.</summary>
    private static (Variable Current, LayerData Data) Currents(Synapse synapse, SynapseData d, int b0, int count, bool record)
    {
        int steps = d.Constant ? 1 : d.Steps, per = d.Inputs.SizeFrom(1);
        var shape = (int[])d.Inputs.Shape.Clone();
        shape[0] = steps * count;
        var x = Tensor.Scratch(shape);
        for (int t = 0; t < steps; t++)
            d.Inputs.Data.AsSpan(checked((int)(((long)t * d.Samples + b0) * per)), count * per).CopyTo(x.Data.AsSpan(t * count * per));
        var current = synapse.Forward(new Variable(x));
        if (!record) current = new Variable(current.Value);
        var cur = current.Value.Data;
        if (d.ExtraCurrent != null)
            for (int t = 0; t < steps; t++)
                TensorPrimitives.Add(cur.AsSpan(t * count * d.Neurons, count * d.Neurons),
                    d.ExtraCurrent.AsSpan((int)(((long)t * d.Samples + b0) * d.Neurons), count * d.Neurons), cur.AsSpan(t * count * d.Neurons, count * d.Neurons));
        var targets = d.Targets.AsSpan(b0 * d.Neurons, count * d.Neurons).ToArray();
        return (current, new LayerData(cur, d.Constant, targets, count, d.Neurons, d.Steps));
    }
}
