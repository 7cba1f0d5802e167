// Turns an ImageSet into shuffled, augmented batches prepared in the background while the caller computes.
using System.Collections.Concurrent;
using System.Diagnostics;
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
/// Batches an <see cref="ImageSet"/> through a <see cref="TransformSpec"/>. Each <see cref="Epoch"/> reads and
/// augments on one background thread (and, for sets that decode files, on <see cref="ImageSet.ReadWorkers"/> threads
/// per batch), at most <see cref="Prefetch"/> finished batches ahead of the caller. <see cref="Statistics"/> says how
/// fast images were read and how long the caller waited for them.
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

    private readonly ImageSet _data;
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
    public DataLoader(ImageSet data, int batchSize, TransformSpec transform, bool shuffle, bool train, int seed, bool dropLast = false)
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
    public ImageSet Data => _data;

    /// <summary>Images read, time spent reading them and time the caller waited, over every epoch so far.</summary>
    public LoaderStatistics Statistics => _stats.Snapshot(_data.ReadWorkers);

    private readonly StatisticsCounter _stats = new();

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
        /// <summary>One transform and one read buffer per reading thread.</summary>
        public readonly ConcurrentBag<(ImageTransform Transform, byte[] Scratch)> Workers = new();
        public readonly int OutputSize;
        private readonly DataLoader _loader;

        public Buffers(DataLoader loader)
        {
            _loader = loader;
            var t = loader._transform;
            OutputSize = t.Channels * t.Height * t.Width;
            int fullBatches = loader._data.Count / loader.BatchSize;
            int batches = Math.Min(fullBatches, Prefetch + 2); // ready + being filled + held by the caller
            int tail = loader._dropLast ? 0 : loader._data.Count % loader.BatchSize;
            for (int i = 0; i < batches; i++) Full.Enqueue(new BatchBuffer(loader.BatchSize, t, isTail: false));
            if (tail > 0) Tail = new BatchBuffer(tail, t, isTail: true);
        }

        public (ImageTransform Transform, byte[] Scratch) TakeWorker()
        {
            if (Workers.TryTake(out var w)) return w;
            var d = _loader._data;
            return (new ImageTransform(_loader._transform, d.Channels, d.Height, d.Width), new byte[d.ImageSize]);
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
            long waitStart = Stopwatch.GetTimestamp();
            try
            {
                bool got = _ready.TryTake(out slot, Timeout.Infinite, _cancel.Token);
                _loader._stats.AddWait(Stopwatch.GetElapsedTime(waitStart));
                if (!got) return false;
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
                int batchSize = _loader.BatchSize;
                var parallel = new ParallelOptions { MaxDegreeOfParallelism = data.ReadWorkers, CancellationToken = token };
                for (int b = 0; b < _loader.BatchesPerEpoch; b++)
                {
                    int start = b * batchSize, count = Math.Min(batchSize, data.Count - start);
                    var buffer = count == batchSize ? _free.Take(token) : _buffers.Tail!;
                    long readStart = Stopwatch.GetTimestamp();
                    if (data.ReadWorkers == 1) Fill(buffer.Batch, order, start, 0, count, token);
                    else
                    {
                        // Images are independent (each has its own random stream): a few ranges per worker balance uneven decode times.
                        int parts = Math.Min(data.ReadWorkers * 4, count);
                        try { Parallel.For(0, parts, parallel, p => Fill(buffer.Batch, order, start, p * count / parts, (p + 1) * count / parts, token)); }
                        catch (AggregateException e) { ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw(); }
                    }
                    _loader._stats.AddRead(count, Stopwatch.GetElapsedTime(readStart));
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

        /// <summary>Reads and transforms the batch positions [from, to) on the calling thread.</summary>
        private void Fill(Batch batch, int[] order, int start, int from, int to, CancellationToken token)
        {
            var data = _loader._data;
            var hook = _loader.BeforeSample;
            int size = _buffers.OutputSize;
            var images = batch.Images.Data;
            var (transform, scratch) = _buffers.TakeWorker();
            try
            {
                for (int k = from; k < to; k++)
                {
                    token.ThrowIfCancellationRequested();
                    int index = order[start + k];
                    hook?.Invoke(index);
                    var rng = Rng.Create(_loader._seed, SampleStream, (ulong)(long)_epoch, (ulong)index);
                    var image = data.Read(index, scratch, _loader._train, ref rng);
                    transform.Apply(image, images.AsSpan(k * size, size), _loader._train, ref rng);
                    batch.Labels[k] = data.Labels[index];
                    batch.Indices[k] = index;
                }
            }
            finally { _buffers.Workers.Add((transform, scratch)); }
        }
    }

    /// <summary>Thread-safe sums behind <see cref="Statistics"/>.</summary>
    private sealed class StatisticsCounter
    {
        private long _images, _readTicks, _waitTicks;

        public void AddRead(int images, TimeSpan elapsed)
        {
            Interlocked.Add(ref _images, images);
            Interlocked.Add(ref _readTicks, elapsed.Ticks);
        }

        public void AddWait(TimeSpan elapsed) => Interlocked.Add(ref _waitTicks, elapsed.Ticks);

        public LoaderStatistics Snapshot(int workers) => new(Interlocked.Read(ref _images),
            TimeSpan.FromTicks(Interlocked.Read(ref _readTicks)).TotalSeconds, TimeSpan.FromTicks(Interlocked.Read(ref _waitTicks)).TotalSeconds, workers);
    }
}

/// <summary>What a <see cref="DataLoader"/> did so far.</summary>
/// <param name="Images">Images read and transformed.</param>
/// <param name="ReadSeconds">Wall time the background thread spent reading and transforming batches (not waiting for
/// the caller to free a buffer).</param>
/// <param name="WaitSeconds">Wall time the caller spent waiting for a batch: near 0 when data loading keeps up.</param>
/// <param name="Workers">Threads reading in parallel.</param>
public sealed record LoaderStatistics(long Images, double ReadSeconds, double WaitSeconds, int Workers)
{
    /// <summary>Images per second the loader produces while it works: its capacity, whatever the caller's pace.</summary>
    public double ImagesPerSecond => ReadSeconds > 0 ? Images / ReadSeconds : 0;
}
