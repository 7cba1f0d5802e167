using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using SpikeSharp.Models;
using SpikeSharp.Nn;
using SpikeSharp.Tensors;

namespace SpikeSharp.Interop;

/// <summary>Where a model's data came from and how inputs are normalized (model.json "data").</summary>
public sealed record DataInfo(string Dataset, float[] Mean, float[] Std);

/// <summary>
/// A trained model on disk: <c>model.safetensors</c> (the state dict) and <c>model.json</c> (architecture, input
/// shape, activation with L and λ per layer, normalization, training recipe and metrics). Saving is atomic per file.
/// </summary>
public sealed class Checkpoint
{
    /// <summary>2: a graph model's model.json carries its graph. Version 1 files (built-in models) still load.</summary>
    public const int FormatVersion = 2;

    public ModelSpec Spec { get; }
    public DataInfo Data { get; }
    /// <summary>Free-form training recipe and metrics, stored as given.</summary>
    public JsonObject Extra { get; }
    public Module Model { get; }

    public Checkpoint(ModelSpec spec, DataInfo data, Module model, JsonObject? extra = null)
    {
        (Spec, Data, Model, Extra) = (spec, data, model, extra ?? new JsonObject());
    }

    public void Save(string dir) => CheckpointFiles.Save(dir, Model.StateDict(), ToJson().ToJsonString(new JsonSerializerOptions { WriteIndented = true }));

    /// <summary>Loads and rebuilds the model; errors name the directory and the field that is wrong.</summary>
    public static Checkpoint Load(string dir)
    {
        var (state, json) = CheckpointFiles.Load(dir);
        var (spec, data, extra) = ParseModelJson(json, Path.Combine(dir, CheckpointFiles.ModelJsonFileName));
        var model = ModelFactory.Create(spec);
        try { model.LoadStateDict(state); }
        catch (SpikeSharpException e) { throw new InvalidFileException(Path.Combine(dir, CheckpointFiles.TensorsFileName), $"{e.Message} (architecture {spec.Name} from model.json)"); }
        return new Checkpoint(spec, data, model, extra);
    }

    /// <summary>Parses and validates the text of a model.json (architecture within <see cref="ModelSpec"/>'s limits,
    /// activation, normalization) without building the model; <paramref name="path"/> names it in messages.</summary>
    /// <exception cref="InvalidFileException">Malformed JSON, a missing or mistyped field, or values out of range.</exception>
    public static (ModelSpec Spec, DataInfo Data, JsonObject? Extra) ParseModelJson(ReadOnlySpan<byte> utf8, string path)
    {
        string json;
        try { json = StrictUtf8.GetString(utf8); }
        catch (DecoderFallbackException e) { throw new InvalidFileException(path, "is not valid UTF-8; expected a UTF-8 JSON model description", e); }
        return ParseModelJson(json, path);
    }

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <inheritdoc cref="ParseModelJson(ReadOnlySpan{byte}, string)"/>
    public static (ModelSpec Spec, DataInfo Data, JsonObject? Extra) ParseModelJson(string json, string path)
    {
        try
        {
            var root = JsonNode.Parse(json) as JsonObject ?? throw new InvalidFileException(path, "expected a JSON object");
            var (spec, data) = Parse(root, path);
            return (spec, data, (root["extra"] as JsonObject)?.DeepClone() as JsonObject);
        }
        catch (JsonException e) { throw new InvalidFileException(path, $"invalid JSON: {e.Message}", e); }
        catch (Exception e) when (e is InvalidOperationException or FormatException or ArgumentException or OverflowException)
        {
            // JsonNode throws these for duplicate keys, values of the wrong kind and numbers out of range.
            throw new InvalidFileException(path, $"malformed model description: {e.Message}", e);
        }
    }

    public JsonObject ToJson()
    {
        var act = Spec.ActivationOrDefault;
        var lambdas = new JsonObject();
        foreach (var (name, m) in Model.NamedModules())
            if (m is Activation { Lambda: { } l }) lambdas[name] = l.Value.Data[0];
        var root = new JsonObject
        {
            ["format"] = "spikesharp-checkpoint",
            ["version"] = FormatVersion,
            ["model"] = new JsonObject
            {
                ["name"] = Spec.Name,
                ["input_shape"] = new JsonArray(Spec.InChannels, Spec.Height, Spec.Width),
                ["classes"] = Spec.Classes,
                ["width"] = Spec.WidthMultiplier,
            },
            ["activation"] = new JsonObject
            {
                ["kind"] = act.Kind,
                ["levels"] = act.Levels,
                ["lambda_init"] = act.LambdaInit,
                ["lambda_weight_decay"] = act.LambdaWeightDecay,
                ["noise_p"] = act.NoiseP,
                ["lambda"] = lambdas,
            },
            ["data"] = new JsonObject
            {
                ["dataset"] = Data.Dataset,
                ["mean"] = new JsonArray(Data.Mean.Select(v => (JsonNode?)v).ToArray()),
                ["std"] = new JsonArray(Data.Std.Select(v => (JsonNode?)v).ToArray()),
            },
            ["extra"] = Extra.DeepClone(),
        };
        if (Spec.Graph is { } graph)
        {
            root["graph"] = graph.ToJson();
            // Whether the activation above replaced every activation node (a training recipe) or only summarizes them.
            root["activation"]!["applies_to_graph"] = Spec.Activation != null;
        }
        return root;
    }

    private static (ModelSpec, DataInfo) Parse(JsonObject root, string path)
    {
        T Get<T>(JsonNode? node, string field)
        {
            try { return node is null ? throw new InvalidFileException(path, $"missing field '{field}'") : node.GetValue<T>(); }
            catch (Exception e) when (e is InvalidOperationException or FormatException)
            { throw new InvalidFileException(path, $"field '{field}' has the wrong type; expected {typeof(T).Name}"); }
        }
        int version = Get<int>(root["version"], "version");
        if (version > FormatVersion) throw new InvalidFileException(path, $"checkpoint format version {version} is newer than this SpikeSharp reads ({FormatVersion})");
        var model = root["model"] as JsonObject ?? throw new InvalidFileException(path, "missing object 'model'");
        var shape = model["input_shape"] as JsonArray;
        if (shape is not { Count: 3 }) throw new InvalidFileException(path, "field 'model.input_shape' must be [C, H, W]");
        var actNode = root["activation"] as JsonObject ?? throw new InvalidFileException(path, "missing object 'activation'");
        var act = new ActivationSpec(Get<string>(actNode["kind"], "activation.kind"), Get<int>(actNode["levels"], "activation.levels"),
            Get<float>(actNode["lambda_init"], "activation.lambda_init"),
            actNode["lambda_weight_decay"] is { } lwd ? Get<bool>(lwd, "activation.lambda_weight_decay") : true,
            actNode["noise_p"] is { } np ? Get<float>(np, "activation.noise_p") : new ActivationSpec().NoiseP);
        var spec = new ModelSpec(Get<string>(model["name"], "model.name"), Get<int>(shape[0], "model.input_shape[0]"),
            Get<int>(shape[1], "model.input_shape[1]"), Get<int>(shape[2], "model.input_shape[2]"), Get<int>(model["classes"], "model.classes"),
            model["width"] is { } width ? Get<float>(width, "model.width") : 1f, act);
        if (root["graph"] is { } graphNode)
        {
            var graph = Graphs.Graph.Parse(graphNode as JsonObject ?? throw new InvalidFileException(path, "field 'graph' must be an object"), path);
            bool applies = actNode["applies_to_graph"] is { } a && Get<bool>(a, "activation.applies_to_graph");
            spec = spec with { Graph = graph, Activation = applies ? act : null };
        }
        try { spec.Validate(); }
        catch (SpikeSharpException e) { throw new InvalidFileException(path, e.Message); }
        var dataNode = root["data"] as JsonObject ?? throw new InvalidFileException(path, "missing object 'data'");
        float[] Floats(string field) => (dataNode[field] as JsonArray ?? throw new InvalidFileException(path, $"missing array 'data.{field}'"))
            .Select((v, i) => Get<float>(v, $"data.{field}[{i}]")).ToArray();
        var data = new DataInfo(Get<string>(dataNode["dataset"], "data.dataset"), Floats("mean"), Floats("std"));
        if (data.Mean.Length != data.Std.Length || (data.Mean.Length != 1 && data.Mean.Length != spec.InChannels) || data.Std.Any(s => !(s > 0)))
            throw new InvalidFileException(path, $"data.mean/std must have {(spec.InChannels == 1 ? "1 entry" : $"1 or {spec.InChannels} entries")} each, with std > 0");
        return (spec, data);
    }
}
