using SpikeSharp.Autograd;
using SpikeSharp.Nn;

namespace SpikeSharp.Models;

/// <summary>A small, fast CNN for demos and tests: <c>features</c> = (Conv3×3 32, BN, act, AvgPool2,
/// Conv3×3 64, BN, act, AvgPool2); <c>classifier</c> = Flatten, Linear→128, act, Linear→K.
/// About 4 M MACs per 28×28 image.</summary>
public sealed class CnnSmall : ModuleChain
{
    private CnnSmall(ModelSpec spec, Random rng)
    {
        var act = spec.ActivationOrDefault;
        int c1 = spec.Scaled(32), c2 = spec.Scaled(64), hidden = spec.Scaled(128);
        AddModule("features", new Sequential(
            new Conv2d(spec.InChannels, c1, 3, 1, 1, bias: false, rng: rng), new BatchNorm(c1), act.Create(), new AvgPool2d(2),
            new Conv2d(c1, c2, 3, 1, 1, bias: false, rng: rng), new BatchNorm(c2), act.Create(), new AvgPool2d(2)));
        int flat = c2 * (spec.Height / 4) * (spec.Width / 4);
        AddModule("classifier", new Sequential(new Flatten(), new Linear(flat, hidden, rng: rng), act.Create(), new Linear(hidden, spec.Classes, rng: rng)));
    }

    public static CnnSmall Create(ModelSpec spec, Random rng) => new(spec, rng);
}
