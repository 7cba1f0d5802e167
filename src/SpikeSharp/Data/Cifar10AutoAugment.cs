// torchvision's AutoAugment with the CIFAR-10 policy: the 25 learned sub-policies, their magnitudes and random draws.
namespace SpikeSharp.Data;

/// <summary>The image operations AutoAugment chooses from.</summary>
internal enum AugmentOp : byte
{
    ShearX, ShearY, TranslateX, TranslateY, Rotate, Brightness, Color, Contrast, Sharpness,
    Posterize, Solarize, AutoContrast, Equalize, Invert,
}

/// <summary>One step of a sub-policy: apply <see cref="Op"/> with probability <see cref="Probability"/> at
/// magnitude bin <see cref="Bin"/> (0..9; −1 for ops without a magnitude).</summary>
internal readonly record struct PolicyStep(AugmentOp Op, float Probability, int Bin);

/// <summary>
/// <c>torchvision.transforms.AutoAugment(AutoAugmentPolicy.CIFAR10)</c> with its defaults (nearest interpolation,
/// fill 0), applied to uint8 [C,H,W] images through <see cref="PilOps"/>. Per image: pick one of 25 sub-policies
/// uniformly, draw two probabilities and two signs, then run each of the sub-policy's two steps whose drawn
/// probability is ≤ the step's. Magnitudes come from 10 bins as in <c>_augmentation_space(10, (H, W))</c>.
/// </summary>
internal static class Cifar10AutoAugment
{
    private const int Bins = 10;

    /// <summary>The 25 CIFAR-10 sub-policies, in torchvision's order.</summary>
    public static readonly (PolicyStep First, PolicyStep Second)[] Policies =
    [
        (new(AugmentOp.Invert, 0.1f, -1), new(AugmentOp.Contrast, 0.2f, 6)),
        (new(AugmentOp.Rotate, 0.7f, 2), new(AugmentOp.TranslateX, 0.3f, 9)),
        (new(AugmentOp.Sharpness, 0.8f, 1), new(AugmentOp.Sharpness, 0.9f, 3)),
        (new(AugmentOp.ShearY, 0.5f, 8), new(AugmentOp.TranslateY, 0.7f, 9)),
        (new(AugmentOp.AutoContrast, 0.5f, -1), new(AugmentOp.Equalize, 0.9f, -1)),
        (new(AugmentOp.ShearY, 0.2f, 7), new(AugmentOp.Posterize, 0.3f, 7)),
        (new(AugmentOp.Color, 0.4f, 3), new(AugmentOp.Brightness, 0.6f, 7)),
        (new(AugmentOp.Sharpness, 0.3f, 9), new(AugmentOp.Brightness, 0.7f, 9)),
        (new(AugmentOp.Equalize, 0.6f, -1), new(AugmentOp.Equalize, 0.5f, -1)),
        (new(AugmentOp.Contrast, 0.6f, 7), new(AugmentOp.Sharpness, 0.6f, 5)),
        (new(AugmentOp.Color, 0.7f, 7), new(AugmentOp.TranslateX, 0.5f, 8)),
        (new(AugmentOp.Equalize, 0.3f, -1), new(AugmentOp.AutoContrast, 0.4f, -1)),
        (new(AugmentOp.TranslateY, 0.4f, 3), new(AugmentOp.Sharpness, 0.2f, 6)),
        (new(AugmentOp.Brightness, 0.9f, 6), new(AugmentOp.Color, 0.2f, 8)),
        (new(AugmentOp.Solarize, 0.5f, 2), new(AugmentOp.Invert, 0.0f, -1)),
        (new(AugmentOp.Equalize, 0.2f, -1), new(AugmentOp.AutoContrast, 0.6f, -1)),
        (new(AugmentOp.Equalize, 0.2f, -1), new(AugmentOp.Equalize, 0.6f, -1)),
        (new(AugmentOp.Color, 0.9f, 9), new(AugmentOp.Equalize, 0.6f, -1)),
        (new(AugmentOp.AutoContrast, 0.8f, -1), new(AugmentOp.Solarize, 0.2f, 8)),
        (new(AugmentOp.Brightness, 0.1f, 3), new(AugmentOp.Color, 0.7f, 0)),
        (new(AugmentOp.Solarize, 0.4f, 5), new(AugmentOp.AutoContrast, 0.9f, -1)),
        (new(AugmentOp.TranslateY, 0.9f, 9), new(AugmentOp.TranslateY, 0.7f, 9)),
        (new(AugmentOp.AutoContrast, 0.9f, -1), new(AugmentOp.Solarize, 0.8f, 3)),
        (new(AugmentOp.Equalize, 0.8f, -1), new(AugmentOp.Invert, 0.1f, -1)),
        (new(AugmentOp.TranslateY, 0.7f, 9), new(AugmentOp.AutoContrast, 0.9f, -1)),
    ];

    /// <summary>Whether a random sign is applied to the op's magnitude.</summary>
    public static bool IsSigned(AugmentOp op) => op <= AugmentOp.Sharpness;

    /// <summary>
    /// Unsigned magnitude of bin <paramref name="bin"/>, a float32 <c>linspace</c> as in torchvision: shear 0..0.3,
    /// translate 0..150/331 of the side, rotate 0..30°, enhancers 0..0.9, posterize 8 − round(bin/2.25) bits,
    /// solarize threshold 255..0.
    /// </summary>
    public static double Magnitude(AugmentOp op, int bin, int height, int width)
    {
        if (bin < 0) return 0;
        return op switch
        {
            AugmentOp.ShearX or AugmentOp.ShearY => Linspace(0, 0.3, bin),
            AugmentOp.TranslateX => Linspace(0, 150.0 / 331.0 * width, bin),
            AugmentOp.TranslateY => Linspace(0, 150.0 / 331.0 * height, bin),
            AugmentOp.Rotate => Linspace(0, 30.0, bin),
            AugmentOp.Brightness or AugmentOp.Color or AugmentOp.Contrast or AugmentOp.Sharpness => Linspace(0, 0.9, bin),
            AugmentOp.Posterize => 8 - (int)Math.Round(bin / ((Bins - 1) / 4.0), MidpointRounding.ToEven),
            AugmentOp.Solarize => Linspace(255.0, 0, bin),
            _ => 0,
        };
    }

    /// <summary>Applies one randomly chosen sub-policy in place; draws policy, 2 probabilities, 2 signs.</summary>
    public static void Apply(Span<byte> img, Span<byte> tmp, int channels, int height, int width, ref Rng rng)
    {
        int id = rng.NextInt(Policies.Length);
        float p0 = rng.NextFloat(), p1 = rng.NextFloat();
        bool negative0 = !rng.NextBool(), negative1 = !rng.NextBool(); // torchvision: sign 0 means negative
        var (first, second) = Policies[id];
        Step(first, p0, negative0, img, tmp, channels, height, width);
        Step(second, p1, negative1, img, tmp, channels, height, width);
    }

    private static void Step(in PolicyStep step, float drawn, bool negative, Span<byte> img, Span<byte> tmp,
        int channels, int height, int width)
    {
        if (drawn > step.Probability) return;
        double magnitude = Magnitude(step.Op, step.Bin, height, width);
        if (negative && IsSigned(step.Op)) magnitude = -magnitude;
        ApplyOp(step.Op, magnitude, img, tmp, channels, height, width);
    }

    /// <summary>torchvision's <c>_apply_op(img, op, magnitude)</c> for PIL images.</summary>
    public static void ApplyOp(AugmentOp op, double magnitude, Span<byte> img, Span<byte> tmp, int channels, int height, int width)
    {
        int plane = height * width;
        var pixels = img[..(channels * plane)];
        switch (op)
        {
            case AugmentOp.ShearX:
                // torchvision shears by atan(magnitude) degrees about (0, 0): input x = x + magnitude·y.
                PilOps.Affine(img, tmp, channels, height, width,
                    PilOps.InverseAffine(0, 0, 0, 0, 0, PilOps.Degrees(Math.Atan(magnitude)), 0));
                break;
            case AugmentOp.ShearY:
                PilOps.Affine(img, tmp, channels, height, width,
                    PilOps.InverseAffine(0, 0, 0, 0, 0, 0, PilOps.Degrees(Math.Atan(magnitude))));
                break;
            case AugmentOp.TranslateX:
                PilOps.Affine(img, tmp, channels, height, width,
                    PilOps.InverseAffine(width * 0.5, height * 0.5, 0, (int)magnitude, 0, 0, 0));
                break;
            case AugmentOp.TranslateY:
                PilOps.Affine(img, tmp, channels, height, width,
                    PilOps.InverseAffine(width * 0.5, height * 0.5, 0, 0, (int)magnitude, 0, 0));
                break;
            case AugmentOp.Rotate:
                if (PilOps.Rotation(magnitude, height, width) is { } rotation)
                    PilOps.Affine(img, tmp, channels, height, width, rotation);
                break;
            case AugmentOp.Brightness:
                PilOps.Brightness(pixels, (float)(1.0 + magnitude));
                break;
            case AugmentOp.Color:
                PilOps.Color(img, channels, height, width, (float)(1.0 + magnitude));
                break;
            case AugmentOp.Contrast:
                PilOps.Contrast(img, channels, height, width, (float)(1.0 + magnitude));
                break;
            case AugmentOp.Sharpness:
                PilOps.Sharpness(img, tmp, channels, height, width, (float)(1.0 + magnitude));
                break;
            case AugmentOp.Posterize:
                PilOps.Posterize(pixels, (int)magnitude);
                break;
            case AugmentOp.Solarize:
                PilOps.Solarize(pixels, magnitude);
                break;
            case AugmentOp.AutoContrast:
                PilOps.AutoContrast(img, channels, plane);
                break;
            case AugmentOp.Equalize:
                PilOps.Equalize(img, channels, plane);
                break;
            case AugmentOp.Invert:
                PilOps.Invert(pixels);
                break;
        }
    }

    // torch.linspace(start, end, 10)[bin] in float32, with torch's two-sided CPU kernel (from the start for the
    // first half, from the end for the second), so values match torchvision to the last bit.
    private static double Linspace(double start, double end, int bin)
    {
        float s = (float)start, e = (float)end;
        float step = (e - s) / (Bins - 1);
        return bin < Bins / 2 ? s + step * bin : e - step * (Bins - 1 - bin);
    }
}
