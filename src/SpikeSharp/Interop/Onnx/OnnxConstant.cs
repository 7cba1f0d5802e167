using SpikeSharp.Interop.Onnx.Proto;

namespace SpikeSharp.Interop.Onnx;

/// <summary>
/// A constant of an ONNX graph (initializer, <c>Constant</c> node, or its <c>Identity</c>) decoded to float32 or int64.
/// Decoding checks the element count implied by <c>dims</c> against the data actually present before allocating, so a
/// forged shape cannot make the importer allocate more than the file holds.
/// </summary>
internal sealed class OnnxConstant
{
    public string Name { get; }
    public long[] Dims { get; }
    /// <summary>The values as float32 (float, double and integer tensors alike).</summary>
    public float[] Floats { get; }
    /// <summary>The values as int64 for integer tensors (shape and index operands); null for float tensors.</summary>
    public long[]? Ints { get; }

    public int Count => Floats.Length;

    private OnnxConstant(string name, long[] dims, float[] floats, long[]? ints) => (Name, Dims, Floats, Ints) = (name, dims, floats, ints);

    public static OnnxConstant FromFloats(string name, long[] dims, float[] values) => new(name, dims, values, null);

    public static OnnxConstant FromInts(string name, long[] dims, long[] values) => new(name, dims, Array.ConvertAll(values, v => (float)v), values);

    /// <summary>Dims as ints, for building a <see cref="Tensors.Tensor"/>.</summary>
    public int[] IntDims => Array.ConvertAll(Dims, d => (int)d);

    public string ShapeString => "[" + string.Join(",", Dims) + "]";

    public static OnnxConstant Decode(TensorProto t, string path, string what)
    {
        string name = t.HasName ? t.Name : what;
        if (t.HasDataLocation && t.DataLocation == TensorProto.Types.DataLocation.External || t.ExternalData.Count > 0)
            throw new InvalidFileException(path, $"tensor '{name}' keeps its data in an external file; re-export with the weights inside the .onnx (save_as_external_data=False)");
        if (t.Segment is not null) throw new InvalidFileException(path, $"tensor '{name}' is segmented; not supported");
        var dims = t.Dims.ToArray();
        long count = 1;
        foreach (long d in dims)
        {
            if (d < 0) throw new InvalidFileException(path, $"tensor '{name}' has a negative dimension {d}");
            count = d == 0 ? 0 : (count > int.MaxValue / d ? int.MaxValue + 1L : count * d);
        }
        if (count > int.MaxValue) throw new InvalidFileException(path, $"tensor '{name}' with shape [{string.Join(",", dims)}] is too large");
        int n = (int)count;
        var type = (TensorProto.Types.DataType)t.DataType;
        var raw = t.HasRawData ? t.RawData.Span : ReadOnlySpan<byte>.Empty;
        switch (type)
        {
            case TensorProto.Types.DataType.Float:
                if (t.HasRawData) return FromFloats(name, dims, System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(CheckRaw(raw, n, 4, name, path)).ToArray());
                CheckCount(t.FloatData.Count, n, name, path, "float_data");
                return FromFloats(name, dims, t.FloatData.ToArray());
            case TensorProto.Types.DataType.Double:
                if (t.HasRawData) return FromFloats(name, dims, Array.ConvertAll(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, double>(CheckRaw(raw, n, 8, name, path)).ToArray(), v => (float)v));
                CheckCount(t.DoubleData.Count, n, name, path, "double_data");
                return FromFloats(name, dims, t.DoubleData.Select(v => (float)v).ToArray());
            case TensorProto.Types.DataType.Int64:
                if (t.HasRawData) return FromInts(name, dims, System.Runtime.InteropServices.MemoryMarshal.Cast<byte, long>(CheckRaw(raw, n, 8, name, path)).ToArray());
                CheckCount(t.Int64Data.Count, n, name, path, "int64_data");
                return FromInts(name, dims, t.Int64Data.ToArray());
            case TensorProto.Types.DataType.Int32:
                if (t.HasRawData) return FromInts(name, dims, Array.ConvertAll(System.Runtime.InteropServices.MemoryMarshal.Cast<byte, int>(CheckRaw(raw, n, 4, name, path)).ToArray(), v => (long)v));
                CheckCount(t.Int32Data.Count, n, name, path, "int32_data");
                return FromInts(name, dims, t.Int32Data.Select(v => (long)v).ToArray());
            default:
                throw new InvalidFileException(path, $"tensor '{name}' has data type {type}; the importer reads float32, float64, int32 and int64");
        }
    }

    private static ReadOnlySpan<byte> CheckRaw(ReadOnlySpan<byte> raw, int n, int size, string name, string path)
    {
        if (raw.Length != (long)n * size)
            throw new InvalidFileException(path, $"tensor '{name}' has {raw.Length} bytes of raw_data; its shape needs {(long)n * size}");
        if (!BitConverter.IsLittleEndian) throw new SpikeSharpException("ONNX raw_data is little-endian; big-endian machines are not supported");
        return raw;
    }

    private static void CheckCount(int have, int n, string name, string path, string field)
    {
        if (have != n) throw new InvalidFileException(path, $"tensor '{name}' has {have} values in {field}; its shape needs {n}");
    }
}
