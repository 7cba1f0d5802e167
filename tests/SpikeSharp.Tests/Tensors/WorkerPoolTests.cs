using SpikeSharp.Tensors;
using Xunit;

namespace SpikeSharp.Tests.Tensors;

/// <summary>The pool's contract: each item once, a worker index no other running body holds, calls of fewer items than
/// workers, calls after the helpers went to sleep, exceptions, nesting.</summary>
public class WorkerPoolTests
{
    [Theory]
    [InlineData(2)]
    [InlineData(3)]
    [InlineData(4)]
    public void EveryItemRunsOnceOnAWorkerNoOtherBodyHolds(int workers)
    {
        var pool = new WorkerPool(workers);
        var rng = new Random(workers);
        var inUse = new int[workers];
        int clashes = 0;
        for (int call = 0; call < 600; call++)
        {
            if (call % 100 == 99) Thread.Sleep(5); // the helpers block and must be woken
            int count = rng.Next(1, 10);
            var runs = new int[count];
            pool.For(count, (item, worker) =>
            {
                if (Interlocked.Exchange(ref inUse[worker], 1) != 0) Interlocked.Increment(ref clashes);
                Interlocked.Increment(ref runs[item]);
                if (item % 3 == 0) Thread.SpinWait(200);
                Volatile.Write(ref inUse[worker], 0);
            });
            Assert.All(runs, r => Assert.Equal(1, r));
        }
        Assert.Equal(0, clashes);
    }

    [Fact]
    public void AnExceptionReachesTheCallerAndThePoolKeepsWorking()
    {
        var pool = new WorkerPool(2);
        var e = Assert.Throws<InvalidOperationException>(() => pool.For(8, (item, _) =>
        {
            if (item == 5) throw new InvalidOperationException("item 5");
        }));
        Assert.Equal("item 5", e.Message);
        int sum = 0;
        pool.For(100, (item, _) => Interlocked.Add(ref sum, item));
        Assert.Equal(4950, sum);
    }

    [Fact]
    public void ANestedCallRunsOnTheCallingWorker()
    {
        var pool = new WorkerPool(2);
        var innerWorkers = new List<int>[4];
        pool.For(4, (item, _) =>
        {
            innerWorkers[item] = [];
            pool.For(3, (_, inner) => innerWorkers[item].Add(inner));
        });
        Assert.All(innerWorkers, list => Assert.Equal([0, 0, 0], list));
    }
}
