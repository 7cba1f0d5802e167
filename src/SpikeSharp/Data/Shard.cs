using System.Globalization;

namespace SpikeSharp.Data;

/// <summary>
/// The <see cref="Index"/>-th of <see cref="Count"/> contiguous slices of a dataset (1 ≤ Index ≤ Count), for evaluating
/// one test set on several machines: slice K holds images [⌊(K−1)·n/N⌋, ⌊K·n/N⌋), so the slices cover the set once, in
/// order, and differ in size by at most one image.
/// </summary>
public readonly record struct Shard(int Index, int Count)
{
    /// <summary>Parses "K/N" (as in <c>--shard 3/8</c>).</summary>
    public static Shard Parse(string text)
    {
        var parts = text.Split('/');
        if (parts.Length != 2 || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int k)
            || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int n))
            throw new SpikeSharpException($"--shard '{text}': expected K/N, the K-th of N slices of the test set, e.g. 3/8");
        if (n < 1 || k < 1 || k > n)
            throw new SpikeSharpException($"--shard '{text}': expected 1 ≤ K ≤ N (K counts from 1; a Kubernetes Indexed Job passes $((JOB_COMPLETION_INDEX+1))/N)");
        return new Shard(k, n);
    }

    /// <summary>First image and number of images of this slice of <paramref name="total"/> images.</summary>
    public (int Start, int Length) Range(int total)
    {
        if (Count > total) throw new SpikeSharpException($"--shard {this}: {Count} slices of {total} test images would leave some empty; use at most {total} slices");
        int start = (int)((long)(Index - 1) * total / Count), end = (int)((long)Index * total / Count);
        return (start, end - start);
    }

    /// <summary>This slice of <paramref name="set"/>.</summary>
    public ImageSet Of(ImageSet set)
    {
        var (start, length) = Range(set.Count);
        return set.Subset(Enumerable.Range(start, length).ToArray());
    }

    public override string ToString() => $"{Index}/{Count}";
}
