using System.Runtime.InteropServices;
using static SpikeSharp.Interop.Nir.Hdf5Native;

namespace SpikeSharp.Interop.Nir;

/// <summary>
/// A minimal HDF5 file over <see cref="Hdf5Native"/>: groups and contiguous datasets of float32, int64 and
/// variable-length UTF-8 strings (h5py's <c>string_dtype()</c>), addressed by '/'-separated paths from the root.
/// Writing is what NIR export needs; reading exists so tests (and anyone checking a file) can verify it without Python.
/// Every HDF5 id opened in a call is closed in that call; the file id is closed by <see cref="Dispose"/>.
/// </summary>
public sealed class Hdf5File : IDisposable
{
    private long _file;

    public string FilePath { get; }

    private Hdf5File(string path, long file) => (FilePath, _file) = (path, file);

    /// <summary>True when libhdf5 can be loaded on this machine.</summary>
    public static bool Available => IsAvailable();

    /// <summary>Creates (or truncates) a file for writing.</summary>
    public static Hdf5File Create(string path)
    {
        _ = NativeFloat; // loads and initialises the library (throws a SpikeSharpException naming the package if missing)
        long f = H5Fcreate(path, F_ACC_TRUNC, P_DEFAULT, P_DEFAULT);
        if (f < 0) throw new IOException($"cannot create HDF5 file '{path}' (is the directory writable?)");
        return new Hdf5File(path, f);
    }

    /// <summary>Opens an existing file read-only.</summary>
    public static Hdf5File Open(string path)
    {
        _ = NativeFloat;
        if (!File.Exists(path)) throw new FileNotFoundException($"HDF5 file '{path}' does not exist", path);
        long f = H5Fopen(path, F_ACC_RDONLY, P_DEFAULT);
        if (f < 0) throw new InvalidFileException(path, "not an HDF5 file");
        return new Hdf5File(path, f);
    }

    public void Dispose()
    {
        if (_file > 0) H5Fclose(_file);
        _file = 0;
    }

    private long Id => _file > 0 ? _file : throw new ObjectDisposedException(FilePath);

    private long Check(long result, string call, string path) =>
        result >= 0 ? result : throw new IOException($"{FilePath}: HDF5 {call} failed for '{path}'");

    public void CreateGroup(string path) => H5Gclose(Check(H5Gcreate2(Id, path, P_DEFAULT, P_DEFAULT, P_DEFAULT), "H5Gcreate2", path));

    /// <summary>Writes a float32 dataset; an empty shape writes a scalar.</summary>
    public unsafe void WriteFloats(string path, ReadOnlySpan<float> data, params int[] shape)
    {
        CheckLength(path, data.Length, shape);
        fixed (float* p = data) Write(path, FileFloat, NativeFloat, p, shape);
    }

    /// <summary>Writes an int64 dataset; an empty shape writes a scalar.</summary>
    public unsafe void WriteInt64s(string path, ReadOnlySpan<long> data, params int[] shape)
    {
        CheckLength(path, data.Length, shape);
        fixed (long* p = data) Write(path, FileInt64, NativeInt64, p, shape);
    }

    public void WriteString(string path, string value) => WriteStrings(path, [value]);

    /// <summary>Writes variable-length UTF-8 strings; an empty shape writes one scalar string.</summary>
    public unsafe void WriteStrings(string path, string[] values, params int[] shape)
    {
        CheckLength(path, values.Length, shape);
        var ptrs = new IntPtr[values.Length];
        long type = StringType();
        try
        {
            for (int i = 0; i < values.Length; i++) ptrs[i] = Marshal.StringToCoTaskMemUTF8(values[i]);
            fixed (IntPtr* p = ptrs) Write(path, type, type, p, shape);
        }
        finally
        {
            foreach (var ptr in ptrs) Marshal.FreeCoTaskMem(ptr);
            H5Tclose(type);
        }
    }

    private static void CheckLength(string path, int length, int[] shape)
    {
        long expected = shape.Aggregate(1L, (a, d) => a * d);
        if (expected != length) throw new ArgumentException($"'{path}': {length} values for shape [{string.Join(",", shape)}]");
    }

    private static long StringType()
    {
        long t = H5Tcopy(CString);
        if (H5Tset_size(t, T_VARIABLE) < 0 || H5Tset_cset(t, T_CSET_UTF8) < 0) { H5Tclose(t); throw new IOException("HDF5: cannot make a UTF-8 string type"); }
        return t;
    }

    private unsafe void Write(string path, long fileType, long memType, void* data, int[] shape)
    {
        long space = Check(shape.Length == 0 ? H5Screate(S_SCALAR) : H5Screate_simple(shape.Length, shape.Select(d => (ulong)d).ToArray(), null), "H5Screate", path);
        try
        {
            long ds = Check(H5Dcreate2(Id, path, fileType, space, P_DEFAULT, P_DEFAULT, P_DEFAULT), "H5Dcreate2", path);
            try { Check(H5Dwrite(ds, memType, S_ALL, S_ALL, P_DEFAULT, data), "H5Dwrite", path); }
            finally { H5Dclose(ds); }
        }
        finally { H5Sclose(space); }
    }

    // ---- reading ----

    /// <summary>True if every component of the path exists (H5Lexists needs the parents to exist).</summary>
    public bool Exists(string path)
    {
        var parts = path.Split('/', StringSplitOptions.RemoveEmptyEntries);
        for (int i = 1; i <= parts.Length; i++)
            if (H5Lexists(Id, string.Join('/', parts.Take(i)), P_DEFAULT) <= 0) return false;
        return true;
    }

    /// <summary>Names of a group's members in name order ("" or "/" is the root group).</summary>
    public IReadOnlyList<string> Children(string group)
    {
        long g = Check(H5Gopen2(Id, group.Length == 0 ? "/" : group, P_DEFAULT), "H5Gopen2", group);
        try
        {
            Check(H5Gget_info(g, out var info), "H5Gget_info", group);
            var names = new List<string>();
            for (ulong i = 0; i < info.LinkCount; i++)
            {
                long len = Check(H5Lget_name_by_idx(g, ".", 0, 0, i, null, 0, P_DEFAULT), "H5Lget_name_by_idx", group);
                var buf = new byte[len + 1];
                Check(H5Lget_name_by_idx(g, ".", 0, 0, i, buf, (nuint)buf.Length, P_DEFAULT), "H5Lget_name_by_idx", group);
                names.Add(System.Text.Encoding.UTF8.GetString(buf, 0, (int)len));
            }
            return names;
        }
        finally { H5Gclose(g); }
    }

    public unsafe (float[] Data, int[] Shape) ReadFloats(string path)
    {
        float[]? data = null;
        var shape = Read(path, n => data = new float[n], (ds, _) => { fixed (float* p = data) return H5Dread(ds, NativeFloat, S_ALL, S_ALL, P_DEFAULT, p); });
        return (data!, shape);
    }

    public unsafe (long[] Data, int[] Shape) ReadInt64s(string path)
    {
        long[]? data = null;
        var shape = Read(path, n => data = new long[n], (ds, _) => { fixed (long* p = data) return H5Dread(ds, NativeInt64, S_ALL, S_ALL, P_DEFAULT, p); });
        return (data!, shape);
    }

    public string ReadString(string path)
    {
        var (values, shape) = ReadStrings(path);
        return shape.Length == 0 ? values[0] : throw new InvalidFileException(FilePath, $"'{path}' is an array of strings, expected a scalar");
    }

    /// <summary>Reads a variable-length string dataset.</summary>
    public unsafe (string[] Values, int[] Shape) ReadStrings(string path)
    {
        IntPtr[]? ptrs = null;
        string[]? result = null;
        long type = StringType();
        try
        {
            var shape = Read(path, n => ptrs = new IntPtr[n], (ds, space) =>
            {
                long fileType = H5Dget_type(ds);
                bool isVlenString = H5Tget_class(fileType) == T_CLASS_STRING && H5Tis_variable_str(fileType) > 0;
                H5Tclose(fileType);
                if (!isVlenString) throw new InvalidFileException(FilePath, $"'{path}' is not a variable-length string dataset");
                fixed (IntPtr* p = ptrs)
                {
                    int status = H5Dread(ds, type, S_ALL, S_ALL, P_DEFAULT, p);
                    if (status < 0) return status;
                    result = ptrs!.Select(s => Marshal.PtrToStringUTF8(s) ?? "").ToArray();
                    H5Dvlen_reclaim(type, space, P_DEFAULT, p);
                    return status;
                }
            });
            return (result!, shape);
        }
        finally { H5Tclose(type); }
    }

    /// <summary>Opens a dataset, allocates for its element count, reads; returns its shape (empty for a scalar).</summary>
    private int[] Read(string path, Action<int> allocate, Func<long, long, int> read)
    {
        long ds = Check(H5Dopen2(Id, path, P_DEFAULT), "H5Dopen2", path);
        try
        {
            long space = Check(H5Dget_space(ds), "H5Dget_space", path);
            try
            {
                int rank = H5Sget_simple_extent_ndims(space);
                var dims = new ulong[Math.Max(rank, 1)];
                if (rank > 0) Check(H5Sget_simple_extent_dims(space, dims, null), "H5Sget_simple_extent_dims", path);
                var shape = dims.Take(rank).Select(d => checked((int)d)).ToArray();
                allocate(shape.Aggregate(1, (a, d) => a * d));
                Check(read(ds, space), "H5Dread", path);
                return shape;
            }
            finally { H5Sclose(space); }
        }
        finally { H5Dclose(ds); }
    }
}
