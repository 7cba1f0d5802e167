namespace SpikeSharp.Tensors;

/// <summary>
/// Work done on one output image of a convolution right after the kernel wrote it, while it is still in cache: SNN
/// inference applies eval-mode BN, the residual add and the IF neuron this way instead of in three more passes over
/// memory. Rows form sequences: row = step·(N / <see cref="Steps"/>) + item (layer-major [T·B, …] with item = b), and
/// every kernel runs one item's rows in step order on one worker, so state carried from step to step needs no locks.
/// </summary>
public interface IConvEpilogue
{
    /// <summary>Steps per sequence; N must be a multiple of it.</summary>
    int Steps { get; }

    /// <summary>Profiler label of the fused op ("conv fwd + bn + if").</summary>
    string Name { get; }

    /// <summary>Processes output image <paramref name="row"/> ([Cout, OutH, OutW]) in place.</summary>
    void Apply(Span<float> image, int row, int worker);
}

internal static class ConvEpilogueLoop
{
    /// <summary>Runs <paramref name="image"/>(n) for every output image n in [0, N) over the pool, each followed by the
    /// epilogue; with an epilogue a work item is one sequence (its rows in step order).</summary>
    public static void ForImages(WorkerPool pool, int n, float[] y, int outImage, IConvEpilogue? epilogue, Action<int> image)
    {
        if (epilogue == null)
        {
            pool.For(n, (row, _) => image(row));
            return;
        }
        int items = Items(n, epilogue);
        pool.For(items, (item, worker) =>
        {
            for (int t = 0; t < epilogue.Steps; t++)
            {
                int row = t * items + item;
                image(row);
                epilogue.Apply(y.AsSpan(row * outImage, outImage), row, worker);
            }
        });
    }

    /// <summary>The epilogue alone, over an output computed without it (kernels that work on groups of images).</summary>
    public static void Apply(WorkerPool pool, int n, float[] y, int outImage, IConvEpilogue epilogue) =>
        ForImages(pool, n, y, outImage, epilogue, static _ => { });

    private static int Items(int n, IConvEpilogue epilogue)
    {
        if (epilogue.Steps <= 0 || n % epilogue.Steps != 0)
            throw new ArgumentException($"convolution epilogue '{epilogue.Name}': {n} output rows are not a multiple of {epilogue.Steps} steps");
        return n / epilogue.Steps;
    }
}
