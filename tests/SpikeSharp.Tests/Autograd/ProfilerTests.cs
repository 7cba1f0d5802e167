using SpikeSharp.Autograd;
using SpikeSharp.Tensors;
using Xunit;

namespace SpikeSharp.Tests.Autograd;

public class ProfilerTests
{
    [Fact]
    public void EntriesAccountForTheWholeWallTime()
    {
        var t = new Tensor(4, 2);
        Profiler.Start();
        var clock = System.Diagnostics.Stopwatch.StartNew();
        using (Profiler.Measure("op a", t)) { }
        using (Profiler.Measure("op a", t)) { }
        Thread.Sleep(5); // outside any timed op
        var entries = Profiler.Stop();
        double wall = clock.Elapsed.TotalSeconds;

        var a = Assert.Single(entries, e => e.Op == "op a");
        Assert.Equal(2, a.Calls);
        Assert.Equal("[4,2]", a.Shape);
        var untimed = Assert.Single(entries, e => e.Op == Profiler.Untimed);
        Assert.True(untimed.Seconds >= 0.004, $"untimed {untimed.Seconds} s");
        Assert.True(entries.Sum(e => e.Seconds) <= wall + 1e-3);
        Assert.Empty(Profiler.Stop().Where(e => e.Calls > 0)); // stopped: nothing collected
    }
}
