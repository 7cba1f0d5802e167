using SpikeSharp.Tensors;

namespace SpikeSharp.Interop.Pth;

/// <summary>Reads <c>torch.save(model.state_dict())</c> files: a zip archive holding a pickle and raw storages.</summary>
public static class PthReader
{
    public static IReadOnlyDictionary<string, Tensor> ReadStateDict(string path) =>
        throw new SpikeSharpException($"{path}: .pth import is not implemented yet");
}
