namespace SpikeSharp.Tensors;

/// <summary>
/// Reuses the large arrays of activations and gradients across training or inference steps. While an arena is
/// active on a thread, <see cref="Tensor.Scratch(int[])"/> takes arrays from its free lists (keyed by length); when the
/// scope ends, every array rented in it goes back. Fresh arrays are expensive here: the OS zero-fills each new page
/// (measured: 12 ms to allocate and touch 8 MB, 0.1 ms to refill it), and a ResNet-20 step touches ~600 MB.
/// NOTE: a tensor made inside a scope is valid only until the scope ends; copy what must outlive it.
/// </summary>
public sealed class TensorArena
{
    [ThreadStatic] private static TensorArena? t_active;

    private readonly Dictionary<int, Stack<float[]>> _free = new();
    private readonly List<float[]> _rented = new();

    /// <summary>The arena active on this thread, if any.</summary>
    public static TensorArena? Active => t_active;

    /// <summary>Bytes currently held by the arena (free and rented).</summary>
    public long Bytes { get; private set; }

    /// <summary>Inference only: module chains hand an intermediate output back as soon as the next layer has consumed it,
    /// so peak memory is a few layers' activations instead of all of them. Off by default, because callers that keep
    /// tensors from a forward pass (recorders of ANN activations) would see them overwritten.</summary>
    public bool ReleaseIntermediates { get; set; }

    /// <summary>Makes this arena active on the calling thread until the returned scope is disposed.</summary>
    public Scope Activate()
    {
        if (t_active != null) throw new InvalidOperationException("an arena is already active on this thread");
        t_active = this;
        return new Scope(this);
    }

    internal float[] Rent(int length)
    {
        float[] a = _free.TryGetValue(length, out var stack) && stack.Count > 0
            ? stack.Pop()
            : AllocateNew(length);
        _rented.Add(a);
        return a;
    }

    /// <summary>Returns one rented array to the free lists before the scope ends (see <see cref="ReleaseIntermediates"/>).</summary>
    internal void Release(float[] a)
    {
        int i = _rented.LastIndexOf(a);
        if (i < 0) return;
        _rented.RemoveAt(i);
        if (!_free.TryGetValue(a.Length, out var stack)) _free[a.Length] = stack = new Stack<float[]>();
        stack.Push(a);
    }

    private float[] AllocateNew(int length)
    {
        Bytes += 4L * length;
        return GC.AllocateUninitializedArray<float>(length);
    }

    private void ReturnAll()
    {
        foreach (var a in _rented)
        {
            if (!_free.TryGetValue(a.Length, out var stack)) _free[a.Length] = stack = new Stack<float[]>();
            stack.Push(a);
        }
        _rented.Clear();
    }

    /// <summary>Drops all cached arrays (the memory goes back to the GC).</summary>
    public void Trim()
    {
        if (_rented.Count > 0) throw new InvalidOperationException("cannot trim an arena while its scope is active");
        _free.Clear();
        Bytes = 0;
    }

    public readonly struct Scope(TensorArena arena) : IDisposable
    {
        public void Dispose()
        {
            if (t_active != arena) return;
            arena.ReturnAll();
            t_active = null;
        }
    }
}
