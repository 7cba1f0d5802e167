using SpikeSharp.Interop.Onnx;
using SpikeSharp.Interop.Pth;
using SpikeSharp.Models;
using SpikeSharp.Nn;
using SpikeSharp.Tensors;

namespace SpikeSharp.Interop;

/// <summary>
/// Tensors read from a foreign model file, named like the built-in models' state dict (spec §9), except that the
/// activation threshold may still carry the reference codes' names (<c>up</c>, <c>thresh</c>).
/// </summary>
/// <param name="Levels">QCFS levels L when the file records them (ONNX constants); null when it cannot (a state dict).</param>
/// <param name="Notes">What the reader assumed or dropped, shown to the user.</param>
public sealed record ImportedTensors(string Path, string Format, IReadOnlyDictionary<string, Tensor> Tensors, int? Levels = null,
    IReadOnlyList<string>? Notes = null);

/// <summary>
/// Brings a model trained elsewhere (ONNX, a PyTorch <c>.pth</c> state dict, or safetensors) into a built-in
/// architecture: reads the file, renames the reference codes' λ keys, infers the activation and loads strictly,
/// reporting missing and unexpected keys as PyTorch's <c>load_state_dict(strict=True)</c> does.
/// </summary>
public static class ModelImport
{
    /// <summary>Names the QCFS/SRP/COS reference codes give the activation threshold λ.</summary>
    public static readonly string[] LambdaAliases = ["up", "thresh"];

    /// <summary>Reads a model file; the format comes from the extension (.onnx, .pth/.pt, .safetensors). For a graph
    /// spec the tensors are keyed like the graph's nodes; an ONNX file is then read with <see cref="ReadGraph"/>.</summary>
    public static ImportedTensors Read(string path, ModelSpec spec)
    {
        if (!File.Exists(path)) throw new InvalidFileException(path, "file not found");
        return Path.GetExtension(path).ToLowerInvariant() switch
        {
            ".onnx" when spec.Graph != null => throw new SpikeSharpException($"{path}: an ONNX file carries its own graph; import it without --graph and --arch"),
            ".onnx" => OnnxImporter.Read(path, spec),
            ".pth" or ".pt" => FromPth(PthReader.Read(path)),
            ".safetensors" => new ImportedTensors(path, "safetensors", Safetensors.Read(path).Tensors),
            var ext => throw new InvalidFileException(path, $"unknown model format '{ext}'; expected .onnx, .pth, .pt or .safetensors"),
        };
    }

    /// <summary>An ONNX file as a graph of its own (no architecture given), and the spec that builds it.</summary>
    public static (ModelSpec Spec, ImportedTensors Source) ReadGraph(string path, int channels, int height, int width)
    {
        if (!File.Exists(path)) throw new InvalidFileException(path, "file not found");
        if (!Path.GetExtension(path).Equals(".onnx", StringComparison.OrdinalIgnoreCase))
            throw new SpikeSharpException($"{path}: a {Path.GetExtension(path)} state dict has no topology; give --arch NAME (a built-in) or --graph FILE (the network as graph JSON)");
        var (graph, source) = OnnxGraphImport.Read(path, channels, height, width);
        return (ModelSpec.For(graph), source);
    }

    private static ImportedTensors FromPth(PthFile pth) => new(pth.Path, "pth", pth.Tensors, Notes: pth.Notes);

    /// <summary>The source's tensors under the built-in models' names: λ aliases become <c>lambda</c>, BN's
    /// <c>num_batches_tracked</c> counters are dropped.</summary>
    public static Dictionary<string, Tensor> Canonicalize(IReadOnlyDictionary<string, Tensor> tensors)
    {
        var result = new Dictionary<string, Tensor>();
        foreach (var (key, value) in tensors)
        {
            int dot = key.LastIndexOf('.');
            string leaf = key[(dot + 1)..];
            if (leaf == "num_batches_tracked") continue;
            string name = LambdaAliases.Contains(leaf) ? key[..(dot + 1)] + "lambda" : key;
            if (!result.TryAdd(name, value))
                throw new SpikeSharpException($"both '{key}' and another alias map to '{name}'");
        }
        return result;
    }

    /// <summary>True when the tensors hold activation thresholds, i.e. the model was trained with clip/QCFS.</summary>
    public static bool HasThresholds(IReadOnlyDictionary<string, Tensor> canonical) => canonical.Keys.Any(k => k.EndsWith(".lambda", StringComparison.Ordinal));

    /// <summary>
    /// The activation the imported model runs with: QCFS with L from the file or <paramref name="levels"/> when it has
    /// thresholds, else ReLU. A state dict cannot say L, so the user must.
    /// </summary>
    public static ActivationSpec InferActivation(ImportedTensors source, IReadOnlyDictionary<string, Tensor> canonical, int? levels)
    {
        if (!HasThresholds(canonical))
        {
            if (levels is not null) throw new SpikeSharpException($"{source.Path}: --levels was given but the model has no activation thresholds (up/thresh); it is a plain ReLU network");
            return ActivationSpec.Relu;
        }
        if (levels is { } l && source.Levels is { } fileL && l != fileL)
            throw new SpikeSharpException($"{source.Path}: --levels {l} contradicts L = {fileL} recovered from the file");
        int resolved = levels ?? source.Levels ?? throw new SpikeSharpException(
            $"{source.Path}: the model has QCFS thresholds but a {source.Format} file does not record the levels L; give --levels L (the reference codes use 4 or 8)");
        if (resolved < 1) throw new SpikeSharpException($"--levels must be ≥ 1, got {resolved}");
        return new ActivationSpec("qcfs", resolved);
    }

    private static ActivationSpec? GraphActivation(ImportedTensors source, int? levels)
    {
        if (levels is not { } l) return null;
        if (l < 1) throw new SpikeSharpException($"--levels must be ≥ 1, got {l}");
        if (source.Levels is { } fileL && fileL != l) throw new SpikeSharpException($"{source.Path}: --levels {l} contradicts L = {fileL} recovered from the file");
        return new ActivationSpec("qcfs", l);
    }

    /// <summary>Builds <paramref name="spec"/> with the activation inferred from the source and loads the tensors
    /// strictly; the error lists every missing, unexpected and mis-shaped key.</summary>
    public static (Module Model, ModelSpec Spec) Build(ModelSpec spec, ImportedTensors source, int? levels)
    {
        var canonical = Canonicalize(source.Tensors);
        // A graph's activation nodes say their own kind (and an ONNX file their λ and L); --levels makes them all QCFS L.
        spec = spec with { Activation = spec.Graph != null ? GraphActivation(source, levels) : InferActivation(source, canonical, levels) };
        spec.Validate();
        var model = ModelFactory.Create(spec);
        try { model.LoadStateDict(canonical); }
        catch (SpikeSharpException e) { throw new InvalidFileException(source.Path, $"{e.Message} (architecture {spec.Name})"); }
        return (model, spec);
    }
}
