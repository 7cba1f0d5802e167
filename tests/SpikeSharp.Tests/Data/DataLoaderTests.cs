// Tests of DataLoader: coverage, determinism, buffer lifetime, background errors and disposal.
using SpikeSharp.Data;
using Xunit;

namespace SpikeSharp.Tests.Data;

public sealed class DataLoaderTests
{
    private static readonly TransformSpec Augmented =
        TransformSpec.ForTrain("cifar10", 3, 32, 32, autoAugment: true, cutoutLength: 8);

    private static List<(float[] Images, int[] Labels, int[] Indices)> Collect(DataLoader loader, int epoch) =>
        loader.Epoch(epoch).Select(b => ((float[])b.Images.Data.Clone(), (int[])b.Labels.Clone(), (int[])b.Indices.Clone())).ToList();

    [Fact]
    public void Epoch_VisitsEverySampleExactlyOnce()
    {
        var data = SyntheticData.Random(103, 3, 32, 32);
        using var loader = new DataLoader(data, 16, Augmented, shuffle: true, train: true, seed: 1);

        var batches = Collect(loader, 0);

        Assert.Equal(7, loader.BatchesPerEpoch);
        Assert.Equal(7, batches.Count);
        Assert.Equal(Enumerable.Repeat(16, 6).Append(7), batches.Select(b => b.Labels.Length));
        var indices = batches.SelectMany(b => b.Indices).ToArray();
        Assert.Equal(Enumerable.Range(0, 103), indices.Order());
        Assert.NotEqual(Enumerable.Range(0, 103), indices); // shuffled
        Assert.Equal(indices.Select(i => data.Labels[i]), batches.SelectMany(b => b.Labels));
        Assert.Equal(7 * 3 * 32 * 32, batches[^1].Images.Length);
    }

    [Fact]
    public void DropLast_SkipsThePartialBatch()
    {
        var data = SyntheticData.Random(50, 1, 28, 28);
        using var loader = new DataLoader(data, 16, TransformSpec.ForEval("mnist", 3, 32, 32), shuffle: true, train: false, seed: 3, dropLast: true);

        var batches = Collect(loader, 0);

        Assert.Equal(3, loader.BatchesPerEpoch);
        Assert.All(batches, b => Assert.Equal(16, b.Labels.Length));
        Assert.Equal(48, batches.SelectMany(b => b.Indices).Distinct().Count());
    }

    [Fact]
    public void Epoch_IsDeterministicForSeedAndEpoch()
    {
        var data = SyntheticData.Random(40, 3, 32, 32);
        using var a = new DataLoader(data, 8, Augmented, shuffle: true, train: true, seed: 5);
        using var b = new DataLoader(data, 8, Augmented, shuffle: true, train: true, seed: 5);
        using var other = new DataLoader(data, 8, Augmented, shuffle: true, train: true, seed: 6);

        var first = Collect(a, 2);
        var again = Collect(b, 2);

        Assert.Equal(first.Select(x => x.Indices), again.Select(x => x.Indices));
        Assert.Equal(first.Select(x => x.Images), again.Select(x => x.Images));
        Assert.NotEqual(first.Select(x => x.Indices), Collect(a, 3).Select(x => x.Indices));
        Assert.NotEqual(first.Select(x => x.Indices), Collect(other, 2).Select(x => x.Indices));
        Assert.Equal(a.Order(2), first.SelectMany(x => x.Indices));
    }

    [Fact]
    public void Augmentation_DependsOnTheSampleNotTheBatching()
    {
        var data = SyntheticData.Random(24, 3, 32, 32);
        using var small = new DataLoader(data, 5, Augmented, shuffle: false, train: true, seed: 9);
        using var large = new DataLoader(data, 24, Augmented, shuffle: true, train: true, seed: 9);
        int size = 3 * 32 * 32;

        var bySample = new Dictionary<int, float[]>();
        foreach (var batch in Collect(small, 1))
            for (int k = 0; k < batch.Indices.Length; k++) bySample[batch.Indices[k]] = batch.Images[(k * size)..((k + 1) * size)];
        var whole = Collect(large, 1).Single();

        for (int k = 0; k < 24; k++) Assert.Equal(bySample[whole.Indices[k]], whole.Images[(k * size)..((k + 1) * size)]);
    }

    [Fact]
    public void EvalBatches_EqualTheTransformAppliedDirectly()
    {
        var data = SyntheticData.Random(10, 1, 28, 28);
        var spec = TransformSpec.ForEval("mnist", 3, 32, 32);
        using var loader = new DataLoader(data, 4, spec, shuffle: false, train: false, seed: 0);
        var t = new ImageTransform(spec, 1, 28, 28);
        var expected = new float[t.OutputSize];

        foreach (var (images, labels, indices) in Collect(loader, 0))
        {
            for (int k = 0; k < indices.Length; k++)
            {
                var rng = new Rng(0);
                t.Apply(data.Image(indices[k]), expected, train: false, ref rng);
                Assert.Equal(expected, images[(k * t.OutputSize)..((k + 1) * t.OutputSize)]);
            }
        }
    }

    [Fact]
    public void Batch_StaysValidUntilTheNextMoveNext()
    {
        var data = SyntheticData.Random(64, 3, 32, 32);
        using var loader = new DataLoader(data, 8, Augmented, shuffle: true, train: true, seed: 2);
        var reference = Collect(loader, 4);

        using var e = loader.Epoch(4).GetEnumerator();
        for (int b = 0; e.MoveNext(); b++)
        {
            if (b % 3 == 0) Thread.Sleep(30); // let the producer run ahead and fill every free buffer
            Assert.Equal(reference[b].Images, e.Current.Images.Data);
            Assert.Equal(reference[b].Indices, e.Current.Indices);
        }
    }

    [Fact]
    public void BackgroundError_SurfacesInTheCallerWithItsType()
    {
        var data = SyntheticData.Random(40, 3, 32, 32);
        using var loader = new DataLoader(data, 8, Augmented, shuffle: false, train: true, seed: 0);
        loader.BeforeSample = i => { if (i == 20) throw new InvalidFileException("bad.bin", "decode failed"); };
        int delivered = 0;

        var e = Assert.Throws<InvalidFileException>(() => { foreach (var _ in loader.Epoch(0)) delivered++; });

        Assert.Equal("bad.bin: decode failed", e.Message);
        Assert.Equal(2, delivered); // batches 0 and 1 arrive before the failing sample's batch
        loader.BeforeSample = null;
        Assert.Equal(5, Collect(loader, 0).Count); // the loader is still usable
    }

    [Fact]
    public void Dispose_MidEpochStopsTheProducer()
    {
        var data = SyntheticData.Random(400, 3, 32, 32);
        var loader = new DataLoader(data, 4, Augmented, shuffle: true, train: true, seed: 0);
        int processed = 0;
        var producers = new System.Collections.Concurrent.ConcurrentDictionary<Thread, bool>();
        loader.BeforeSample = _ =>
        {
            producers.TryAdd(Thread.CurrentThread, true);
            Interlocked.Increment(ref processed);
        };
        var e = loader.Epoch(0).GetEnumerator();
        Assert.True(e.MoveNext());

        loader.Dispose();
        // Dispose has joined every thread that produced samples: none is alive, so none can process another (no sleep
        // and hope; this holds on any machine load).
        Assert.NotEmpty(producers.Keys);
        Assert.All(producers.Keys, t => Assert.False(t.IsAlive, "a producer thread outlived Dispose"));
        int afterDispose = Volatile.Read(ref processed);
        Assert.True(afterDispose < 400);
        Assert.Throws<ObjectDisposedException>(() => e.MoveNext());
        Assert.Throws<ObjectDisposedException>(() => loader.Epoch(1));
        e.Dispose();
    }

    [Fact]
    public void LeavingAnEpochEarly_DoesNotDisturbTheNext()
    {
        var data = SyntheticData.Random(48, 3, 32, 32);
        using var loader = new DataLoader(data, 8, Augmented, shuffle: true, train: true, seed: 8);
        var full = Collect(loader, 1);

        foreach (var _ in loader.Epoch(0).Take(2)) { }

        Assert.Equal(full.Select(b => b.Images), Collect(loader, 1).Select(b => b.Images));
    }

    [Fact]
    public void SmallDataset_GivesOnePartialBatchOrNone()
    {
        var data = SyntheticData.Random(3, 3, 32, 32);
        var spec = TransformSpec.ForEval("cifar10", 3, 32, 32);
        using var keep = new DataLoader(data, 128, spec, shuffle: true, train: false, seed: 0);
        using var drop = new DataLoader(data, 128, spec, shuffle: true, train: false, seed: 0, dropLast: true);

        Assert.Equal([3], Collect(keep, 0).Select(b => b.Labels.Length));
        Assert.Empty(Collect(drop, 0));
        Assert.Equal(0, drop.BatchesPerEpoch);
    }

    [Fact]
    public void Constructor_ValidatesOnTheCallersThread()
    {
        var data = SyntheticData.Random(3, 3, 32, 32);

        Assert.Throws<SpikeSharpException>(() => new DataLoader(data, 0, Augmented, true, true, 0));
        Assert.Throws<SpikeSharpException>(() => new DataLoader(data, 4, TransformSpec.ForEval("cifar10", 3, 28, 28), true, true, 0));
    }
}
