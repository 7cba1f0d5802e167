using SpikeSharp.Autograd;
using SpikeSharp.Nn;

namespace SpikeSharp.Models;

/// <summary>
/// VGG-16 as in the QCFS/SRP/COS code (spec §0, keys §9): five blocks <c>layer1..layer5</c> of
/// (Conv3×3 with bias, BN, activation, Dropout(0)) then AvgPool 2×2; head <c>classifier</c> = Flatten,
/// Linear→4096, act, Dropout, Linear 4096→4096, act, Dropout, Linear→K. The head's input is
/// 512·(H/32)·(W/32): 512 for 32×32 (CIFAR head), 25088 for 224×224 (ImageNet head).
/// </summary>
public sealed class Vgg : ModuleChain
{
    private static readonly int[][] Blocks = [[64, 64], [128, 128], [256, 256, 256], [512, 512, 512], [512, 512, 512]];

    private readonly Sequential[] _layers;
    private readonly Sequential _classifier;

    private Vgg(ModelSpec spec, Random rng)
    {
        var act = spec.ActivationOrDefault;
        int c = spec.InChannels, h = spec.Height, w = spec.Width;
        _layers = new Sequential[Blocks.Length];
        for (int b = 0; b < Blocks.Length; b++)
        {
            var block = new Sequential();
            foreach (int width in Blocks[b])
            {
                int outC = spec.Scaled(width);
                block.Add(new Conv2d(c, outC, 3, 1, 1, bias: true, rng: rng)).Add(new BatchNorm(outC)).Add(act.Create()).Add(new Dropout(0f));
                c = outC;
            }
            block.Add(new AvgPool2d(2));
            h /= 2; w /= 2;
            _layers[b] = AddModule($"layer{b + 1}", block);
        }
        int hidden = spec.Scaled(4096);
        _classifier = AddModule("classifier", new Sequential(
            new Flatten(), new Linear(c * h * w, hidden, rng: rng), act.Create(), new Dropout(0f),
            new Linear(hidden, hidden, rng: rng), act.Create(), new Dropout(0f), new Linear(hidden, spec.Classes, rng: rng)));
    }

    public static Vgg Create(ModelSpec spec, Random rng) => new(spec, rng);
}
