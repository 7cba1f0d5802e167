// Tests of the CIFAR-10 AutoAugment policy and its Pillow-compatible ops against goldens computed with Pillow.
using System.Globalization;
using SpikeSharp.Data;
using Xunit;

namespace SpikeSharp.Tests.Data;

public sealed class AutoAugmentTests
{
    private sealed record GoldenImage(int Channels, int Height, int Width, byte[] Pixels);

    private sealed record GoldenCase(string Image, AugmentOp Op, int Bin, int Sign, double Magnitude, byte[] Expected);

    // Parses Fixtures/pil_ops.txt written by tools/make_pil_goldens.py.
    private static (Dictionary<string, GoldenImage> Images, List<GoldenCase> Cases) LoadGoldens()
    {
        var images = new Dictionary<string, GoldenImage>();
        var cases = new List<GoldenCase>();
        foreach (string line in File.ReadLines(RepoPaths.Fixture("pil_ops.txt")))
        {
            if (line.StartsWith('#') || line.Length == 0) continue;
            var f = line.Split(' ');
            if (f[0] == "image")
            {
                images[f[1]] = new GoldenImage(f[2] == "RGB" ? 3 : 1, int.Parse(f[4]), int.Parse(f[3]), Convert.FromHexString(f[5]));
            }
            else
            {
                cases.Add(new GoldenCase(f[1], Enum.Parse<AugmentOp>(f[2]), int.Parse(f[3]), int.Parse(f[4]),
                    double.Parse(f[5], CultureInfo.InvariantCulture), Convert.FromHexString(f[6])));
            }
        }
        return (images, cases);
    }

    [Fact]
    public void EveryOp_MatchesPillowExactly()
    {
        var (images, cases) = LoadGoldens();
        Assert.True(cases.Count > 150, $"only {cases.Count} golden cases");
        var failures = new List<string>();
        foreach (var g in cases)
        {
            var image = images[g.Image];
            if (g.Bin >= 0)
            {
                double magnitude = g.Sign * Cifar10AutoAugment.Magnitude(g.Op, g.Bin, image.Height, image.Width);
                if (magnitude != g.Magnitude) failures.Add($"{g.Op} bin {g.Bin}: magnitude {magnitude:R}, Pillow run used {g.Magnitude:R}");
            }
            var actual = (byte[])image.Pixels.Clone();
            var tmp = new byte[actual.Length];
            Cifar10AutoAugment.ApplyOp(g.Op, g.Magnitude, actual, tmp, image.Channels, image.Height, image.Width);
            int diff = 0, first = -1;
            for (int i = 0; i < actual.Length; i++)
            {
                if (actual[i] == g.Expected[i]) continue;
                diff++;
                if (first < 0) first = i;
            }
            if (diff > 0)
                failures.Add($"{g.Image} {g.Op} {g.Magnitude:R}: {diff} bytes differ, first at {first} ({actual[first]} vs {g.Expected[first]})");
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Fact]
    public void Policy_IsTorchvisionsCifar10Table()
    {
        var p = Cifar10AutoAugment.Policies;
        Assert.Equal(25, p.Length);
        Assert.Equal((new PolicyStep(AugmentOp.Invert, 0.1f, -1), new PolicyStep(AugmentOp.Contrast, 0.2f, 6)), p[0]);
        Assert.Equal((new PolicyStep(AugmentOp.Solarize, 0.5f, 2), new PolicyStep(AugmentOp.Invert, 0.0f, -1)), p[14]);
        Assert.Equal((new PolicyStep(AugmentOp.TranslateY, 0.7f, 9), new PolicyStep(AugmentOp.AutoContrast, 0.9f, -1)), p[24]);
        Assert.Equal(new[] { 8, 8, 7, 7, 6, 6, 5, 5, 4, 4 },
            Enumerable.Range(0, 10).Select(b => (int)Cifar10AutoAugment.Magnitude(AugmentOp.Posterize, b, 32, 32)));
        Assert.Equal(14, (int)Cifar10AutoAugment.Magnitude(AugmentOp.TranslateX, 9, 32, 32));
        Assert.Equal(255.0, Cifar10AutoAugment.Magnitude(AugmentOp.Solarize, 0, 32, 32));
        Assert.Equal(0.0, Cifar10AutoAugment.Magnitude(AugmentOp.Solarize, 9, 32, 32));
        Assert.Equal(30.0, Cifar10AutoAugment.Magnitude(AugmentOp.Rotate, 9, 32, 32));
    }

    [Theory]
    [InlineData(3)]
    [InlineData(1)]
    public void Apply_IsDeterministicVariedAndStaysInRange(int channels)
    {
        var image = FileBuilder.Bytes(channels * 32 * 32, 17);
        var spec = TransformSpec.ForTrain(channels, 32, 32, new Normalization([0.5f], [0.25f]), cropPadding: 0,
            horizontalFlip: false, autoAugment: true);
        var t = new ImageTransform(spec, channels, 32, 32);
        var a = new float[t.OutputSize];
        var b = new float[t.OutputSize];
        int unchanged = 0;
        var distinct = new HashSet<int>();
        for (ulong seed = 0; seed < 300; seed++)
        {
            var r1 = Rng.Create(seed, 1);
            var r2 = Rng.Create(seed, 1);
            t.Apply(image, a, train: true, ref r1);
            t.Apply(image, b, train: true, ref r2);
            Assert.Equal(a, b);
            Assert.All(a, v => Assert.InRange(v, (0f - 0.5f) / 0.25f, (1f - 0.5f) / 0.25f));
            if (a.Select((v, i) => MathF.Round((v * 0.25f + 0.5f) * 255f) == image[i]).All(x => x)) unchanged++;
            distinct.Add(HashCode.Combine(a[0], a[100], a[500], a[1000], a[^1]));
        }
        Assert.InRange(unchanged, 1, 150); // some draws apply no op; most change the image
        Assert.True(distinct.Count > 30, $"only {distinct.Count} distinct outputs"); // outcomes are discrete: policy × applied steps × signs
    }

    [Fact]
    public void Rotation_ByZeroIsTheIdentity()
    {
        Assert.Null(PilOps.Rotation(0, 8, 8));
        Assert.Null(PilOps.Rotation(-360, 8, 8));
        Assert.NotNull(PilOps.Rotation(-6.5, 8, 8));
    }

    [Fact]
    public void Blend_TruncatesAndClampsLikePillow()
    {
        Assert.Equal(0, PilOps.Blend(100, 0, 1.9f));
        Assert.Equal(255, PilOps.Blend(10, 200, 1.9f));
        Assert.Equal(75, PilOps.Blend(100, 51, 0.5f)); // 75.5 truncates
        Assert.Equal(64, PilOps.Blend(128, 0, 0.5f));
    }
}
