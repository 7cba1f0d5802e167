// What the data loader batches: labelled images of one geometry, held in memory or decoded from files on demand.
namespace SpikeSharp.Data;

/// <summary>
/// A labelled image classification set whose images all come out as uint8 [C,H,W] of one geometry:
/// <see cref="ImageDataset"/> holds them in memory (IDX, CIFAR), <see cref="ImageFolder"/> decodes, resizes and crops
/// files on demand. The <see cref="DataLoader"/> reads images through <see cref="Read"/> and applies the
/// <see cref="TransformSpec"/> (normalization, augmentation) on top.
/// </summary>
public abstract class ImageSet
{
    protected ImageSet(string name, int[] labels, int channels, int height, int width, int classes)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(labels);
        if (channels <= 0 || height <= 0 || width <= 0)
            throw new ArgumentException($"image geometry {channels}×{height}×{width} must be positive");
        if (classes <= 0) throw new ArgumentException($"classes {classes} must be positive");
        for (int i = 0; i < labels.Length; i++)
        {
            if ((uint)labels[i] >= (uint)classes)
                throw new ArgumentException($"label {labels[i]} of image {i} is outside [0, {classes})");
        }
        (Name, Labels, Channels, Height, Width, Classes) = (name, labels, channels, height, width, classes);
    }

    /// <summary>Class index of each image, [N].</summary>
    public int[] Labels { get; }

    /// <summary>Number of images N.</summary>
    public int Count => Labels.Length;

    /// <summary>Channels per image C (1 for MNIST, 3 for CIFAR and image folders).</summary>
    public int Channels { get; }

    /// <summary>Image height H in pixels, as <see cref="Read"/> delivers it.</summary>
    public int Height { get; }

    /// <summary>Image width W in pixels, as <see cref="Read"/> delivers it.</summary>
    public int Width { get; }

    /// <summary>Number of classes; every label is below it.</summary>
    public int Classes { get; }

    /// <summary>Short dataset name for messages and reports, e.g. <c>mnist</c> or <c>imagefolder</c>.</summary>
    public string Name { get; }

    /// <summary>Bytes per image, C·H·W.</summary>
    public int ImageSize => Channels * Height * Width;

    /// <summary>Threads worth spending on <see cref="Read"/>: 1 for images already in memory, more where reading
    /// decodes files, so the loader decodes several images at once.</summary>
    public virtual int ReadWorkers => 1;

    /// <summary>
    /// Image <paramref name="index"/> as uint8 [C,H,W]: a view of memory, or decoded into <paramref name="scratch"/>
    /// (length <see cref="ImageSize"/>). Sets that augment while reading (an image folder's random-resized crop) draw
    /// from <paramref name="rng"/> only when <paramref name="train"/> is true.
    /// </summary>
    public abstract ReadOnlySpan<byte> Read(int index, Span<byte> scratch, bool train, ref Rng rng);

    /// <summary>
    /// The first <paramref name="n"/> images (for <c>--limit</c>); this instance when n ≥ Count. The class count is
    /// kept, so a model's output size does not change with the limit.
    /// </summary>
    public ImageSet Take(int n)
    {
        if (n < 0) throw new SpikeSharpException($"limit {n} is negative; expected a count ≥ 0");
        return n >= Count ? this : Subset(Enumerable.Range(0, n).ToArray());
    }

    /// <summary>The images at <paramref name="indices"/>, in that order (repeats allowed).</summary>
    /// <exception cref="ArgumentOutOfRangeException">An index is outside [0, Count).</exception>
    public ImageSet Subset(int[] indices)
    {
        ArgumentNullException.ThrowIfNull(indices);
        for (int k = 0; k < indices.Length; k++)
        {
            if ((uint)indices[k] >= (uint)Count)
                throw new ArgumentOutOfRangeException(nameof(indices), indices[k], $"index {indices[k]} at position {k}; expected 0 ≤ i < {Count}");
        }
        return SubsetOf(indices);
    }

    /// <summary><see cref="Subset"/> after its indices were checked.</summary>
    protected abstract ImageSet SubsetOf(int[] indices);

    /// <summary>Number of images per class, [Classes].</summary>
    public int[] ClassCounts()
    {
        var counts = new int[Classes];
        foreach (int label in Labels) counts[label]++;
        return counts;
    }

    public override string ToString() => $"{Name}: {Count} images {Channels}×{Height}×{Width}, {Classes} classes";
}
