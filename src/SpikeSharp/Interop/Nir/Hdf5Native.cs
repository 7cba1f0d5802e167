using System.Runtime.InteropServices;

namespace SpikeSharp.Interop.Nir;

/// <summary>
/// The few libhdf5 (C API, 1.10 ABI: hid_t is 64-bit) entry points the NIR exporter needs, bound by P/Invoke to
/// Debian's serial build (package libhdf5-103-1). No NuGet HDF5 binding is available here, and the C API is small.
/// Predefined types (<c>H5T_NATIVE_FLOAT</c>, …) are exported as global variables (<c>H5T_NATIVE_FLOAT_g</c>) that
/// <c>H5open</c> initialises, so they are read through <see cref="NativeLibrary.GetExport"/>.
/// </summary>
internal static class Hdf5Native
{
    private const string Lib = "hdf5";

    // Debian installs the serial library outside the default search path's plain name "libhdf5.so".
    private static readonly string[] Candidates =
    [
        "libhdf5_serial.so.103", "/usr/lib/x86_64-linux-gnu/libhdf5_serial.so.103", "/usr/lib/aarch64-linux-gnu/libhdf5_serial.so.103",
        "/usr/lib/x86_64-linux-gnu/hdf5/serial/libhdf5.so.103", "libhdf5.so.103", "libhdf5_serial.so", "libhdf5.so",
    ];

    public const long P_DEFAULT = 0, S_ALL = 0;
    public const uint F_ACC_RDONLY = 0, F_ACC_TRUNC = 2;
    public const int S_SCALAR = 0, T_CSET_UTF8 = 1, T_CLASS_STRING = 3;
    public static readonly nuint T_VARIABLE = nuint.MaxValue;

    private static IntPtr _handle;
    private static readonly Lazy<(long Float, long Int64, long FileFloat, long FileInt64, long CString)> Types = new(InitTypes);

    // NOTE: .NET allows one resolver per assembly; a second native binding in SpikeSharp (e.g. CUDA) must share it.
    static Hdf5Native()
    {
        NativeLibrary.SetDllImportResolver(typeof(Hdf5Native).Assembly, (name, _, _) => name == Lib ? Handle : IntPtr.Zero);
    }

    private static IntPtr Handle
    {
        get
        {
            if (_handle != IntPtr.Zero) return _handle;
            foreach (var c in Candidates)
                if (NativeLibrary.TryLoad(c, out var h)) return _handle = h;
            throw new SpikeSharpException("libhdf5 not found (tried " + string.Join(", ", Candidates) + "); install it: apt-get install libhdf5-103-1");
        }
    }

    /// <summary>Loads the library, initialises it, and silences its default error printing (errors become exceptions).</summary>
    private static (long, long, long, long, long) InitTypes()
    {
        Check(H5open(), "H5open");
        H5Eset_auto2(0, IntPtr.Zero, IntPtr.Zero);
        long Global(string name) => Marshal.ReadInt64(NativeLibrary.GetExport(Handle, name));
        return (Global("H5T_NATIVE_FLOAT_g"), Global("H5T_NATIVE_LLONG_g"), Global("H5T_IEEE_F32LE_g"), Global("H5T_STD_I64LE_g"), Global("H5T_C_S1_g"));
    }

    /// <summary>Memory type of float32.</summary>
    public static long NativeFloat => Types.Value.Float;
    /// <summary>Memory type of int64.</summary>
    public static long NativeInt64 => Types.Value.Int64;
    /// <summary>File type of float32 (little-endian IEEE, what h5py writes for float32).</summary>
    public static long FileFloat => Types.Value.FileFloat;
    public static long FileInt64 => Types.Value.FileInt64;
    public static long CString => Types.Value.CString;

    /// <summary>Throws when an HDF5 call failed (negative id or status).</summary>
    public static long Check(long result, string what) =>
        result >= 0 ? result : throw new IOException($"HDF5 call failed: {what}");

    [DllImport(Lib)] public static extern int H5open();
    [DllImport(Lib)] public static extern int H5Eset_auto2(long estack, IntPtr func, IntPtr clientData);
    [DllImport(Lib)] public static extern long H5Fcreate([MarshalAs(UnmanagedType.LPUTF8Str)] string name, uint flags, long fcpl, long fapl);
    [DllImport(Lib)] public static extern long H5Fopen([MarshalAs(UnmanagedType.LPUTF8Str)] string name, uint flags, long fapl);
    [DllImport(Lib)] public static extern int H5Fclose(long file);
    [DllImport(Lib)] public static extern long H5Gcreate2(long loc, [MarshalAs(UnmanagedType.LPUTF8Str)] string name, long lcpl, long gcpl, long gapl);
    [DllImport(Lib)] public static extern long H5Gopen2(long loc, [MarshalAs(UnmanagedType.LPUTF8Str)] string name, long gapl);
    [DllImport(Lib)] public static extern int H5Gclose(long group);
    [DllImport(Lib)] public static extern int H5Gget_info(long group, out GroupInfo info);
    [DllImport(Lib)] public static extern long H5Lget_name_by_idx(long loc, [MarshalAs(UnmanagedType.LPUTF8Str)] string group, int indexType, int order, ulong n, byte[]? name, nuint size, long lapl);
    [DllImport(Lib)] public static extern int H5Lexists(long loc, [MarshalAs(UnmanagedType.LPUTF8Str)] string name, long lapl);
    [DllImport(Lib)] public static extern long H5Screate(int type);
    [DllImport(Lib)] public static extern long H5Screate_simple(int rank, ulong[] dims, ulong[]? maxDims);
    [DllImport(Lib)] public static extern int H5Sget_simple_extent_ndims(long space);
    [DllImport(Lib)] public static extern int H5Sget_simple_extent_dims(long space, ulong[] dims, ulong[]? maxDims);
    [DllImport(Lib)] public static extern int H5Sclose(long space);
    [DllImport(Lib)] public static extern long H5Dcreate2(long loc, [MarshalAs(UnmanagedType.LPUTF8Str)] string name, long type, long space, long lcpl, long dcpl, long dapl);
    [DllImport(Lib)] public static extern long H5Dopen2(long loc, [MarshalAs(UnmanagedType.LPUTF8Str)] string name, long dapl);
    [DllImport(Lib)] public static extern unsafe int H5Dwrite(long dataset, long memType, long memSpace, long fileSpace, long xfer, void* buffer);
    [DllImport(Lib)] public static extern unsafe int H5Dread(long dataset, long memType, long memSpace, long fileSpace, long xfer, void* buffer);
    [DllImport(Lib)] public static extern unsafe int H5Dvlen_reclaim(long type, long space, long xfer, void* buffer);
    [DllImport(Lib)] public static extern long H5Dget_space(long dataset);
    [DllImport(Lib)] public static extern long H5Dget_type(long dataset);
    [DllImport(Lib)] public static extern int H5Dclose(long dataset);
    [DllImport(Lib)] public static extern long H5Tcopy(long type);
    [DllImport(Lib)] public static extern int H5Tset_size(long type, nuint size);
    [DllImport(Lib)] public static extern int H5Tset_cset(long type, int cset);
    [DllImport(Lib)] public static extern int H5Tget_class(long type);
    [DllImport(Lib)] public static extern int H5Tis_variable_str(long type);
    [DllImport(Lib)] public static extern int H5Tclose(long type);

    /// <summary>H5G_info_t (1.10): storage type, link count, max creation order, mounted flag.</summary>
    [StructLayout(LayoutKind.Sequential)]
    public struct GroupInfo
    {
        public int StorageType;
        public ulong LinkCount;
        public long MaxCreationOrder;
        public byte Mounted;
    }

    /// <summary>True when the library can be loaded (tests and the CLI use it to explain what to install).</summary>
    public static bool IsAvailable()
    {
        try { _ = Types.Value; return true; }
        catch (SpikeSharpException) { return false; }
        catch (DllNotFoundException) { return false; }
    }
}
