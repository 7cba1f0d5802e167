using System.Globalization;
using SpikeSharp.Conversion;
using SpikeSharp.Conversion.Methods;
using SpikeSharp.Data;
using SpikeSharp.Models;
using SpikeSharp.Nn;
using SpikeSharp.Snn;

namespace SpikeSharp.Interop.Nir;

/// <summary>What an export wrote, and what the NIR file cannot say (the CLI prints it).</summary>
public sealed record NirExportResult(string Path, int Nodes, int Edges, IReadOnlyList<string> Lost);

/// <summary>
/// Exports a converted SNN as a NIR graph (issue 8): Input → Conv2d (BN folded in; NIR has no batch norm) /
/// AvgPool2d / Flatten / Affine, each activation → IF (r = 1, v_threshold = θ, v_reset = 0) followed by a Scale by θ
/// (our spikes carry the value θ, NIR's carry 1), a residual add as two edges into the block's output IF (NIR sums
/// incoming edges), → Output. Shapes are per sample (no batch axis), as NIR's type checking expects. What NIR cannot
/// express (soft reset, v(0), the ≥ fire rule, discrete T, direct analog input, method procedures such as SRP masks and
/// COS offsets) goes into node/graph metadata and into <see cref="NirExportResult.Lost"/>.
/// </summary>
public static class NirExporter
{
    /// <summary>Loads a checkpoint, converts it with <paramref name="method"/> (BN folded), calibrates when the method
    /// needs training images, and writes the NIR file atomically (temp file + rename; nothing is left on failure).</summary>
    /// <param name="train">training images: required for ReLU checkpoints (threshold balancing) and dual-phase</param>
    public static NirExportResult Export(string checkpointDir, ConversionMethod method, int steps, string outPath,
        ImageSet? train = null, Action<string>? log = null)
    {
        if (steps <= 0) throw new SpikeSharpException($"--timesteps must be a positive integer, got {steps}");
        method.Validate(steps);
        var cp = Checkpoint.Load(checkpointDir);
        Converter.Validate(cp.Model);
        var act = cp.Spec.ActivationOrDefault;
        method.ValidateModel(act, steps);
        var transform = TransformSpec.ForEval(cp.Spec.InChannels, cp.Spec.Height, cp.Spec.Width, new Normalization(cp.Data.Mean, cp.Data.Std));
        List<Tensors.Tensor>? balancing = null;
        if (act.Kind == "relu")
        {
            if (train == null) throw new SpikeSharpException($"{checkpointDir}: the checkpoint uses plain ReLU; its thresholds come from threshold balancing on training images: pass --data DIR with the {cp.Data.Dataset} training files");
            using var l = new DataLoader(train.Take(Math.Min(512, train.Count)), 128, transform, shuffle: false, train: false, seed: 0);
            balancing = l.Epoch(0).Select(b => b.Images.Clone()).ToList();
        }
        var snn = Converter.Convert(cp.Model, method.Options with { FoldBatchNorm = true }, balancing, log, method.NeuronFactory);
        if (method.CalibrationIsExported)
        {
            if (train == null) throw new SpikeSharpException($"{method.Name} calibrates on training images and the export carries the result: pass --data DIR with the training files");
            var ann = Checkpoint.Load(checkpointDir).Model;
            ann.Eval();
            method.Calibrate(snn, ann, new CalibrationData(train, transform, 64, log), steps);
        }
        var (graph, lost) = Build(snn, cp.Spec, cp.Data, method, steps);
        WriteAtomic(graph, outPath);
        return new NirExportResult(outPath, graph.Nodes.Count, graph.Edges.Count, lost);
    }

    /// <summary>Writes to a temporary file beside the target, then renames it over the target.</summary>
    public static void WriteAtomic(NirGraph graph, string outPath)
    {
        string full = System.IO.Path.GetFullPath(outPath);
        string dir = System.IO.Path.GetDirectoryName(full)!;
        try { Directory.CreateDirectory(dir); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        { throw new SpikeSharpException($"cannot write '{outPath}': its directory cannot be created ({e.Message})"); }
        string tmp = System.IO.Path.Combine(dir, $".{System.IO.Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            try { graph.Write(tmp); }
            catch (IOException e) { throw new SpikeSharpException($"cannot write '{outPath}': {e.Message}"); }
            using (var fs = new FileStream(tmp, FileMode.Open, FileAccess.ReadWrite)) fs.Flush(flushToDisk: true);
            File.Move(tmp, full, overwrite: true);
        }
        catch
        {
            try { File.Delete(tmp); } catch { /* best effort */ }
            throw;
        }
    }

    /// <summary>Builds the NIR graph of a converted network (BN must already be folded) and the lost-in-export list.</summary>
    public static (NirGraph Graph, List<string> Lost) Build(SpikingNetwork snn, ModelSpec spec, DataInfo data, ConversionMethod method, int steps)
    {
        var b = new Builder(spec);
        var outputs = b.Visit(snn.Model, "", ["input"]);
        b.Graph.Add(Node("output", "Output", ("shape", NirInts.Vector(b.Shape.Select(d => (long)d).ToArray()))), outputs);
        var g = b.Graph;
        var act = spec.ActivationOrDefault;
        var meta = g.Metadata;
        meta["producer"] = new NirString("SpikeSharp");
        meta["model"] = new NirString(spec.Name);
        meta["dataset"] = new NirString(data.Dataset);
        meta["method"] = new NirString(method.Name);
        meta["method_description"] = new NirString(method.Description);
        meta["timesteps"] = NirInts.Scalar(steps);
        meta["extra_steps"] = NirInts.Scalar(method.ExtraSteps);
        meta["dt"] = new NirFloats([1f], []);
        meta["activation"] = new NirString(act.Kind);
        if (act.Kind is "qcfs" or "noisyqc") meta["levels"] = NirInts.Scalar(act.Levels);
        meta["input_encoding"] = new NirString("direct: the normalized image (analog values) is the input current of the first layer at every step");
        meta["input_mean"] = new NirFloats(data.Mean, [data.Mean.Length]);
        meta["input_std"] = new NirFloats(data.Std, [data.Std.Length]);
        meta["output_decoding"] = new NirString("mean of the output node over the T steps; prediction = argmax");
        meta["neuron_reset"] = new NirString("subtract");

        var rule = snn.IfNeurons.FirstOrDefault()?.Rule;
        var lost = new List<string>
        {
            "reset by subtraction (v -= θ on a spike): NIR's IF resets to v_reset; kept as metadata reset = 'subtract' on each IF node",
            "initial membrane potential v(0) = θ/2" + (method.CalibrationIsExported ? " plus the calibrated per-neuron offsets" : "") +
                ": NIR nodes have no initial state; kept as metadata v_initial on each IF node",
            $"discrete time: T = {steps} steps of dt = 1 (NIR's IF is the ODE dv/dt = R·I); kept as graph metadata timesteps, dt",
            "direct encoding: the normalized analog image drives the first layer at every step, and the input normalization is not a node; " +
                "kept as graph metadata input_encoding, input_mean, input_std",
            "output decoding (mean of the output over the T steps, argmax): kept as graph metadata output_decoding",
        };
        if (rule == FireRule.GreaterOrEqual)
            lost.Add("fire rule v ≥ θ: NIR's IF fires on v > v_threshold (they differ only when v equals θ exactly); kept as metadata fire_rule");
        if (act.Kind is "qcfs" or "noisyqc")
            lost.Add($"the ANN's quantization levels L = {act.Levels} (informational; the SNN does not use L): graph metadata levels");
        switch (method)
        {
            case SrpCalibration srp:
                meta["srp_presim_steps"] = NirInts.Scalar(srp.PresimSteps);
                meta["srp_residual_epsilon"] = new NirFloats([SrpCalibration.ResidualEpsilon], []);
                lost.Add($"SRP's per-sample output masks come from a τ = {srp.PresimSteps}-step pre-simulation at run time (mask where v(τ)/θ ≤ 1e-3, then restart): " +
                    "NIR cannot express this procedure; a NIR runtime simulates the plain QCFS network. Graph metadata srp_presim_steps, srp_residual_epsilon");
                break;
            case CosCalibration cos:
                meta["cos_presim_steps"] = NirInts.Scalar(cos.PresimSteps);
                meta["cos_rounds"] = NirInts.Scalar(cos.Rounds);
                lost.Add($"COS's per-sample initial-potential offsets are computed at run time from each layer's first ρ = {cos.PresimSteps} inputs: " +
                    "NIR cannot express this procedure; a NIR runtime simulates the plain QCFS network. Graph metadata cos_presim_steps, cos_rounds");
                break;
            case BitSerialConversion:
                lost.Add("bit-serial neurons (input averaged over T, bias shift λ/(2L), threshold halving every step, outputs T·θ_j·s_j) have no NIR model: " +
                    "their IF nodes are placeholders with v_threshold = λ and a NIR runtime will NOT reproduce this network; metadata neuron_model, threshold_schedule, input_shift on each node");
                break;
        }
        return (g, lost);
    }

    private static NirNode Node(string name, string type, params (string Key, NirValue Value)[] values)
    {
        var n = new NirNode(name, type);
        foreach (var (k, v) in values) n.Params[k] = v;
        return n;
    }

    private static NirFloats Filled(float value, int[] shape)
    {
        var a = new float[shape.Aggregate(1, (x, d) => x * d)];
        Array.Fill(a, value);
        return new NirFloats(a, shape);
    }

    /// <summary>Walks the module tree in execution order, tracking the per-sample shape and the nodes whose sum is the
    /// current value (more than one after a residual add).</summary>
    private sealed class Builder
    {
        public NirGraph Graph { get; } = new();
        public int[] Shape { get; private set; }

        public Builder(ModelSpec spec)
        {
            Shape = [spec.InChannels, spec.Height, spec.Width];
            Graph.Add(Node("input", "Input", ("shape", NirInts.Vector(spec.InChannels, spec.Height, spec.Width))), []);
        }

        private static string Join(string prefix, string name) => prefix.Length == 0 ? name : prefix + "." + name;

        /// <summary>NIR node names: the layer's state-dict prefix with '_' for '.' (names end up as group names and as
        /// attribute names in NIR's PyTorch/Norse importers, where dots are not allowed).</summary>
        private string Add(string layer, string type, List<string> inputs, params (string, NirValue)[] values)
        {
            string name = layer.Replace('.', '_');
            if (inputs.Distinct().Count() != inputs.Count) throw new SpikeSharpException($"layer '{layer}': the same value is added to itself; NIR edges cannot express x + x");
            Graph.Add(Node(name, type, values), inputs);
            return name;
        }

        private static NirInts Pair(int a, int b) => NirInts.Vector(a, b);

        public List<string> Visit(Module m, string name, List<string> inputs)
        {
            switch (m)
            {
                case Graphs.GraphModel graph:
                {
                    // Each node reads the NIR nodes whose sum is its input; an add is the union of its inputs' lists.
                    var values = new Dictionary<string, (List<string> Nodes, int[] Shape)> { [graph.Graph.InputName] = (inputs, Shape) };
                    foreach (var (node, i) in graph.Graph.Nodes.Select((n, i) => (n, i)))
                    {
                        if (node.Op is "concat" or "maxpool2d")
                            throw new SpikeSharpException($"graph node '{node.Name}' ({node.Op}) has no NIR equivalent (NIR 1.0 has no concatenation or max pooling); evaluate this network in SpikeSharp or export it as ONNX");
                        if (node.Op == "add")
                        {
                            var (a, b) = (values[node.Inputs[0]], values[node.Inputs[1]]);
                            values[node.Name] = ([.. a.Nodes, .. b.Nodes], a.Shape);
                            continue;
                        }
                        (var current, Shape) = values[node.Inputs[0]];
                        values[node.Name] = (Visit(graph.Children[i].Value, node.Name, current), Shape);
                    }
                    (var output, Shape) = values[graph.Graph.Output];
                    return output;
                }
                case Sequential chain:
                    foreach (var (child, module) in chain.Children) inputs = Visit(module, Join(name, child), inputs);
                    return inputs;
                case Identity or Dropout:
                    return inputs;
                case Conv2d c:
                {
                    int span = c.Dilation * (c.KernelSize - 1) + 1;
                    int h = (Shape[1] + 2 * c.Padding - span) / c.Stride + 1, w = (Shape[2] + 2 * c.Padding - span) / c.Stride + 1;
                    var node = Add(name, "Conv2d", inputs,
                        ("input_shape", Pair(Shape[1], Shape[2])),
                        ("weight", new NirFloats(c.Weight.Value.Data, [c.OutChannels, c.InChannels / c.Groups, c.KernelSize, c.KernelSize])),
                        ("stride", Pair(c.Stride, c.Stride)), ("padding", Pair(c.Padding, c.Padding)), ("dilation", Pair(c.Dilation, c.Dilation)),
                        ("groups", NirInts.Scalar(c.Groups)),
                        ("bias", new NirFloats(c.Bias?.Value.Data ?? new float[c.OutChannels], [c.OutChannels])));
                    Shape = [c.OutChannels, h, w];
                    return [node];
                }
                case Linear l:
                {
                    if (Shape.Length > 1) inputs = Visit(new Flatten(), Join(name, "flatten"), inputs); // Linear flattens [N,C,H,W] itself
                    if (Shape[0] != l.InFeatures) throw new SpikeSharpException($"layer '{name}': expects {l.InFeatures} inputs, the graph gives {Shape[0]}");
                    var node = Add(name, "Affine", inputs, ("weight", new NirFloats(l.Weight.Value.Data, [l.OutFeatures, l.InFeatures])),
                        ("bias", new NirFloats(l.Bias?.Value.Data ?? new float[l.OutFeatures], [l.OutFeatures])));
                    Shape = [l.OutFeatures];
                    return [node];
                }
                case AvgPool2d p:
                    return Pool(name, inputs, p.KernelSize, p.KernelSize, p.Stride, p.Stride);
                case GlobalAvgPool2d:
                    return Pool(name, inputs, Shape[1], Shape[2], Shape[1], Shape[2]);
                case Flatten:
                {
                    if (Shape.Length == 1) return inputs;
                    var node = Add(name, "Flatten", inputs, ("start_dim", NirInts.Scalar(0)), ("end_dim", NirInts.Scalar(-1)),
                        ("input_type", NirInts.Vector(Shape.Select(d => (long)d).ToArray())));
                    Shape = [Shape.Aggregate(1, (a, d) => a * d)];
                    return [node];
                }
                case SpikingNeuron n:
                    return Neuron(n, name, inputs);
                case BatchNorm:
                    throw new SpikeSharpException($"layer '{name}' is a batch norm that could not be folded into a preceding conv/linear layer; NIR has no batch norm");
                default:
                    throw new SpikeSharpException($"layer '{name}' ({m.GetType().Name}) has no NIR equivalent");
            }
        }

        private List<string> Pool(string name, List<string> inputs, int kh, int kw, int sh, int sw)
        {
            var node = Add(name, "AvgPool2d", inputs, ("kernel_size", Pair(kh, kw)), ("stride", Pair(sh, sw)), ("padding", Pair(0, 0)));
            Shape = [Shape[0], (Shape[1] - kh) / sh + 1, (Shape[2] - kw) / sw + 1];
            return [node];
        }

        /// <summary>IF (r = 1, v_threshold = θ, v_reset = 0) then Scale(θ): the spike of this SNN carries θ.</summary>
        private List<string> Neuron(SpikingNeuron n, string name, List<string> inputs)
        {
            var shape = Shape;
            int size = shape.Aggregate(1, (a, d) => a * d);
            float theta = n.Threshold;
            string ifName = Add(name, "IF", inputs, ("r", Filled(1f, shape)), ("v_threshold", Filled(theta, shape)), ("v_reset", Filled(0f, shape)));
            var md = Graph.Nodes[^1].Metadata;
            md["source_layer"] = new NirString(n.LayerName);
            md["reset"] = new NirString("subtract");
            md["spike_value"] = new NirFloats([theta], []);
            if (n is IfNeuron f)
            {
                var v0 = Filled(f.InitialFraction * theta, shape);
                if (f.InitialOffset is { } off)
                {
                    if (off.Length != size) throw new SpikeSharpException($"layer '{n.LayerName}': initial offsets are per sample ({off.Length} values for {size} neurons); only per-neuron offsets can be exported");
                    for (int i = 0; i < size; i++) v0.Data[i] += off[i];
                }
                md["v_initial"] = v0;
                md["fire_rule"] = new NirString(f.Rule == FireRule.Greater ? "v > v_threshold" : "v >= v_threshold");
            }
            else if (n is BitSerialNeuron bs)
            {
                float unit = theta / bs.Levels;
                md["neuron_model"] = new NirString("bit-serial (Datta et al. 2023): u = mean of the T inputs + input_shift; step j fires if u >= threshold_schedule[j], u -= threshold_schedule[j]; output T*threshold_schedule[j]*s_j");
                md["threshold_schedule"] = new NirFloats(Enumerable.Range(0, bs.Bits).Select(j => unit * (1 << (bs.Bits - 1 - j))).ToArray(), [bs.Bits]);
                md["input_shift"] = new NirFloats([unit / 2], []);
            }
            string scale = Add(name + ".scale", "Scale", [ifName], ("scale", Filled(theta, shape)));
            Graph.Nodes[^1].Metadata["why"] = new NirString(string.Create(CultureInfo.InvariantCulture, $"the spikes of '{n.LayerName}' carry the value θ = {theta}"));
            return [scale];
        }
    }
}
