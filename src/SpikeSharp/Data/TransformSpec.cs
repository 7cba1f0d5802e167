// What the image pipeline does to each sample (geometry, normalization, augmentation); the work is in ImageTransform.
namespace SpikeSharp.Data;

/// <summary>
/// Per-channel normalization over pixels scaled to [0, 1]: <c>x = (p/255 − Mean[c]) / Std[c]</c>. One-element
/// arrays apply to every channel (e.g. MNIST statistics after repeating the channel three times).
/// </summary>
public sealed record Normalization(float[] Mean, float[] Std)
{
    /// <summary>Mean for channel <paramref name="c"/>, broadcasting a single value.</summary>
    public float MeanOf(int c) => Mean.Length == 1 ? Mean[0] : Mean[c];

    /// <summary>Std for channel <paramref name="c"/>, broadcasting a single value.</summary>
    public float StdOf(int c) => Std.Length == 1 ? Std[0] : Std[c];

    /// <summary>Checks that the statistics fit <paramref name="channels"/> channels and every std is positive.</summary>
    /// <exception cref="SpikeSharpException">They do not.</exception>
    public void Validate(int channels)
    {
        if (Mean is null || Std is null) throw new SpikeSharpException("normalization needs both mean and std");
        if (Mean.Length != Std.Length || (Mean.Length != 1 && Mean.Length != channels))
        {
            throw new SpikeSharpException(
                $"normalization has {Mean.Length} mean(s) and {Std.Length} std(s) for {channels}-channel images; " +
                $"expected 1 or {channels} of each");
        }
        for (int c = 0; c < Std.Length; c++)
        {
            if (!(Std[c] > 0) || !float.IsFinite(Std[c]) || !float.IsFinite(Mean[c]))
                throw new SpikeSharpException($"normalization mean {Mean[c]}, std {Std[c]} for channel {c}; expected finite values and std > 0");
        }
    }

    public override string ToString() => $"mean ({string.Join(", ", Mean)}), std ({string.Join(", ", Std)})";
}

/// <summary>
/// The per-image pipeline: uint8 → pad (centred, black) and repeat a single channel to the target geometry →
/// (training only) random crop with zero padding, horizontal flip, CIFAR-10 AutoAugment on uint8 → float /255 →
/// normalize per channel → (training only) Cutout → batch tensor. Augmentation flags are ignored when the
/// loader is not in training mode.
/// </summary>
/// <param name="Channels">Target channels (1, or 3; one-channel images are repeated).</param>
/// <param name="Height">Target height; smaller images are padded with black, centred (28→32 pads 2 each side).</param>
/// <param name="Width">Target width; as for <paramref name="Height"/>.</param>
/// <param name="Norm">Per-channel normalization.</param>
/// <param name="CropPadding">RandomCrop(H×W, padding) with zero padding; 0 = off, 4 = the usual CIFAR crop.</param>
/// <param name="HorizontalFlip">Flip left-right with probability 0.5.</param>
/// <param name="AutoAugment">torchvision's AutoAugment with the CIFAR-10 policy (25 sub-policies).</param>
/// <param name="CutoutLength">Cutout (DeVries &amp; Taylor) of one square hole of this side, after normalization; 0 = off.</param>
public sealed record TransformSpec(
    int Channels,
    int Height,
    int Width,
    Normalization Norm,
    int CropPadding = 0,
    bool HorizontalFlip = false,
    bool AutoAugment = false,
    int CutoutLength = 0)
{
    /// <summary>Whether any random augmentation is switched on.</summary>
    public bool HasAugmentation => CropPadding > 0 || HorizontalFlip || AutoAugment || CutoutLength > 0;

    /// <summary>Evaluation pipeline: geometry and normalization only.</summary>
    public static TransformSpec ForEval(int channels, int height, int width, Normalization norm) =>
        new(channels, height, width, norm);

    /// <summary>Evaluation pipeline with the dataset's default normalization.</summary>
    public static TransformSpec ForEval(string dataset, int channels, int height, int width) =>
        new(channels, height, width, Datasets.DefaultNormalization(dataset));

    /// <summary>Training pipeline; the defaults are the standard CIFAR recipe (crop with padding 4, flip).</summary>
    public static TransformSpec ForTrain(int channels, int height, int width, Normalization norm, int cropPadding = 4,
        bool horizontalFlip = true, bool autoAugment = false, int cutoutLength = 0) =>
        new(channels, height, width, norm, cropPadding, horizontalFlip, autoAugment, cutoutLength);

    /// <summary>Training pipeline with the dataset's default normalization.</summary>
    public static TransformSpec ForTrain(string dataset, int channels, int height, int width, int cropPadding = 4,
        bool horizontalFlip = true, bool autoAugment = false, int cutoutLength = 0) =>
        new(channels, height, width, Datasets.DefaultNormalization(dataset), cropPadding, horizontalFlip, autoAugment, cutoutLength);

    /// <summary>Checks the options and that images of the given geometry can be brought to the target.</summary>
    /// <exception cref="SpikeSharpException">An option is out of range or the geometry does not fit.</exception>
    public void Validate(int sourceChannels, int sourceHeight, int sourceWidth, string datasetName = "the dataset")
    {
        if (Channels is not (1 or 3) && Channels != sourceChannels)
            throw new SpikeSharpException($"transform target has {Channels} channels; expected 1 or 3 (or the images' own {sourceChannels})");
        if (Height <= 0 || Width <= 0 || Height > IdxReader.MaxSide || Width > IdxReader.MaxSide)
            throw new SpikeSharpException($"transform target {Height}×{Width}; expected sides in 1..{IdxReader.MaxSide}");
        if (sourceChannels != Channels && sourceChannels != 1)
        {
            throw new SpikeSharpException(
                $"cannot turn the {sourceChannels}-channel images of {datasetName} into {Channels} channel(s); expected a " +
                $"target of {sourceChannels} channels (only 1-channel images can be repeated)");
        }
        if (sourceHeight > Height || sourceWidth > Width)
        {
            throw new SpikeSharpException(
                $"the {sourceHeight}×{sourceWidth} images of {datasetName} are larger than the transform target {Height}×{Width}; " +
                $"expected a target of at least {sourceHeight}×{sourceWidth} (images are padded, never cropped or resized)");
        }
        if (Norm is null) throw new SpikeSharpException("transform needs a normalization; use Datasets.DefaultNormalization(name)");
        Norm.Validate(Channels);
        if (CropPadding < 0 || CropPadding > Math.Max(Height, Width))
            throw new SpikeSharpException($"crop padding {CropPadding}; expected 0 (off) to {Math.Max(Height, Width)}");
        if (CutoutLength < 0 || CutoutLength > 2 * Math.Max(Height, Width))
            throw new SpikeSharpException($"cutout length {CutoutLength}; expected 0 (off) to {2 * Math.Max(Height, Width)}");
    }

    /// <summary>Checks the options against a dataset's image geometry.</summary>
    public void Validate(ImageSet data) => Validate(data.Channels, data.Height, data.Width, $"'{data.Name}'");
}
