// Low-level checkpoint directory I/O: a state dict in model.safetensors and the model description in model.json;
// it does not interpret the JSON or build models.
using System.Text;
using System.Text.Json;
using SpikeSharp.Tensors;

namespace SpikeSharp.Interop;

/// <summary>
/// Reads and writes a checkpoint directory: <c>model.safetensors</c> (the state dict, F32, PyTorch-style keys such as
/// <c>features.0.weight</c>; loadable by Python's safetensors) and <c>model.json</c> (architecture, activation
/// settings, training recipe, normalization). Each file is replaced atomically; the pair is not (see <see cref="Save"/>).
/// </summary>
public static class CheckpointFiles
{
    /// <summary>The tensor file inside a checkpoint directory.</summary>
    public const string TensorsFileName = "model.safetensors";

    /// <summary>The model description inside a checkpoint directory.</summary>
    public const string ModelJsonFileName = "model.json";

    private const string WhatACheckpointIs = "a checkpoint directory holds model.safetensors and model.json";
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>
    /// Writes <paramref name="stateDict"/> to <c>dir/model.safetensors</c>, then <paramref name="modelJson"/> to
    /// <c>dir/model.json</c>, creating <paramref name="dir"/> if needed. Nothing is written unless the directory can be
    /// created and written to and <paramref name="modelJson"/> parses as JSON. NOTE: each file is atomic but the pair is
    /// not: a crash between the two renames leaves new tensors beside the old model.json.
    /// </summary>
    /// <exception cref="SpikeSharpException">The directory cannot be created or is not writable.</exception>
    /// <exception cref="ArgumentException"><paramref name="modelJson"/> is not valid JSON, or a tensor name is invalid.</exception>
    public static void Save(string dir, IEnumerable<KeyValuePair<string, Tensor>> stateDict, string modelJson)
    {
        ArgumentNullException.ThrowIfNull(dir);
        ArgumentNullException.ThrowIfNull(stateDict);
        ArgumentNullException.ThrowIfNull(modelJson);
        try
        {
            using var _ = JsonDocument.Parse(modelJson);
        }
        catch (JsonException e)
        {
            throw new ArgumentException($"model JSON for checkpoint '{dir}' is not valid JSON: {e.Message}", nameof(modelJson), e);
        }

        EnsureWritableDirectory(dir);
        Safetensors.Write(Path.Combine(dir, TensorsFileName), stateDict);
        AtomicFile.WriteAllText(Path.Combine(dir, ModelJsonFileName), modelJson);
    }

    /// <summary>SHA-256 (hex) of model.safetensors followed by model.json: the same for copies of one checkpoint
    /// wherever they lie, so results computed from copies (evaluation shards) can be checked to belong together.</summary>
    public static string Fingerprint(string dir)
    {
        using var sha = System.Security.Cryptography.IncrementalHash.CreateHash(System.Security.Cryptography.HashAlgorithmName.SHA256);
        foreach (var name in new[] { TensorsFileName, ModelJsonFileName })
        {
            var path = Path.Combine(dir, name);
            if (!File.Exists(path)) throw new SpikeSharpException($"{path} not found; {WhatACheckpointIs}");
            using var f = File.OpenRead(path);
            var buffer = new byte[1 << 20];
            for (int n; (n = f.Read(buffer)) > 0;) sha.AppendData(buffer, 0, n);
        }
        return Convert.ToHexStringLower(sha.GetHashAndReset());
    }

    /// <summary>Reads a checkpoint directory written by <see cref="Save"/> (or by Python, same layout): the state dict
    /// in file order (non-F32 tensors converted as <see cref="Safetensors.Read(string)"/> documents) and the model JSON text.</summary>
    /// <exception cref="SpikeSharpException">The directory or one of its two files is missing (the message names the
    /// path), or a file is malformed (an <see cref="InvalidFileException"/> naming it).</exception>
    public static (IReadOnlyDictionary<string, Tensor> state, string json) Load(string dir)
    {
        ArgumentNullException.ThrowIfNull(dir);
        if (File.Exists(dir))
            throw new SpikeSharpException($"checkpoint '{dir}' is a file, not a directory; {WhatACheckpointIs}: pass the directory that holds them");
        if (!Directory.Exists(dir))
            throw new SpikeSharpException($"checkpoint directory '{dir}' does not exist; {WhatACheckpointIs}");

        string tensorsPath = Path.Combine(dir, TensorsFileName);
        string jsonPath = Path.Combine(dir, ModelJsonFileName);
        var missing = new[] { tensorsPath, jsonPath }.Where(p => !File.Exists(p)).ToArray();
        if (missing.Length > 0)
            throw new SpikeSharpException($"checkpoint directory '{dir}' is incomplete: {string.Join(" and ", missing.Select(p => $"'{p}'"))} " +
                $"{(missing.Length == 1 ? "is" : "are")} missing; {WhatACheckpointIs}");

        string json = ReadJson(jsonPath);
        var state = Safetensors.Read(tensorsPath).Tensors;
        return (state, json);
    }

    /// <summary>Largest model.json accepted (real ones are a few KiB).</summary>
    public const long MaxModelJsonBytes = 64 << 20;

    private static string ReadJson(string path)
    {
        string text;
        try
        {
            long length = new FileInfo(path).Length;
            if (length > MaxModelJsonBytes)
                throw new InvalidFileException(path, $"is {length} bytes; expected a model description of at most {MaxModelJsonBytes} bytes");
            text = File.ReadAllText(path, StrictUtf8);
        }
        catch (DecoderFallbackException e)
        {
            throw new InvalidFileException(path, "is not valid UTF-8; expected a UTF-8 JSON model description", e);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidFileException(path, $"cannot be read: {e.Message}", e);
        }
        try
        {
            using var _ = JsonDocument.Parse(text);
        }
        catch (JsonException e)
        {
            throw new InvalidFileException(path, $"is not valid JSON: {e.Message}", e);
        }
        return text;
    }

    /// <summary>Creates <paramref name="dir"/> if needed and proves it writable with a probe file, so a failed save
    /// leaves no half-written checkpoint behind.</summary>
    private static void EnsureWritableDirectory(string dir)
    {
        if (File.Exists(dir))
            throw new SpikeSharpException($"checkpoint directory '{dir}' is an existing file; expected a directory ({WhatACheckpointIs})");
        try
        {
            Directory.CreateDirectory(dir);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            throw new SpikeSharpException($"cannot create checkpoint directory '{dir}': {e.Message}", e);
        }
        string probe = Path.Combine(dir, $".write-probe.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            using var _ = new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new SpikeSharpException($"checkpoint directory '{dir}' is not writable: {e.Message}", e);
        }
    }
}
