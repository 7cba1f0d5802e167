namespace SpikeSharp.Tensors;

/// <summary>
/// A dense, contiguous float32 tensor in row-major (NCHW for images) order. It owns its array; views are
/// made by <see cref="Reshape"/>, which shares the array. It is a value container, not a graph node: autograd
/// wraps tensors in <c>Autograd.Variable</c>.
/// </summary>
public sealed class Tensor
{
    /// <summary>The elements, row-major. Length equals <see cref="Length"/>.</summary>
    public float[] Data { get; }

    /// <summary>The dimensions, outermost first.</summary>
    public int[] Shape { get; }

    public int Length => Data.Length;
    public int Rank => Shape.Length;

    /// <summary>Set by spiking layers whose outputs are whole multiples of one spike (bursts, graded spikes): the value
    /// of one unit spike, so that synaptic operations count every spike (|x| / unit per element). 0: each nonzero value
    /// is one event. It stays with this tensor object only: pooling or reshaping makes a tensor without it.</summary>
    public float SpikeUnit { get; set; }

    /// <summary>Set by spiking layers whose every output is 0 or this one value (IF neurons: θ), so that a convolution
    /// can run on the spikes as bits (<see cref="SpikeTableConv"/>, which checks it). 0: unknown. Like
    /// <see cref="SpikeUnit"/>, it stays with this tensor object only.</summary>
    public float SpikeAmplitude { get; set; }

    public Tensor(params int[] shape) : this(new float[CheckedCount(shape)], shape) { }

    public Tensor(float[] data, params int[] shape)
    {
        long count = CheckedCount(shape);
        if (data.Length != count)
            throw new ArgumentException($"data has {data.Length} elements but shape [{string.Join(",", shape)}] needs {count}");
        Data = data;
        Shape = (int[])shape.Clone();
    }

    public static Tensor Zeros(params int[] shape) => new(shape);

    /// <summary>A tensor for an op's output or gradient: from the active <see cref="TensorArena"/> if there is one
    /// (valid until its scope ends), else freshly allocated. Contents are unspecified unless <paramref name="clear"/>.</summary>
    public static Tensor Scratch(int[] shape, bool clear = false)
    {
        var arena = TensorArena.Active;
        if (arena == null) return clear ? new Tensor(shape) : new Tensor(GC.AllocateUninitializedArray<float>(CheckedCount(shape)), shape);
        var data = arena.Rent(CheckedCount(shape));
        if (clear) Array.Clear(data);
        return new Tensor(data, shape);
    }

    public static Tensor Scratch(params int[] shape) => Scratch(shape, clear: false);

    public static Tensor Full(float value, params int[] shape)
    {
        var t = new Tensor(shape);
        Array.Fill(t.Data, value);
        return t;
    }

    public static Tensor FromArray(float[] values) => new((float[])values.Clone(), values.Length);

    public Span<float> Span => Data;

    public int this[int dim] => Shape[dim];

    /// <summary>Element at a multi-index (slow; for tests and small tensors).</summary>
    public float this[params int[] index]
    {
        get => Data[Offset(index)];
        set => Data[Offset(index)] = value;
    }

    public Tensor Clone() => new((float[])Data.Clone(), Shape);

    /// <summary>A tensor with the same data and a new shape; one dimension may be -1 (inferred).</summary>
    public Tensor Reshape(params int[] shape)
    {
        shape = (int[])shape.Clone();
        int infer = Array.IndexOf(shape, -1);
        if (infer >= 0)
        {
            long rest = 1;
            for (int i = 0; i < shape.Length; i++) if (i != infer) rest *= shape[i];
            shape[infer] = rest == 0 ? 0 : (int)(Length / rest);
        }
        return new Tensor(Data, shape);
    }

    /// <summary>Product of dimensions from <paramref name="start"/> on.</summary>
    public int SizeFrom(int start)
    {
        int n = 1;
        for (int i = start; i < Shape.Length; i++) n *= Shape[i];
        return n;
    }

    public bool SameShape(Tensor other) => Shape.AsSpan().SequenceEqual(other.Shape);

    public string ShapeString => FormatShape(Shape);

    public static string FormatShape(ReadOnlySpan<int> shape) => "[" + string.Join(",", shape.ToArray()) + "]";

    public override string ToString() => $"Tensor{ShapeString}";

    private int Offset(int[] index)
    {
        if (index.Length != Shape.Length) throw new ArgumentException($"index rank {index.Length} != tensor rank {Shape.Length}");
        int off = 0;
        for (int i = 0; i < index.Length; i++)
        {
            if ((uint)index[i] >= (uint)Shape[i]) throw new IndexOutOfRangeException($"index {index[i]} out of range for dim {i} of {ShapeString}");
            off = off * Shape[i] + index[i];
        }
        return off;
    }

    private static int CheckedCount(int[] shape)
    {
        long n = 1;
        foreach (int d in shape)
        {
            if (d < 0) throw new ArgumentException($"negative dimension in shape {FormatShape(shape)}");
            n *= d;
            if (n > Array.MaxLength) throw new ArgumentException($"shape {FormatShape(shape)} has too many elements");
        }
        return (int)n;
    }
}
