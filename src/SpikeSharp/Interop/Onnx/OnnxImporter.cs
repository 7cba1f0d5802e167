using SpikeSharp.Models;
using SpikeSharp.Nn;
using SpikeSharp.Tensors;

namespace SpikeSharp.Interop.Onnx;

/// <summary>
/// Reads an ONNX graph exported from PyTorch and maps its weights onto a built-in architecture: the graph is
/// interpreted into layers (<see cref="OnnxGraphReader"/>), then the built-in model's modules are walked in forward
/// order and each takes the next layer's tensors, with every shape, stride and padding checked. The result is named
/// like the model's state dict, so <see cref="ModelImport.Build"/> loads it strictly like any other source.
/// </summary>
public static class OnnxImporter
{
    public static ImportedTensors Read(string path, ModelSpec spec)
    {
        byte[] bytes;
        try { bytes = File.ReadAllBytes(path); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException) { throw new InvalidFileException(path, $"cannot be read: {e.Message}", e); }
        return Read(bytes, path, spec);
    }

    /// <summary>Imports an ONNX model held in memory; <paramref name="path"/> names it in messages.</summary>
    public static ImportedTensors Read(byte[] bytes, string path, ModelSpec spec)
    {
        spec.Validate();
        var graph = OnnxGraphReader.Read(bytes, path, spec.InChannels, spec.Height, spec.Width);
        var notes = new List<string>(graph.Notes);
        var layers = graph.Layers;

        var acts = layers.OfType<OnnxActivationLayer>().ToList();
        var kinds = acts.Select(a => a.Kind).Distinct().ToList();
        if (kinds.Count > 1)
            throw new InvalidFileException(path, $"mixes activation kinds ({string.Join(", ", kinds)}); e.g. {acts.First(a => a.Kind == kinds[0]).Describe} and {acts.First(a => a.Kind == kinds[1]).Describe}");
        int? levels = null;
        if (kinds is ["qcfs"])
        {
            var byLevels = acts.GroupBy(a => a.Levels!.Value).ToList();
            if (byLevels.Count > 1)
                throw new InvalidFileException(path, "QCFS layers disagree on the levels L: " +
                    string.Join("; ", byLevels.Select(g => $"L = {g.Key} at {g.First().Describe}{(g.Count() > 1 ? $" and {g.Count() - 1} more" : "")}")));
            levels = byLevels[0].Key;
            var orders = acts.Select(a => a.Order).Distinct();
            notes.Add($"recovered QCFS L = {levels} and λ of {acts.Count} activation layers ({string.Join(", ", orders)} order) from the graph constants");
        }
        else if (kinds is ["clip"])
            notes.Add("activations are Clip(0, λ) without quantization (a clip-trained ANN); λ is imported as the threshold, give --levels to run it as QCFS");

        var lastLinear = layers.OfType<OnnxLinearLayer>().LastOrDefault()
            ?? throw new InvalidFileException(path, "has no Gemm/MatMul classifier layer");
        var activation = kinds is ["qcfs"] ? ActivationSpec.Qcfs(levels!.Value) : kinds is ["clip"] ? ActivationSpec.Qcfs(1) : ActivationSpec.Relu;
        var full = spec with { Classes = lastLinear.Out, Activation = activation };
        if (full.Classes < 2) throw new InvalidFileException(path, $"the classifier {lastLinear.Describe} has {lastLinear.Out} output(s); expected at least 2 classes");
        var model = ModelFactory.Create(full);

        var mapper = new Mapper(path, full, layers, notes);
        mapper.Walk("", model);
        mapper.Finish();

        var tensors = new Dictionary<string, Tensor>();
        foreach (var (key, _) in model.StateDict())
            tensors[key] = mapper.Assigned.TryGetValue(key, out var t) ? t
                : throw new SpikeSharpException($"{path}: internal error: no tensor was assigned to '{key}'");
        return new ImportedTensors(path, "onnx", tensors, levels, notes);
    }

    /// <summary>Walks a built-in model in forward order and assigns each parameterized module the next ONNX layer.</summary>
    private sealed class Mapper(string path, ModelSpec spec, IReadOnlyList<OnnxLayer> layers, List<string> notes)
    {
        private int _next;
        private OnnxConvLayer? _pendingConv;
        private string? _pendingConvName;
        private readonly List<string> _fused = new();
        private readonly List<string> _maxPools = new();
        private readonly List<string> _epsAdjusted = new();

        public Dictionary<string, Tensor> Assigned { get; } = new();

        private string Arch => $"{spec.Name} (width {spec.WidthMultiplier.ToString(System.Globalization.CultureInfo.InvariantCulture)})";

        private InvalidFileException Mismatch(OnnxLayer layer, string module, string problem) =>
            new(path, $"{layer.Describe} does not fit {Arch} layer '{module}': {problem}; check --arch, --width and --input-shape");

        private OnnxLayer Take(string module, string expected)
        {
            if (_next >= layers.Count)
                throw new InvalidFileException(path, $"the graph ends before {Arch} layer '{module}' (expected {expected}); the file has fewer layers than the architecture, check --arch");
            return layers[_next++];
        }

        private OnnxLayer? Peek => _next < layers.Count ? layers[_next] : null;

        private static Tensor T(float[] data, params int[] shape) => new(data, shape);

        public void Walk(string prefix, Module m)
        {
            switch (m)
            {
                case Graphs.AddModule:
                    var add = Take(prefix.TrimEnd('.'), "the residual Add");
                    if (add is not OnnxAddLayer) throw Mismatch(add, prefix.TrimEnd('.'), "expected the residual Add of the block");
                    return;
                case Conv2d conv: Conv(prefix.TrimEnd('.'), conv); return;
                case BatchNorm bn: BatchNorm(prefix.TrimEnd('.'), bn); return;
                case Linear linear: Linear(prefix.TrimEnd('.'), linear); return;
                case Activation act: Activation(prefix.TrimEnd('.'), act); return;
                case AvgPool2d pool: Pool(prefix.TrimEnd('.'), "avg", pool.KernelSize, pool.Stride); return;
                case MaxPool2d pool: Pool(prefix.TrimEnd('.'), "max", pool.KernelSize, pool.Stride); return;
                case GlobalAvgPool2d: Pool(prefix.TrimEnd('.'), "global", 0, 0); return;
                case Flatten or Dropout or Identity: return;
            }
            if (m is not Sequential && m.Children.Count == 0)
                throw new SpikeSharpException($"{path}: internal error: the importer does not know module {m.GetType().Name} ('{prefix.TrimEnd('.')}')");
            foreach (var (name, child) in m.Children) Walk(prefix + name + ".", child);
        }

        private void Conv(string name, Conv2d conv)
        {
            FlushConvBias();
            var layer = Take(name, "Conv");
            if (layer is not OnnxConvLayer c) throw Mismatch(layer, name, "expected a Conv");
            var want = conv.Weight.Value.Shape;
            if (!c.Weight.IntDims.AsSpan().SequenceEqual(want) || c.Weight.Dims.Length != 4)
                throw Mismatch(c, name, $"weight {c.Weight.ShapeString}, expected {Tensor.FormatShape(want)}");
            if (c.Stride != conv.Stride || c.Padding != conv.Padding || c.Dilation != conv.Dilation || c.Groups != conv.Groups)
                throw Mismatch(c, name, $"stride {c.Stride}, padding {c.Padding}, dilation {c.Dilation}, group {c.Groups}; expected stride {conv.Stride}, padding {conv.Padding}, dilation {conv.Dilation}, group {conv.Groups}");
            Assigned[name + ".weight"] = T(c.Weight.Floats, want);
            if (conv.Bias is not null)
                Assigned[name + ".bias"] = T(c.Bias?.Floats ?? new float[conv.OutChannels], conv.OutChannels);
            else if (c.Bias is not null && c.Bias.Floats.Any(v => v != 0f))
            {
                // The model's conv has no bias: a following BN absorbs it (fused export), else it cannot be kept.
                _pendingConv = c;
                _pendingConvName = name;
            }
        }

        /// <summary>A conv bias that the model cannot hold and no BN absorbed.</summary>
        private void FlushConvBias()
        {
            if (_pendingConv is null) return;
            throw Mismatch(_pendingConv, _pendingConvName!, "the Conv has a bias but the model's conv has none and no BatchNorm follows it");
        }

        private void BatchNorm(string name, BatchNorm bn)
        {
            int c = bn.Channels;
            if (Peek is OnnxBatchNormLayer b)
            {
                _next++;
                if (b.Scale.Count != c) throw Mismatch(b, name, $"{b.Scale.Count} channels, expected {c}");
                var mean = (float[])b.Mean.Floats.Clone();
                var variance = (float[])b.Var.Floats.Clone();
                if (_pendingConv is { Bias: { } convBias })
                    for (int i = 0; i < c; i++) mean[i] -= convBias.Floats[i]; // BN(x + b) with μ − b
                if (b.Eps != bn.Eps)
                {
                    for (int i = 0; i < c; i++) variance[i] += b.Eps - bn.Eps; // keeps var + eps
                    _epsAdjusted.Add($"{name} (epsilon {b.Eps})");
                }
                Assigned[name + ".weight"] = T((float[])b.Scale.Floats.Clone(), c);
                Assigned[name + ".bias"] = T((float[])b.Bias.Floats.Clone(), c);
                Assigned[name + ".running_mean"] = T(mean, c);
                Assigned[name + ".running_var"] = T(variance, c);
                _pendingConv = null;
                return;
            }
            // The exporter folded this BN into the preceding conv (eval mode + constant folding): an exact identity
            // that carries the conv's bias when the model's conv has none.
            if (_next == 0 || layers[_next - 1] is not OnnxConvLayer conv)
            {
                var at = Peek;
                throw at is null
                    ? new InvalidFileException(path, $"the graph ends before {Arch} layer '{name}' (expected BatchNormalization)")
                    : Mismatch(at, name, "expected BatchNormalization (or a Conv with the BN folded in)");
            }
            var bias = _pendingConv is { Bias: { } pb } ? (float[])pb.Floats.Clone() : new float[c];
            if (bias.Length != c) throw Mismatch(conv, name, $"bias of {bias.Length} channels, expected {c}");
            Assigned[name + ".weight"] = Tensor.Full(1f, c);
            Assigned[name + ".bias"] = T(bias, c);
            Assigned[name + ".running_mean"] = new Tensor(c);
            Assigned[name + ".running_var"] = Tensor.Full(IdentityVariance(bn.Eps), c);
            _pendingConv = null;
            _fused.Add(name);
        }

        /// <summary>The float32 v with v + eps == 1 exactly, so that BN divides by sqrt(v + eps) = 1 with no rounding.</summary>
        internal static float IdentityVariance(float eps)
        {
            float v = 1f - eps;
            while (v + eps > 1f) v = MathF.BitDecrement(v);
            while (v + eps < 1f) v = MathF.BitIncrement(v);
            if (MathF.Sqrt(v + eps) != 1f) throw new SpikeSharpException($"no float32 variance makes BN an identity for eps {eps}");
            return v;
        }

        private void Linear(string name, Linear linear)
        {
            FlushConvBias();
            var layer = Take(name, "Gemm/MatMul");
            if (layer is not OnnxLinearLayer l) throw Mismatch(layer, name, "expected a Gemm or MatMul (Linear)");
            if (l.Out != linear.OutFeatures || l.In != linear.InFeatures)
                throw Mismatch(l, name, $"weight [{l.Out},{l.In}], expected [{linear.OutFeatures},{linear.InFeatures}]");
            Assigned[name + ".weight"] = T((float[])l.Weight.Clone(), l.Out, l.In);
            if (linear.Bias is not null) Assigned[name + ".bias"] = T(l.Bias is null ? new float[l.Out] : (float[])l.Bias.Clone(), l.Out);
            else if (l.Bias is not null && l.Bias.Any(v => v != 0f)) throw Mismatch(l, name, "the file has a bias but the model's linear layer has none");
        }

        private void Activation(string name, Activation act)
        {
            FlushConvBias();
            var layer = Take(name, "an activation");
            if (layer is not OnnxActivationLayer a) throw Mismatch(layer, name, "expected an activation (Relu, Clip or the QCFS pattern)");
            if (act.Lambda is not null)
            {
                if (a.Lambda is not { } lam) throw Mismatch(a, name, "the model's activation has a threshold λ but the file's has none");
                Assigned[name + ".lambda"] = Tensor.Full(lam, 1);
            }
        }

        private void Pool(string name, string kind, int kernel, int stride)
        {
            FlushConvBias();
            var layer = Take(name, kind == "global" ? "GlobalAveragePool" : "AveragePool");
            if (layer is not OnnxPoolLayer p) throw Mismatch(layer, name, $"expected {(kind == "global" ? "global average pooling" : $"{kind} pooling")}");
            if (kind == "global")
            {
                if (p.Kind == "global" || (p.Kind == "avg" && p.CoversInput)) return;
                throw Mismatch(p, name, "expected global average pooling");
            }
            if (p.Kind == "global" || p.Kernel != kernel || p.Stride != stride)
                throw Mismatch(p, name, $"{(p.Kind == "global" ? "global pooling" : $"window {p.Kernel}x{p.Kernel} stride {p.Stride}")}, expected {kernel}x{kernel} stride {stride}");
            if (p.Kind == "max" && kind == "avg") _maxPools.Add(p.Node);
            else if (p.Kind != kind) throw Mismatch(p, name, $"{p.Kind} pooling, expected {kind} pooling");
        }

        public void Finish()
        {
            FlushConvBias();
            if (_next < layers.Count)
            {
                var extra = layers[_next];
                throw new InvalidFileException(path, $"{extra.Describe} and {layers.Count - _next - 1} more layer(s) have no counterpart in {Arch}: the file has more layers than the architecture; check --arch");
            }
            if (_fused.Count > 0)
                notes.Add($"the exporter folded BatchNormalization into the preceding Conv for {_fused.Count} layer(s) ({_fused[0]}{(_fused.Count > 1 ? ", …" : "")}): " +
                    "the convs carry the folded weights and each BN is an exact identity (γ = 1, β = the conv bias, mean 0, var + eps = 1)");
            if (_epsAdjusted.Count > 0)
                notes.Add($"{_epsAdjusted.Count} BatchNormalization layer(s) use another epsilon than SpikeSharp's 1e-5 ({_epsAdjusted[0]}{(_epsAdjusted.Count > 1 ? ", …" : "")}): " +
                    "running_var was shifted by the difference so that var + eps, and the outputs, stay the same");
            if (_maxPools.Count > 0)
                notes.Add($"{_maxPools.Count} MaxPool node(s) ({_maxPools[0]}{(_maxPools.Count > 1 ? ", …" : "")}) were imported as {spec.Name}'s average pooling: " +
                    "the ANN now computes differently, and SNN conversion refuses max pooling (methods.md §0); fine-tune with average pooling");
        }
    }
}
