// Turns an ImageDataset into shuffled, augmented batches prepared on one background thread while the caller computes.
using System.Collections.Concurrent;
using System.Runtime.ExceptionServices;
using SpikeSharp.Tensors;

namespace SpikeSharp.Data;

/// <summary>
/// One batch: <c>Images: [B,C,H,W]</c> normalized float32, <c>Labels: [B]</c>. B is the loader's batch size,
/// except possibly for the last batch of an epoch. The loader reuses the arrays: a batch stays valid until the
/// caller asks for the next one (or ends the epoch); copy it to keep it longer.
/// </summary>
public sealed record Batch(Tensor Images, int[] Labels)
{
    /// <summary>Dataset index of each image, [B].</summary>
    public int[] Indices { get; init; } = [];

    /// <summary>Number of images B.</summary>
    public int Count => Labels.Length;
}

/// <summary>
/// Batches an <see cref="ImageDataset"/> through a <see cref="TransformSpec"/>. Each <see cref="Epoch"/> decodes
/// and augments on one background thread, at most <see cref="Prefetch"/> finished batches ahead of the caller.
/// The sample order depends only on (seed, epoch) and each sample's augmentation only on (seed, epoch, dataset
/// index), so results are identical whatever the timing, batch size or machine. Errors on the background thread
/// are rethrown to the caller with their original type; disposing the loader (or leaving a <c>foreach</c> early)
/// stops the thread.
/// </summary>
public sealed class DataLoader : IDisposable
{
    /// <summary>Finished batches the background thread may hold ready ahead of the caller.</summary>
    public const int Prefetch = 2;

    // Distinct key paths of the random streams (see Rng.Create).
    private const ulong ShuffleStream = 1, SampleStream = 2;

    private readonly ImageDataset _data;
    private readonly TransformSpec _transform;
    private readonly bool _shuffle, _train, _dropLast;
    private readonly ulong _seed;
    private readonly object _lock = new();
    private readonly List<EpochRun> _runs = [];
    private Buffers? _spare;
    private volatile bool _disposed;

    /// <summary>Test hook run on the background thread before each sample, with its dataset index.</summary>
    internal Action<int>? BeforeSample { get; set; }

    /// <summary>Prepares a loader; the transform is validated against the dataset here, not in the background.</summary>
    /// <exception cref="SpikeSharpException">Batch size below 1, or the transform does not fit the images.</exception>
    public DataLoader(ImageDataset data, int batchSize, TransformSpec transform, bool shuffle, bool train, int seed, bool dropLast = false)
    {
        ArgumentNullException.ThrowIfNull(data);
        ArgumentNullException.ThrowIfNull(transform);
        if (batchSize <= 0) throw new SpikeSharpException($"batch size {batchSize}; expected at least 1");
        transform.Validate(data);
        _data = data;
        _transform = transform;
        _shuffle = shuffle;
        _train = train;
        _dropLast = dropLast;
        _seed = (ulong)(long)seed;
        BatchSize = batchSize;
        BatchesPerEpoch = dropLast ? data.Count / batchSize : (data.Count + batchSize - 1) / batchSize;
    }

    /// <summary>Images per full batch.</summary>
    public int BatchSize { get; }

    /// <summary>Batches in each epoch (the last one is partial unless <c>dropLast</c>).</summary>
    public int BatchesPerEpoch { get; }

    /// <summary>The dataset being batched.</summary>
    public ImageDataset Data => _data;

    /// <summary>The per-image pipeline.</summary>
    public TransformSpec Transform => _transform;

    /// <summary>
    /// The dataset indices in the order epoch <paramref name="epoch"/> visits them: a permutation from
    /// (seed, epoch) when shuffling, else 0..N−1.
    /// </summary>
    public int[] Order(int epoch)
    {
        var order = new int[_data.Count];
        for (int i = 0; i < order.Length; i++) order[i] = i;
        if (_shuffle)
        {
            var rng = Rng.Create(_seed, ShuffleStream, (ulong)(long)epoch);
            rng.Shuffle<int>(order);
        }
        return order;
    }

    /// <summary>
    /// The batches of one epoch. The background thread starts at the first <c>MoveNext</c> and stops when the
    /// enumeration ends or is disposed. Each returned <see cref="Batch"/> is valid until the next <c>MoveNext</c>.
    /// </summary>
    public IEnumerable<Batch> Epoch(int epoch)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (epoch < 0) throw new ArgumentOutOfRangeException(nameof(epoch), epoch, "expected epoch ≥ 0");
        return Run(epoch);
    }

    /// <summary>Stops any running epoch and waits for its thread; later calls to <see cref="Epoch"/> fail.</summary>
    public void Dispose()
    {
        _disposed = true;
        EpochRun[] runs;
        lock (_lock) runs = [.. _runs];
        foreach (var run in runs) run.Stop();
    }

    private IEnumerable<Batch> Run(int epoch)
    {
        var run = new EpochRun(this, epoch);
        try
        {
            while (run.Next(out var batch)) yield return batch;
        }
        finally
        {
            run.Finish();
        }
    }

    /// <summary>Batch arrays and the transform's scratch, reused from epoch to epoch.</summary>
    private sealed class Buffers
    {
        public readonly Queue<BatchBuffer> Full = new();
        public readonly BatchBuffer? Tail;
        public readonly ImageTransform Transform;

        public Buffers(DataLoader loader)
        {
            var t = loader._transform;
            Transform = new ImageTransform(t, loader._data.Channels, loader._data.Height, loader._data.Width);
            int fullBatches = loader._data.Count / loader.BatchSize;
            int batches = Math.Min(fullBatches, Prefetch + 2); // ready + being filled + held by the caller
            int tail = loader._dropLast ? 0 : loader._data.Count % loader.BatchSize;
            for (int i = 0; i < batches; i++) Full.Enqueue(new BatchBuffer(loader.BatchSize, t, isTail: false));
            if (tail > 0) Tail = new BatchBuffer(tail, t, isTail: true);
        }
    }

    private sealed class BatchBuffer
    {
        public readonly Batch Batch;
        public readonly bool IsTail;

        public BatchBuffer(int count, TransformSpec t, bool isTail)
        {
            Batch = new Batch(new Tensor(new float[count * t.Channels * t.Height * t.Width], count, t.Channels, t.Height, t.Width),
                new int[count]) { Indices = new int[count] };
            IsTail = isTail;
        }
    }

    private readonly record struct Slot(BatchBuffer? Buffer, ExceptionDispatchInfo? Error);

    /// <summary>One enumeration of one epoch: a producer thread, a bounded ready queue and a free-buffer queue.</summary>
    private sealed class EpochRun
    {
        private readonly DataLoader _loader;
        private readonly int _epoch;
        private readonly Buffers _buffers;
        private readonly BlockingCollection<Slot> _ready = new(new ConcurrentQueue<Slot>(), Prefetch);
        private readonly BlockingCollection<BatchBuffer> _free = new(new ConcurrentQueue<BatchBuffer>());
        private readonly CancellationTokenSource _cancel = new();
        private readonly Thread _thread;
        private BatchBuffer? _held;
        private int _stopped;

        public EpochRun(DataLoader loader, int epoch)
        {
            _loader = loader;
            _epoch = epoch;
            _buffers = Interlocked.Exchange(ref loader._spare, null) ?? new Buffers(loader);
            foreach (var b in _buffers.Full) _free.Add(b);
            lock (loader._lock) loader._runs.Add(this);
            _thread = new Thread(Produce) { IsBackground = true, Name = "SpikeSharp data loader" };
            _thread.Start();
        }

        /// <summary>Hands back the held buffer, then waits for the next batch; false at the end of the epoch.</summary>
        public bool Next(out Batch batch)
        {
            if (_held is { IsTail: false }) _free.Add(_held);
            _held = null;
            batch = null!;
            ObjectDisposedException.ThrowIf(_loader._disposed, _loader);
            Slot slot;
            try
            {
                if (!_ready.TryTake(out slot, Timeout.Infinite, _cancel.Token)) return false;
            }
            catch (OperationCanceledException)
            {
                throw new ObjectDisposedException(nameof(DataLoader), "the data loader was disposed during an epoch");
            }
            slot.Error?.Throw();
            _held = slot.Buffer!;
            batch = _held.Batch;
            return true;
        }

        /// <summary>Cancels the producer and waits for it; safe to call twice and from another thread.</summary>
        public void Stop()
        {
            if (Interlocked.Exchange(ref _stopped, 1) != 0) return;
            _cancel.Cancel();
            if (Thread.CurrentThread != _thread) _thread.Join();
        }

        /// <summary>Stops the producer and returns the buffers for the next epoch (called by the enumerator).</summary>
        public void Finish()
        {
            Stop();
            _thread.Join();
            lock (_loader._lock) _loader._runs.Remove(this);
            if (!_loader._disposed) _loader._spare = _buffers;
        }

        private void Produce()
        {
            var token = _cancel.Token;
            try
            {
                var data = _loader._data;
                int[] order = _loader.Order(_epoch);
                int batchSize = _loader.BatchSize, size = _buffers.Transform.OutputSize;
                bool train = _loader._train;
                var hook = _loader.BeforeSample;
                for (int b = 0; b < _loader.BatchesPerEpoch; b++)
                {
                    int start = b * batchSize, count = Math.Min(batchSize, data.Count - start);
                    var buffer = count == batchSize ? _free.Take(token) : _buffers.Tail!;
                    var batch = buffer.Batch;
                    var images = batch.Images.Data;
                    for (int k = 0; k < count; k++)
                    {
                        token.ThrowIfCancellationRequested();
                        int index = order[start + k];
                        hook?.Invoke(index);
                        var rng = Rng.Create(_loader._seed, SampleStream, (ulong)(long)_epoch, (ulong)index);
                        _buffers.Transform.Apply(data.Image(index), images.AsSpan(k * size, size), train, ref rng);
                        batch.Labels[k] = data.Labels[index];
                        batch.Indices[k] = index;
                    }
                    _ready.Add(new Slot(buffer, null), token);
                }
            }
            catch (OperationCanceledException) when (token.IsCancellationRequested)
            {
                // Stopped by the caller: nothing to report.
            }
            catch (Exception e)
            {
                try { _ready.Add(new Slot(null, ExceptionDispatchInfo.Capture(e)), token); }
                catch (OperationCanceledException) { }
            }
            finally
            {
                _ready.CompleteAdding();
            }
        }
    }
}
