// A small deterministic random number generator (xoshiro256** seeded by SplitMix64); not cryptographic.
namespace SpikeSharp.Data;

/// <summary>
/// xoshiro256** with SplitMix64 seeding. Results depend only on the seed, never on the runtime's
/// <see cref="System.Random"/>, so shuffling and augmentation are reproducible across .NET versions and machines.
/// It is a mutable struct: pass it by <c>ref</c>, never by value, or the copy's draws are lost.
/// </summary>
public struct Rng
{
    private ulong _s0, _s1, _s2, _s3;

    /// <summary>A generator whose whole state is derived from <paramref name="seed"/> by SplitMix64.</summary>
    public Rng(ulong seed)
    {
        ulong x = seed;
        _s0 = SplitMix64(ref x);
        _s1 = SplitMix64(ref x);
        _s2 = SplitMix64(ref x);
        _s3 = SplitMix64(ref x);
    }

    /// <summary>
    /// An independent stream for a key path, e.g. (seed, purpose, epoch, sample index). Each key is mixed in
    /// turn, so (1, 2) and (2, 1) give unrelated streams and neighbouring indices give uncorrelated ones.
    /// </summary>
    public static Rng Create(ulong seed, ulong a, ulong b = 0, ulong c = 0)
    {
        ulong h = Mix(seed ^ 0x6A09E667F3BCC909UL);
        h = Mix(h ^ a);
        h = Mix(h ^ (b + 0x9E3779B97F4A7C15UL));
        h = Mix(h ^ (c + 0x3C6EF372FE94F82BUL));
        return new Rng(h);
    }

    /// <summary>The next 64 uniformly random bits.</summary>
    public ulong NextUInt64()
    {
        ulong result = RotateLeft(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0;
        _s3 ^= _s1;
        _s1 ^= _s2;
        _s0 ^= _s3;
        _s2 ^= t;
        _s3 = RotateLeft(_s3, 45);
        return result;
    }

    /// <summary>A uniform integer in [0, <paramref name="n"/>), without modulo bias (Lemire's method).</summary>
    public int NextInt(int n)
    {
        if (n <= 0) throw new ArgumentOutOfRangeException(nameof(n), n, "expected n > 0");
        uint range = (uint)n;
        ulong m = (ulong)(uint)(NextUInt64() >> 32) * range;
        uint low = (uint)m;
        if (low < range)
        {
            uint threshold = (uint)(-(int)range) % range; // 2^32 mod range
            while (low < threshold)
            {
                m = (ulong)(uint)(NextUInt64() >> 32) * range;
                low = (uint)m;
            }
        }
        return (int)(m >> 32);
    }

    /// <summary>A uniform float in [0, 1) with 24 random bits (every value exactly representable).</summary>
    public float NextFloat() => (NextUInt64() >> 40) * (1.0f / (1 << 24));

    /// <summary>A uniform double in [0, 1) with 53 random bits.</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>A fair coin.</summary>
    public bool NextBool() => (NextUInt64() >> 63) != 0;

    /// <summary>Fisher–Yates shuffle in place; every permutation is equally likely.</summary>
    public void Shuffle<T>(Span<T> items)
    {
        for (int i = items.Length - 1; i > 0; i--)
        {
            int j = NextInt(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    private static ulong SplitMix64(ref ulong x)
    {
        x += 0x9E3779B97F4A7C15UL;
        return Mix(x);
    }

    // The SplitMix64 finalizer: a bijection on 64 bits with good avalanche.
    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    private static ulong RotateLeft(ulong x, int k) => (x << k) | (x >> (64 - k));
}
