using PureHDF;

namespace SpikeSharp.Interop.Nir;

/// <summary>
/// Builds an HDF5 file in memory and writes it in one call, with PureHDF (managed code, no libhdf5): groups and
/// contiguous datasets of float32, int64 and variable-length UTF-8 strings (what h5py's <c>string_dtype()</c> reads),
/// addressed by '/'-separated paths from the root. A dataset's parent group must have been created first.
/// </summary>
public sealed class Hdf5Writer
{
    private readonly H5File _root = new();

    public void CreateGroup(string path)
    {
        var (parent, name) = Parent(path);
        parent.Add(name, new H5Group());
    }

    /// <summary>Adds a float32 dataset; an empty shape writes a scalar.</summary>
    public void WriteFloats(string path, ReadOnlySpan<float> data, params int[] shape) => Add(path, data.ToArray(), shape);

    /// <summary>Adds an int64 dataset; an empty shape writes a scalar.</summary>
    public void WriteInt64s(string path, ReadOnlySpan<long> data, params int[] shape) => Add(path, data.ToArray(), shape);

    public void WriteString(string path, string value) => WriteStrings(path, [value]);

    /// <summary>Adds variable-length UTF-8 strings; an empty shape writes one scalar string.</summary>
    public void WriteStrings(string path, string[] values, params int[] shape) => Add(path, values, shape);

    /// <summary>Writes everything added so far to <paramref name="path"/>, replacing any file there.</summary>
    public void Save(string path)
    {
        // Contiguous layout for every dataset, as libhdf5's defaults (and nir's h5py writer) give; PureHDF would make
        // small ones compact.
        try { _root.Write(path, new H5WriteOptions { PreferCompactDatasetLayout = false }); }
        catch (Exception e) when (e is not IOException and not UnauthorizedAccessException)
        { throw new IOException($"cannot write HDF5 file '{path}': {e.Message}", e); }
    }

    private void Add<T>(string path, T[] data, int[] shape)
    {
        long expected = shape.Aggregate(1L, (a, d) => a * d);
        if (expected != data.Length) throw new ArgumentException($"'{path}': {data.Length} values for shape [{string.Join(",", shape)}]");
        var (parent, name) = Parent(path);
        // A bare value is a scalar dataspace; an array with fileDims keeps the requested rank. PureHDF writes one
        // dataset per object and hard-links repeats, so every scalar string gets its own instance (interned literals
        // such as "IF" would otherwise become one dataset linked from many nodes).
        object value = shape.Length == 0 ? (data[0] is string s ? new string(s.AsSpan()) : data[0]!)
            : new H5Dataset(data, fileDims: shape.Select(d => (ulong)d).ToArray());
        parent.Add(name, value);
    }

    private (H5Group Parent, string Name) Parent(string path)
    {
        var parts = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        if (parts.Length == 0) throw new ArgumentException("an HDF5 object needs a name", nameof(path));
        H5Group group = _root;
        foreach (var part in parts[..^1])
            group = group.TryGetValue(part, out var child) && child is H5Group g
                ? g : throw new ArgumentException($"'{path}': group '{part}' has not been created");
        if (group.ContainsKey(parts[^1])) throw new ArgumentException($"'{path}' already exists");
        return (group, parts[^1]);
    }
}
