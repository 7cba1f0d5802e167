// An in-memory labelled image set stored as uint8 pixels [N,C,H,W]; it decodes nothing and augments nothing.
namespace SpikeSharp.Data;

/// <summary>
/// A labelled image classification set held as raw uint8 pixels. Layout: <c>Pixels: [N,C,H,W]</c>
/// (channel planes, rows top to bottom), <c>Labels: [N]</c> with values in [0, <see cref="Classes"/>).
/// The arrays are shared, not copied, by the constructor; treat them as read-only.
/// </summary>
public sealed class ImageDataset
{
    /// <summary>Pixels [N,C,H,W], one byte each, 0 = black.</summary>
    public byte[] Pixels { get; }

    /// <summary>Class index of each image, [N].</summary>
    public int[] Labels { get; }

    /// <summary>Number of images N.</summary>
    public int Count { get; }

    /// <summary>Channels per image C (1 for MNIST, 3 for CIFAR).</summary>
    public int Channels { get; }

    /// <summary>Image height H in pixels.</summary>
    public int Height { get; }

    /// <summary>Image width W in pixels.</summary>
    public int Width { get; }

    /// <summary>Number of classes; every label is below it.</summary>
    public int Classes { get; }

    /// <summary>Short dataset name for messages and reports, e.g. <c>mnist</c> or <c>cifar10</c>.</summary>
    public string Name { get; }

    /// <summary>Bytes per image, C·H·W.</summary>
    public int ImageSize => Channels * Height * Width;

    /// <summary>Wraps existing arrays after checking that their lengths and the labels agree with the geometry.</summary>
    /// <exception cref="ArgumentException">A length or label does not fit.</exception>
    public ImageDataset(string name, byte[] pixels, int[] labels, int channels, int height, int width, int classes)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(pixels);
        ArgumentNullException.ThrowIfNull(labels);
        if (channels <= 0 || height <= 0 || width <= 0)
            throw new ArgumentException($"image geometry {channels}×{height}×{width} must be positive");
        if (classes <= 0) throw new ArgumentException($"classes {classes} must be positive");
        long expected = (long)labels.Length * channels * height * width;
        if (pixels.Length != expected)
            throw new ArgumentException(
                $"pixels has {pixels.Length} bytes but {labels.Length} images of {channels}×{height}×{width} need {expected}");
        for (int i = 0; i < labels.Length; i++)
        {
            if ((uint)labels[i] >= (uint)classes)
                throw new ArgumentException($"label {labels[i]} of image {i} is outside [0, {classes})");
        }
        Name = name;
        Pixels = pixels;
        Labels = labels;
        Count = labels.Length;
        Channels = channels;
        Height = height;
        Width = width;
        Classes = classes;
    }

    /// <summary>The pixels of image <paramref name="i"/>, [C,H,W].</summary>
    public ReadOnlySpan<byte> Image(int i)
    {
        if ((uint)i >= (uint)Count) throw new ArgumentOutOfRangeException(nameof(i), i, $"expected 0 ≤ i < {Count}");
        int size = ImageSize;
        return new ReadOnlySpan<byte>(Pixels, i * size, size);
    }

    /// <summary>
    /// The first <paramref name="n"/> images (for <c>--limit</c>). Returns this instance when n ≥ Count; otherwise
    /// a copy. The class count is kept, so a model's output size does not change with the limit.
    /// </summary>
    public ImageDataset Take(int n)
    {
        if (n < 0) throw new SpikeSharpException($"limit {n} is negative; expected a count ≥ 0");
        if (n >= Count) return this;
        int size = ImageSize;
        var pixels = new byte[(long)n * size];
        Array.Copy(Pixels, pixels, pixels.Length);
        return new ImageDataset(Name, pixels, Labels.AsSpan(0, n).ToArray(), Channels, Height, Width, Classes);
    }

    /// <summary>A copy holding the images at <paramref name="indices"/>, in that order (repeats allowed).</summary>
    /// <exception cref="ArgumentOutOfRangeException">An index is outside [0, Count).</exception>
    public ImageDataset Subset(int[] indices)
    {
        ArgumentNullException.ThrowIfNull(indices);
        int size = ImageSize;
        var pixels = new byte[(long)indices.Length * size];
        var labels = new int[indices.Length];
        for (int k = 0; k < indices.Length; k++)
        {
            int i = indices[k];
            if ((uint)i >= (uint)Count)
                throw new ArgumentOutOfRangeException(nameof(indices), i, $"index {i} at position {k}; expected 0 ≤ i < {Count}");
            Buffer.BlockCopy(Pixels, i * size, pixels, k * size, size);
            labels[k] = Labels[i];
        }
        return new ImageDataset(Name, pixels, labels, Channels, Height, Width, Classes);
    }

    /// <summary>Number of images per class, [Classes].</summary>
    public int[] ClassCounts()
    {
        var counts = new int[Classes];
        foreach (int label in Labels) counts[label]++;
        return counts;
    }

    public override string ToString() => $"{Name}: {Count} images {Channels}×{Height}×{Width}, {Classes} classes";
}
