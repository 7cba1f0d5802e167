using System.Runtime.CompilerServices;

namespace SpikeSharp.Tensors;

/// <summary>Per-thread scratch arrays that grow on demand and are reused across calls, so kernels allocate
/// nothing on the hot path. A slot number separates buffers that are live at the same time.</summary>
internal static class ThreadScratch
{
    [ThreadStatic] private static float[]?[]? t_slots;

    public static float[] Get(int slot, int length)
    {
        var slots = t_slots ??= new float[8][];
        var buf = slots[slot];
        if (buf == null || buf.Length < length)
        {
            buf = GC.AllocateUninitializedArray<float>(Math.Max(length, (buf?.Length ?? 0) * 5 / 4));
            slots[slot] = buf;
        }
        return buf;
    }

    /// <summary>Cleared span of the given length.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Span<float> GetCleared(int slot, int length)
    {
        var s = Get(slot, length).AsSpan(0, length);
        s.Clear();
        return s;
    }
}
