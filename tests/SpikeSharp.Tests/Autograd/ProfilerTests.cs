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
        // The clock brackets the profiler's whole span, so the entries cannot sum to more than it, however loaded the
        // machine; the sleep gives a lower bound for the untimed part. No upper bound on any duration is asserted.
        var clock = System.Diagnostics.Stopwatch.StartNew();
        Profiler.Start();
        using (Profiler.Measure("op a", t)) { }
        using (Profiler.Measure("op a", t)) { }
        Thread.Sleep(5); // outside any timed op
        var entries = Profiler.Stop();
        double wall = (double)clock.ElapsedTicks / System.Diagnostics.Stopwatch.Frequency; // the profiler's own tick unit

        var a = Assert.Single(entries, e => e.Op == "op a");
        Assert.Equal(2, a.Calls);
        Assert.Equal("[4,2]", a.Shape);
        var untimed = Assert.Single(entries, e => e.Op == Profiler.Untimed);
        Assert.True(untimed.Seconds >= 0.004, $"untimed {untimed.Seconds} s");
        Assert.True(entries.Sum(e => e.Seconds) <= wall, $"entries sum to {entries.Sum(e => e.Seconds)} s, more than the {wall} s around them");
        Assert.DoesNotContain(Profiler.Stop(), e => e.Calls > 0); // stopped: nothing collected
    }
}
