using System.Diagnostics;
using SpikeSharp.Tensors;

namespace SpikeSharp.Autograd;

/// <summary>
/// Wall time per operation and shape (<c>spikesharp bench --profile</c>), so the cost of each layer and its efficiency
/// are measured rather than guessed. Off by default: a disabled <see cref="Measure(string, Tensor)"/> costs one branch
/// and builds no string. Ops are timed on the calling thread (kernels parallelize inside them), so times add up; a
/// session collects the ops of the thread that started it only, so work on other threads (another test, a loader)
/// neither lands in it nor races with <see cref="Stop"/>.
/// </summary>
public static class Profiler
{
    /// <summary>One operation at one shape: total seconds, calls and FLOPs (0 when not counted).</summary>
    public sealed record Entry(string Op, string Shape)
    {
        public long Ticks { get; set; }
        public int Calls { get; set; }
        public double Flops { get; set; }
        public double Seconds => (double)Ticks / Stopwatch.Frequency;
    }

    /// <summary>The op name of the entry that holds the wall time between Start and Stop not spent in any timed op.</summary>
    public const string Untimed = "(outside timed ops)";

    [ThreadStatic] private static Dictionary<(string, string), Entry>? _entries;
    [ThreadStatic] private static long _started;

    /// <summary>Starts collecting (clearing earlier entries).</summary>
    public static void Start() => (_entries, _started) = (new(), Stopwatch.GetTimestamp());

    /// <summary>Stops collecting and returns the entries, most expensive first, with one <see cref="Untimed"/> entry for
    /// the rest of the wall time (dispatch, allocation, untimed ops).</summary>
    public static List<Entry> Stop()
    {
        if (_entries == null) return [];
        long wall = Stopwatch.GetTimestamp() - _started;
        var untimed = new Entry(Untimed, "") { Ticks = Math.Max(0, wall - _entries.Values.Sum(e => e.Ticks)), Calls = 1 };
        var list = _entries.Values.Append(untimed).OrderByDescending(e => e.Ticks).ToList();
        _entries = null;
        return list;
    }

    /// <summary>Times the scope as <paramref name="op"/> on <paramref name="input"/>'s shape.</summary>
    public static Scope Measure(string op, Tensor input) => _entries == null ? default : new Scope(op, input.ShapeString, 0);

    /// <summary>Times the scope as "<paramref name="kind"/>'s type name <paramref name="phase"/>" (e.g. an activation function).</summary>
    public static Scope Measure(object kind, string phase, Tensor input) =>
        _entries == null ? default : new Scope($"{kind.GetType().Name} {phase}", input.ShapeString, 0);

    /// <summary>Times a convolution, keyed and FLOP-counted by its geometry.</summary>
    public static Scope Measure(string op, Conv2dGeometry g) => _entries == null ? default :
        new Scope(op, $"{g.InChannels}→{g.OutChannels} {g.KH}x{g.KW}/{g.StrideH} {g.H}x{g.W} N={g.N}",
            2.0 * g.N * g.OutChannels * g.OutPlane * g.ColRows);

    public readonly struct Scope : IDisposable
    {
        private readonly string? _op, _shape;
        private readonly double _flops;
        private readonly long _start;

        internal Scope(string op, string shape, double flops) => (_op, _shape, _flops, _start) = (op, shape, flops, Stopwatch.GetTimestamp());

        public void Dispose()
        {
            if (_op == null || _entries == null) return;
            if (!_entries.TryGetValue((_op, _shape!), out var e)) _entries[(_op, _shape!)] = e = new Entry(_op, _shape!);
            e.Ticks += Stopwatch.GetTimestamp() - _start;
            e.Calls++;
            e.Flops += _flops;
        }
    }
}
