using SpikeSharp.Models;

namespace SpikeSharp.Interop.Onnx;

/// <summary>Reads an ONNX graph exported from PyTorch and maps its weights onto a built-in architecture.</summary>
public static class OnnxImporter
{
    public static ImportedTensors Read(string path, ModelSpec spec) =>
        throw new SpikeSharpException($"{path}: ONNX import is not implemented yet");
}
