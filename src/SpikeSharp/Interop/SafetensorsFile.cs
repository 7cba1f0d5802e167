// The contents of one safetensors file as read by Safetensors.Read: float32 tensors, metadata, stored dtypes.
using SpikeSharp.Tensors;

namespace SpikeSharp.Interop;

/// <summary>The tensors and metadata of a safetensors file, as returned by <see cref="Safetensors.Read(string)"/>.</summary>
/// <param name="Path">The file they were read from (used in error messages).</param>
/// <param name="Tensors">Every tensor converted to float32, in the order their data appears in the file.</param>
/// <param name="Metadata">The <c>__metadata__</c> string map, in header order; empty when the file has none.</param>
/// <param name="StoredDTypes">The dtype each tensor had in the file (<c>F32</c>, <c>F16</c>, <c>I64</c>, …), keyed like
/// <see cref="Tensors"/>, so callers can tell when a value was converted.</param>
public sealed record SafetensorsFile(
    string Path,
    IReadOnlyDictionary<string, Tensor> Tensors,
    IReadOnlyDictionary<string, string> Metadata,
    IReadOnlyDictionary<string, string> StoredDTypes)
{
    /// <summary>The tensor called <paramref name="name"/>; an <see cref="InvalidFileException"/> naming the file and
    /// the tensors it does hold when there is none.</summary>
    public Tensor Get(string name) =>
        Tensors.TryGetValue(name, out var t)
            ? t
            : throw new InvalidFileException(Path, $"has no tensor '{name}'; it holds {(Tensors.Count == 0 ? "none" : string.Join(", ", Tensors.Keys))}");
}
