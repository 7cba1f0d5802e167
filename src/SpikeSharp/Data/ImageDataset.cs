// An in-memory labelled image set stored as uint8 pixels [N,C,H,W]; it decodes nothing and augments nothing.
namespace SpikeSharp.Data;

/// <summary>
/// A labelled image classification set held as raw uint8 pixels. Layout: <c>Pixels: [N,C,H,W]</c>
/// (channel planes, rows top to bottom), <c>Labels: [N]</c> with values in [0, <see cref="ImageSet.Classes"/>).
/// The arrays are shared, not copied, by the constructor; treat them as read-only.
/// </summary>
public sealed class ImageDataset : ImageSet
{
    /// <summary>Pixels [N,C,H,W], one byte each, 0 = black.</summary>
    public byte[] Pixels { get; }

    /// <summary>Wraps existing arrays after checking that their lengths and the labels agree with the geometry.</summary>
    /// <exception cref="ArgumentException">A length or label does not fit.</exception>
    public ImageDataset(string name, byte[] pixels, int[] labels, int channels, int height, int width, int classes)
        : base(name, labels, channels, height, width, classes)
    {
        ArgumentNullException.ThrowIfNull(pixels);
        long expected = (long)labels.Length * channels * height * width;
        if (pixels.Length != expected)
            throw new ArgumentException(
                $"pixels has {pixels.Length} bytes but {labels.Length} images of {channels}×{height}×{width} need {expected}");
        Pixels = pixels;
    }

    /// <summary>The pixels of image <paramref name="i"/>, [C,H,W].</summary>
    public ReadOnlySpan<byte> Image(int i)
    {
        if ((uint)i >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(i), i, $"expected 0 ≤ i < {Count}");
        int size = ImageSize;
        return new ReadOnlySpan<byte>(Pixels, i * size, size);
    }

    public override ReadOnlySpan<byte> Read(int index, Span<byte> scratch, bool train, ref Rng rng) => Image(index);

    /// <summary>The first <paramref name="n"/> images, copied (this instance when n ≥ Count).</summary>
    public new ImageDataset Take(int n) => (ImageDataset)base.Take(n);

    /// <summary>A copy holding the images at <paramref name="indices"/>, in that order (repeats allowed).</summary>
    /// <exception cref="ArgumentOutOfRangeException">An index is outside [0, Count).</exception>
    public new ImageDataset Subset(int[] indices) => (ImageDataset)base.Subset(indices);

    protected override ImageSet SubsetOf(int[] indices)
    {
        int size = ImageSize;
        var pixels = new byte[(long)indices.Length * size];
        var labels = new int[indices.Length];
        for (int k = 0; k < indices.Length; k++)
        {
            Buffer.BlockCopy(Pixels, indices[k] * size, pixels, k * size, size);
            labels[k] = Labels[indices[k]];
        }
        return new ImageDataset(Name, pixels, labels, Channels, Height, Width, Classes);
    }
}
