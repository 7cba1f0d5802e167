// Tests of TransformSpec/ImageTransform: padding and channel repeat, normalization, crop, flip, cutout, validation.
using SpikeSharp.Data;
using Xunit;

namespace SpikeSharp.Tests.Data;

public sealed class TransformTests
{
    // Mean 0, std 1: outputs are v/255 exactly, so uint8 values can be read back.
    private static readonly Normalization Unit = new([0f], [1f]);

    private static float[] Run(TransformSpec spec, byte[] image, int c, int h, int w, bool train = false, ulong seed = 0)
    {
        var t = new ImageTransform(spec, c, h, w);
        var output = new float[t.OutputSize];
        var rng = new Rng(seed);
        t.Apply(image, output, train, ref rng);
        return output;
    }

    private static int[] Levels(float[] values) => values.Select(v => (int)MathF.Round(v * 255f)).ToArray();

    // Distinct non-zero values so that every pixel's origin can be identified.
    private static byte[] Ramp(int count) => Enumerable.Range(0, count).Select(i => (byte)(i % 250 + 1)).ToArray();

    [Fact]
    public void Pad28To32_CentresWithBlackAndRepeatsTheChannel()
    {
        var image = Ramp(28 * 28);
        var norm = Datasets.DefaultNormalization("mnist");

        var output = Run(TransformSpec.ForEval(3, 32, 32, norm), image, 1, 28, 28);

        Assert.Equal(3 * 32 * 32, output.Length);
        float black = (0f / 255f - 0.1307f) / 0.3081f;
        for (int c = 0; c < 3; c++)
        {
            for (int y = 0; y < 32; y++)
            {
                for (int x = 0; x < 32; x++)
                {
                    bool inside = y >= 2 && y < 30 && x >= 2 && x < 30;
                    float expected = inside ? (image[(y - 2) * 28 + (x - 2)] / 255f - 0.1307f) / 0.3081f : black;
                    Assert.Equal(expected, output[c * 1024 + y * 32 + x]);
                }
            }
        }
    }

    [Fact]
    public void OddPadding_PutsTheExtraRowAndColumnAfter()
    {
        var output = Levels(Run(TransformSpec.ForEval(1, 5, 4, Unit), [9, 9, 9, 9], 1, 2, 2));

        Assert.Equal(new[]
        {
            0, 0, 0, 0,
            0, 9, 9, 0,
            0, 9, 9, 0,
            0, 0, 0, 0,
            0, 0, 0, 0,
        }, output);
    }

    [Fact]
    public void Normalize_UsesPerChannelStatistics()
    {
        var image = new byte[3 * 4];
        image[0] = 255; image[4] = 0; image[8] = 128;
        var norm = Datasets.DefaultNormalization("cifar10");

        var output = Run(TransformSpec.ForEval(3, 2, 2, norm), image, 3, 2, 2);

        Assert.Equal((1f - 0.4914f) / 0.2023f, output[0]);
        Assert.Equal((0f - 0.4822f) / 0.1994f, output[4]);
        Assert.Equal((128f / 255f - 0.4465f) / 0.2010f, output[8]);
        Assert.Equal(2.514088f, output[0], 1e-5f);
    }

    [Fact]
    public void Eval_IgnoresAugmentationFlags()
    {
        var image = FileBuilder.Bytes(3 * 32 * 32, 4);
        var norm = Datasets.DefaultNormalization("cifar10");
        var train = TransformSpec.ForTrain(3, 32, 32, norm, autoAugment: true, cutoutLength: 16);

        Assert.Equal(Run(TransformSpec.ForEval(3, 32, 32, norm), image, 3, 32, 32), Run(train, image, 3, 32, 32, train: false, seed: 5));
    }

    [Fact]
    public void RandomCrop_ShiftsByAtMostThePaddingAndFillsWithZero()
    {
        const int H = 12, W = 10, P = 4;
        var image = Ramp(H * W);
        var spec = new TransformSpec(1, H, W, Unit, CropPadding: P);
        var shifts = new HashSet<(int, int)>();
        for (ulong seed = 0; seed < 1000; seed++)
        {
            var output = Levels(Run(spec, image, 1, H, W, train: true, seed));
            // The shift is read off the first non-zero output pixel (input values are distinct and non-zero).
            int first = Array.FindIndex(output, v => v != 0);
            int src = Array.IndexOf(image, (byte)output[first]);
            int dy = src / W - first / W, dx = src % W - first % W;
            Assert.InRange(dy, -P, P);
            Assert.InRange(dx, -P, P);
            for (int y = 0; y < H; y++)
            {
                for (int x = 0; x < W; x++)
                {
                    int sy = y + dy, sx = x + dx;
                    int expected = sy >= 0 && sy < H && sx >= 0 && sx < W ? image[sy * W + sx] : 0;
                    Assert.Equal(expected, output[y * W + x]);
                }
            }
            shifts.Add((dy, dx));
        }
        Assert.Equal(81, shifts.Count); // every shift in [-4, 4]² occurs
    }

    [Fact]
    public void HorizontalFlip_MirrorsRowsAboutHalfTheTime()
    {
        const int H = 3, W = 5;
        var image = Ramp(2 * H * W);
        var spec = new TransformSpec(2, H, W, Unit, HorizontalFlip: true);
        var mirrored = new int[2 * H * W];
        for (int i = 0; i < mirrored.Length; i++) mirrored[i] = image[i / W * W + (W - 1 - i % W)];
        int flips = 0;
        for (ulong seed = 0; seed < 400; seed++)
        {
            var output = Levels(Run(spec, image, 2, H, W, train: true, seed));
            if (output.SequenceEqual(mirrored)) flips++;
            else Assert.Equal(image.Select(b => (int)b), output);
        }
        Assert.InRange(flips, 150, 250);
    }

    [Fact]
    public void Cutout_ZeroesOneClippedSquareInEveryChannel()
    {
        const int H = 32, W = 32, L = 16;
        var image = Enumerable.Repeat((byte)200, 3 * H * W).ToArray();
        var spec = new TransformSpec(3, H, W, Datasets.DefaultNormalization("cifar10"), CutoutLength: L);
        var norm0 = (200f / 255f - 0.4914f) / 0.2023f;
        bool sawClipped = false, sawFull = false;
        for (ulong seed = 0; seed < 200; seed++)
        {
            var output = Run(spec, image, 3, H, W, train: true, seed);
            var zero = Enumerable.Range(0, H * W).Where(i => output[i] == 0f).ToArray();
            int y1 = zero.Min() / W, y2 = zero.Max() / W + 1;
            int x1 = zero.Min(i => i % W), x2 = zero.Max(i => i % W) + 1;
            Assert.Equal((y2 - y1) * (x2 - x1), zero.Length); // a filled rectangle
            Assert.True(y2 - y1 <= L && x2 - x1 <= L);
            Assert.True(y2 - y1 == L || y1 == 0 || y2 == H, "rows are clipped only at a border");
            Assert.True(x2 - x1 == L || x1 == 0 || x2 == W, "columns are clipped only at a border");
            sawFull |= y2 - y1 == L && x2 - x1 == L;
            sawClipped |= y2 - y1 < L || x2 - x1 < L;
            for (int c = 0; c < 3; c++)
            {
                for (int i = 0; i < H * W; i++)
                {
                    bool hole = i / W >= y1 && i / W < y2 && i % W >= x1 && i % W < x2;
                    if (hole) Assert.Equal(0f, output[c * H * W + i]);
                    else if (c == 0) Assert.Equal(norm0, output[i]);
                }
            }
        }
        Assert.True(sawFull && sawClipped);
    }

    [Fact]
    public void Augmentation_IsDeterministicForARandomStream()
    {
        var image = FileBuilder.Bytes(3 * 32 * 32, 9);
        var spec = TransformSpec.ForTrain("cifar10", 3, 32, 32, autoAugment: true, cutoutLength: 16);

        var a = Run(spec, image, 3, 32, 32, train: true, seed: 42);
        var b = Run(spec, image, 3, 32, 32, train: true, seed: 42);
        var c = Run(spec, image, 3, 32, 32, train: true, seed: 43);

        Assert.Equal(a, b);
        Assert.NotEqual(a, c);
    }

    [Fact]
    public void Validate_RejectsTargetsTheImagesDoNotFit()
    {
        var norm = Datasets.DefaultNormalization("cifar10");
        var cifar = SyntheticData.Random(1, 3, 32, 32);

        var smaller = Assert.Throws<SpikeSharpException>(() => TransformSpec.ForEval(3, 28, 28, norm).Validate(cifar));
        var channels = Assert.Throws<SpikeSharpException>(() => TransformSpec.ForEval("mnist", 1, 32, 32).Validate(cifar));
        var stats = Assert.Throws<SpikeSharpException>(() => new TransformSpec(1, 32, 32, norm).Validate(1, 28, 28));

        Assert.Contains("the 32×32 images of 'synthetic' are larger than the transform target 28×28", smaller.Message);
        Assert.Contains("cannot turn the 3-channel images of 'synthetic' into 1 channel(s)", channels.Message);
        Assert.Contains("normalization has 3 mean(s) and 3 std(s) for 1-channel images; expected 1 or 1", stats.Message);
        Assert.Throws<SpikeSharpException>(() => (TransformSpec.ForEval(3, 32, 32, norm) with { CropPadding = -1 }).Validate(cifar));
        Assert.Throws<SpikeSharpException>(() => new TransformSpec(3, 32, 32, new Normalization([0f], [0f])).Validate(cifar));
    }
}
