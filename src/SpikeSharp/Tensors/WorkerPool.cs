namespace SpikeSharp.Tensors;

/// <summary>
/// Persistent worker threads, one per core, that run the items of a parallel loop with dynamic scheduling.
/// The calling thread works too. Threads are created once; a call allocates nothing but its delegate.
/// Not reentrant: a body must not call <see cref="For"/> again (nested calls run serially on the caller).
/// </summary>
public sealed class WorkerPool
{
    public static WorkerPool Shared { get; } = new(DefaultThreadCount());

    /// <summary>Number of workers, the calling thread included.</summary>
    public int Count { get; }

    private readonly Thread[] _threads;
    private readonly SemaphoreSlim _start;
    private readonly CountdownEvent _done;
    private Action<int, int>? _body;
    private int _next, _total;
    private Exception? _error;
    private int _busy;
    [ThreadStatic] private static bool t_inWorker;

    public WorkerPool(int count)
    {
        Count = Math.Max(1, count);
        _start = new SemaphoreSlim(0);
        _done = new CountdownEvent(1);
        _threads = new Thread[Count - 1];
        for (int i = 0; i < _threads.Length; i++)
        {
            int worker = i + 1;
            _threads[i] = new Thread(() => Loop(worker)) { IsBackground = true, Name = $"spikesharp-worker-{worker}" };
            _threads[i].Start();
        }
    }

    private static int DefaultThreadCount()
    {
        string? env = Environment.GetEnvironmentVariable("SPIKESHARP_THREADS");
        return int.TryParse(env, out int n) && n > 0 ? n : Environment.ProcessorCount;
    }

    /// <summary>Runs body(item, worker) for item in [0, count); worker is in [0, Count) and unique among
    /// concurrently running bodies, so it can index per-worker scratch buffers.</summary>
    public void For(int count, Action<int, int> body)
    {
        if (count <= 0) return;
        if (count == 1 || Count == 1 || t_inWorker || Interlocked.Exchange(ref _busy, 1) == 1)
        {
            // Serial fallback: nested or concurrent use runs on the caller as worker 0 of a private view.
            for (int i = 0; i < count; i++) body(i, 0);
            return;
        }
        try
        {
            _body = body;
            _total = count;
            _next = 0;
            _error = null;
            int helpers = Math.Min(_threads.Length, count - 1);
            _done.Reset(helpers + 1);
            _start.Release(helpers);
            Work(0);
            _done.Wait();
            _body = null;
            if (_error != null) throw new AggregateException(_error).Flatten().InnerException!;
        }
        finally
        {
            Volatile.Write(ref _busy, 0);
        }
    }

    private void Loop(int worker)
    {
        t_inWorker = true;
        while (true)
        {
            _start.Wait();
            Work(worker);
        }
    }

    private void Work(int worker)
    {
        bool wasInWorker = t_inWorker;
        t_inWorker = true;
        try
        {
            var body = _body!;
            int i;
            while ((i = Interlocked.Increment(ref _next) - 1) < _total)
            {
                try { body(i, worker); }
                catch (Exception e) { Interlocked.CompareExchange(ref _error, e, null); }
            }
        }
        finally
        {
            t_inWorker = wasInWorker;
            _done.Signal();
        }
    }
}
