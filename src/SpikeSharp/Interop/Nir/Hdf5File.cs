using PureHDF;
using PureHDF.VOL.Native;

namespace SpikeSharp.Interop.Nir;

/// <summary>
/// Reads an HDF5 file with PureHDF (managed code, no libhdf5): groups, and float32, int64 and variable-length string
/// datasets addressed by '/'-separated paths from the root. It exists so tests (and anyone checking a NIR file) can
/// verify what <see cref="Hdf5Writer"/> wrote without Python.
/// </summary>
public sealed class Hdf5File : IDisposable
{
    private readonly NativeFile _file;

    public string FilePath { get; }

    private Hdf5File(string path, NativeFile file) => (FilePath, _file) = (path, file);

    /// <summary>Opens an existing file read-only.</summary>
    public static Hdf5File Open(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"HDF5 file '{path}' does not exist", path);
        try { return new Hdf5File(path, H5File.OpenRead(path)); }
        catch (Exception e) when (e is not IOException and not UnauthorizedAccessException)
        { throw new InvalidFileException(path, "not an HDF5 file", e); }
    }

    public void Dispose() => _file.Dispose();

    /// <summary>True if every component of the path exists.</summary>
    public bool Exists(string path)
    {
        IH5Group group = _file;
        var parts = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        for (int i = 0; i < parts.Length; i++)
        {
            if (!group.LinkExists(parts[i])) return false;
            if (i < parts.Length - 1)
            {
                if (group.Get(parts[i]) is not IH5Group child) return false;
                group = child;
            }
        }
        return true;
    }

    /// <summary>Names of a group's members in name order ("" or "/" is the root group).</summary>
    public IReadOnlyList<string> Children(string group)
    {
        var g = group.Trim('/').Length == 0 ? _file : Get(group) as IH5Group
            ?? throw new IOException($"{FilePath}: '{group}' is not a group");
        return g.Children().Select(c => c.Name).Order(StringComparer.Ordinal).ToList();
    }

    public (float[] Data, int[] Shape) ReadFloats(string path) => Read<float>(path);

    public (long[] Data, int[] Shape) ReadInt64s(string path) => Read<long>(path);

    public string ReadString(string path)
    {
        var (values, shape) = ReadStrings(path);
        return shape.Length == 0 ? values[0] : throw new InvalidFileException(FilePath, $"'{path}' is an array of strings, expected a scalar");
    }

    /// <summary>Reads a variable-length string dataset.</summary>
    public (string[] Values, int[] Shape) ReadStrings(string path)
    {
        var ds = Dataset(path);
        if (ds.Type.Class != H5DataTypeClass.VariableLength && ds.Type.Class != H5DataTypeClass.String)
            throw new InvalidFileException(FilePath, $"'{path}' is not a string dataset");
        return (ds.Read<string[]>(), Shape(ds));
    }

    private (T[] Data, int[] Shape) Read<T>(string path) where T : unmanaged
    {
        var ds = Dataset(path);
        try { return (ds.Read<T[]>(), Shape(ds)); }
        catch (Exception e) when (e is not IOException)
        { throw new InvalidFileException(FilePath, $"'{path}' cannot be read as {typeof(T).Name}: {e.Message}", e); }
    }

    private static int[] Shape(IH5Dataset ds) =>
        ds.Space.Type == H5DataspaceType.Scalar ? [] : ds.Space.Dimensions.Select(d => checked((int)d)).ToArray();

    private IH5Dataset Dataset(string path) =>
        Get(path) as IH5Dataset ?? throw new IOException($"{FilePath}: '{path}' is not a dataset");

    private IH5Object Get(string path) =>
        Exists(path) ? _file.Get(path.Trim('/')) : throw new IOException($"{FilePath}: no object '{path}'");
}
