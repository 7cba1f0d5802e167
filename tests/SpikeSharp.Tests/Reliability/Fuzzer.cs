// A deterministic mutation fuzzer for file parsers, shared by every parser's fuzz test (IDX, CIFAR, safetensors,
// model.json today; ONNX, .pth, NIR later): mutate valid files, parse them from memory, and require that each parse
// either succeeds or fails with a SpikeSharpException naming the file — within a memory bound and without hanging.
using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using Xunit.Sdk;

namespace SpikeSharp.Tests.Reliability;

/// <summary>What a fuzz run saw: how many mutated inputs parsed, how many were rejected (by message prefix, for a
/// glance at coverage), the most memory one case allocated, and the slowest case (reported, never asserted).</summary>
public sealed record FuzzReport(string Parser, int Cases, int Accepted, int Rejected, long MaxAllocatedBytes, double SlowestCaseMs,
    IReadOnlyDictionary<string, int> RejectionKinds)
{
    public override string ToString() =>
        $"{Parser}: {Cases} cases, {Accepted} parsed, {Rejected} rejected ({RejectionKinds.Count} distinct messages), " +
        $"max {MaxAllocatedBytes / 1024} KiB allocated in one case, slowest case {SlowestCaseMs:0.0} ms";
}

/// <summary>
/// Mutation fuzzer. Case <c>i</c> of a run with seed <c>s</c> is a pure function of (seeds, s, i), so a failure is
/// reproduced by <see cref="Mutate"/> with the same numbers; the failing bytes are also written to a temp file
/// whose path is in the failure message. Mutations: bit flips, bytes set to 0x00/0xFF/0x7F/0x80, truncation,
/// insertion and deletion of runs, copies of a run elsewhere, 4- and 8-byte little- and big-endian length fields
/// forged with huge, negative or off-by-one values (at a random offset or in the first 64 bytes, where headers
/// live), and ASCII numbers replaced by extreme ones (for JSON headers).
/// </summary>
public static class Fuzzer
{
    /// <summary>Default allocation cap for one case beyond 64 × the input size: a parser that trusts a forged
    /// length allocates far more than this.</summary>
    public const long DefaultAllocationCap = 8L << 20;

    /// <summary>A case running this long is a hang (a correct parse of these tiny inputs takes microseconds).</summary>
    public static readonly TimeSpan HangLimit = TimeSpan.FromSeconds(30);

    private static readonly string[] ExtremeNumbers =
    [
        "0", "-1", "1", "-0", "2147483647", "2147483648", "4294967295", "4294967296", "9223372036854775807", "9223372036854775808",
        "-9223372036854775808", "18446744073709551616", "1e308", "1e309", "-1e309", "1.5", "0.0000001", "99999999999999999999999",
        "NaN", "\"x\"", "null", "[]", "{}", "true",
    ];

    private const string JsonAlphabet = "{}[]:,\"\\0123456789-.eE ntrufalsx";

    private static readonly ulong[] ExtremeFields =
    [
        0, 1, 2, 7, 8, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF, 0x1_0000_0000, 0x7FFFFFFFFFFFFFFF,
        0x8000000000000000, ulong.MaxValue, ulong.MaxValue - 7, 100_000_000, 100_000_001, 10_000_000, 10_000_001,
    ];

    /// <summary>
    /// Runs <paramref name="cases"/> mutated inputs through <paramref name="parse"/>(bytes, path). Each must return
    /// or throw a <see cref="SpikeSharpException"/> whose message names <paramref name="path"/>; anything else —
    /// another exception, more than <paramref name="allocationCap"/> + 64 × input bytes allocated in the case, or a
    /// case running past <see cref="HangLimit"/> — fails with the seed, case number, mutations and a temp file of
    /// the bytes. Also parses each seed unmutated, which must succeed.
    /// </summary>
    public static FuzzReport Run(string parser, IReadOnlyList<byte[]> seeds, Action<byte[], string> parse, int cases, int seed,
        string path = "fuzz-input", long allocationCap = DefaultAllocationCap)
    {
        for (int s = 0; s < seeds.Count; s++)
        {
            try { parse(seeds[s], path); }
            catch (Exception e) { throw new XunitException($"{parser}: unmutated seed {s} does not parse: {e}"); }
        }
        int accepted = 0, rejected = 0;
        long maxAllocated = 0;
        double slowest = 0;
        var kinds = new Dictionary<string, int>();
        for (int i = 0; i < cases; i++)
        {
            var (bytes, mutations) = Mutate(seeds, seed, i);
            var outcome = RunCase(parse, bytes, path, allocationCap + 64L * bytes.Length);
            maxAllocated = Math.Max(maxAllocated, outcome.Allocated);
            slowest = Math.Max(slowest, outcome.Milliseconds);
            if (outcome.Failure != null)
            {
                string file = Path.Combine(Path.GetTempPath(), $"spikesharp-fuzz-{parser}-seed{seed}-case{i}.bin");
                File.WriteAllBytes(file, bytes);
                throw new XunitException($"{parser}: seed {seed}, case {i} ({string.Join("; ", mutations)}): {outcome.Failure}\n" +
                    $"input ({bytes.Length} bytes) saved to {file}; reproduce with Fuzzer.Mutate(seeds, {seed}, {i})");
            }
            if (outcome.Rejection is { } message)
            {
                rejected++;
                string kind = Kind(message, path);
                kinds[kind] = kinds.GetValueOrDefault(kind) + 1;
            }
            else accepted++;
        }
        return new FuzzReport(parser, cases, accepted, rejected, maxAllocated, slowest, kinds);
    }

    /// <summary>Runs one input and checks the outcome as <see cref="Run"/> does; for corpus files.</summary>
    public static (string? Failure, string? Rejection) Check(Action<byte[], string> parse, byte[] bytes, string path,
        long allocationCap = DefaultAllocationCap)
    {
        var o = RunCase(parse, bytes, path, allocationCap + 64L * bytes.Length);
        return (o.Failure, o.Rejection);
    }

    private sealed record Outcome(string? Failure, string? Rejection, long Allocated, double Milliseconds);

    private static Outcome RunCase(Action<byte[], string> parse, byte[] bytes, string path, long cap)
    {
        string? failure = null, rejection = null;
        long allocated = 0;
        var sw = Stopwatch.StartNew();
        // The parse runs on a worker so that a hang is reported instead of blocking the test run forever.
        var task = Task.Factory.StartNew(() =>
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            try
            {
                parse(bytes, path);
            }
            catch (SpikeSharpException e)
            {
                rejection = e.Message;
                if (!e.Message.Contains(path, StringComparison.Ordinal))
                    failure = $"the message does not name the file '{path}': {e.Message}";
            }
            catch (Exception e)
            {
                failure = $"unhandled {e.GetType().Name}: {e}";
            }
            allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        }, CancellationToken.None, TaskCreationOptions.DenyChildAttach, TaskScheduler.Default);
        if (!task.Wait(HangLimit)) return new Outcome($"hang: still parsing after {HangLimit.TotalSeconds} s", null, 0, sw.Elapsed.TotalMilliseconds);
        if (failure == null && allocated > cap)
            failure = $"allocated {allocated} bytes for a {bytes.Length}-byte input; expected at most {cap} (a size trusted before it was checked?)";
        return new Outcome(failure, rejection, allocated, sw.Elapsed.TotalMilliseconds);
    }

    /// <summary>The message without the path and digits, so rejections group by kind.</summary>
    private static string Kind(string message, string path)
    {
        var sb = new StringBuilder();
        foreach (char c in message.Replace(path, "").AsSpan(0, Math.Min(message.Replace(path, "").Length, 48)))
            sb.Append(char.IsDigit(c) ? '#' : c);
        return sb.ToString();
    }

    /// <summary>Mutated input number <paramref name="index"/> of a run with <paramref name="seed"/>: one of the seed
    /// files with 1 to 4 mutations; returns the bytes and a description of each mutation.</summary>
    public static (byte[] Bytes, List<string> Mutations) Mutate(IReadOnlyList<byte[]> seeds, int seed, int index)
    {
        var rng = new Random(unchecked(seed * 1_000_003 + index * 7919 + 0x5eed)); // seeded Random is stable across runs
        int which = rng.Next(seeds.Count);
        var data = new List<byte>(seeds[which]);
        var log = new List<string> { $"seed file {which}" };
        int count = 1 + (rng.Next(4) == 0 ? rng.Next(4) : 0);
        for (int m = 0; m < count; m++) log.Add(MutateOnce(data, rng));
        return (data.ToArray(), log);
    }

    private static string MutateOnce(List<byte> d, Random rng)
    {
        int Pos(bool header = false) => d.Count == 0 ? 0 : header && rng.Next(2) == 0 ? rng.Next(Math.Min(d.Count, 64)) : rng.Next(d.Count);
        switch (rng.Next(9))
        {
            case 0 when d.Count > 0:
            {
                int p = Pos(header: true), bit = rng.Next(rng.Next(2) == 0 ? 7 : 8); // 7: keeps ASCII text ASCII
                d[p] ^= (byte)(1 << bit);
                return $"flip bit {bit} at {p}";
            }
            case 1 when d.Count > 0:
            {
                int p = Pos(header: true);
                byte v = new byte[] { 0x00, 0xFF, 0x7F, 0x80 }[rng.Next(4)];
                d[p] = v;
                return $"set byte {p} to 0x{v:X2}";
            }
            case 2:
            {
                int len = rng.Next(d.Count + 1);
                d.RemoveRange(len, d.Count - len);
                return $"truncate to {len}";
            }
            case 3:
            {
                int p = rng.Next(d.Count + 1), n = 1 + rng.Next(16);
                var ins = new byte[n];
                rng.NextBytes(ins);
                if (rng.Next(2) == 0) // JSON-ish text, so text formats get past their UTF-8 check
                    for (int k = 0; k < n; k++) ins[k] = (byte)JsonAlphabet[rng.Next(JsonAlphabet.Length)];
                d.InsertRange(p, ins);
                return $"insert {n} random bytes at {p}";
            }
            case 4 when d.Count > 0:
            {
                int p = Pos(), n = Math.Min(d.Count - p, 1 + rng.Next(rng.Next(2) == 0 ? 8 : 256));
                d.RemoveRange(p, n);
                return $"delete {n} bytes at {p}";
            }
            case 5 when d.Count > 0:
            {
                int from = Pos(), n = Math.Min(d.Count - from, 1 + rng.Next(64)), to = rng.Next(d.Count + 1);
                var run = d.GetRange(from, n);
                d.InsertRange(to, run);
                return $"copy {n} bytes from {from} to {to}";
            }
            case 6 or 7 when d.Count >= 4:
            {
                int width = rng.Next(2) == 0 ? 4 : 8;
                if (d.Count < width) width = 4;
                bool header = rng.Next(4) != 0;
                int p = header ? rng.Next(Math.Min(d.Count - width, 64) + 1) : rng.Next(d.Count - width + 1);
                p = header && rng.Next(2) == 0 ? p & ~(width - 1) : p; // aligned fields are the common case
                ulong v = rng.Next(3) switch
                {
                    0 => ExtremeFields[rng.Next(ExtremeFields.Length)],
                    1 => (ulong)d.Count + (ulong)(rng.Next(33) - 16),
                    _ => (ulong)rng.NextInt64(),
                };
                bool big = rng.Next(2) == 0;
                var field = new byte[8];
                if (big) BinaryPrimitives.WriteUInt64BigEndian(field, width == 4 ? v << 32 : v);
                else BinaryPrimitives.WriteUInt64LittleEndian(field, v);
                for (int k = 0; k < width; k++) d[p + k] = field[k];
                return $"forge {width}-byte {(big ? "big" : "little")}-endian field at {p} = {(width == 4 ? v & 0xFFFFFFFF : v)}";
            }
            case 8:
            {
                // Replace an ASCII number (a JSON header's shape or offsets) by an extreme value.
                var starts = new List<int>();
                for (int i = 0; i < d.Count; i++)
                    if (d[i] is >= (byte)'0' and <= (byte)'9' && (i == 0 || d[i - 1] is < (byte)'0' or > (byte)'9')) starts.Add(i);
                if (starts.Count == 0) goto default;
                int s = starts[rng.Next(starts.Count)], e = s;
                while (e < d.Count && d[e] is >= (byte)'0' and <= (byte)'9' or (byte)'.' or (byte)'e' or (byte)'-') e++;
                string repl = ExtremeNumbers[rng.Next(ExtremeNumbers.Length)];
                d.RemoveRange(s, e - s);
                d.InsertRange(s, Encoding.ASCII.GetBytes(repl));
                return $"replace number at {s} by {repl}";
            }
            default:
            {
                int p = rng.Next(d.Count + 1);
                d.Insert(p, (byte)rng.Next(256));
                return $"insert a byte at {p}";
            }
        }
    }
}
