using SpikeSharp.Autograd;
using SpikeSharp.Autograd.Ops;
using SpikeSharp.Nn;

namespace SpikeSharp.Models;

/// <summary>
/// CIFAR-style ResNets (spec §0, keys §9): stem <c>conv1</c> = (Conv3×3 no bias, BN, act), stages
/// <c>conv2_x</c>, <c>conv3_x</c>, … of <see cref="BasicBlock"/>s, global average pool, <c>fc</c>.
/// ResNet-20: 16/32/64 channels × 3 blocks; ResNet-18/34: 64/128/256/512 × (2,2,2,2)/(3,4,6,3).
/// </summary>
public sealed class ResNet : ModuleChain
{
    private ResNet(ModelSpec spec, int[] blocks, int[] widths, Random rng)
    {
        var act = spec.ActivationOrDefault;
        int c = spec.Scaled(widths[0]);
        AddModule("conv1", new Sequential(new Conv2d(spec.InChannels, c, 3, 1, 1, bias: false, rng: rng), new BatchNorm(c), act.Create()));
        for (int s = 0; s < blocks.Length; s++)
        {
            var stage = new Sequential();
            int outC = spec.Scaled(widths[s]);
            for (int b = 0; b < blocks[s]; b++)
            {
                stage.Add(new BasicBlock(c, outC, b == 0 && s > 0 ? 2 : 1, act, rng));
                c = outC;
            }
            AddModule($"conv{s + 2}_x", stage);
        }
        AddModule("avg_pool", new GlobalAvgPool2d());
        AddModule("fc", new Linear(c, spec.Classes, rng: rng));
    }

    public static ResNet Create(ModelSpec spec, int[] blocks, int[] widths, Random rng) => new(spec, blocks, widths, rng);
}

/// <summary>act(BN(conv(act(BN(conv(x))))) + shortcut(x)); children <c>residual_function</c> (0 conv, 1 BN, 2 act,
/// 3 conv, 4 BN), <c>shortcut</c> (empty, or 0 conv1×1, 1 BN where the shape changes) and <c>relu</c>.</summary>
public sealed class BasicBlock : Module
{
    public BasicBlock(int inC, int outC, int stride, ActivationSpec act, Random rng)
    {
        AddModule("residual_function", new Sequential(
            new Conv2d(inC, outC, 3, stride, 1, bias: false, rng: rng), new BatchNorm(outC), act.Create(),
            new Conv2d(outC, outC, 3, 1, 1, bias: false, rng: rng), new BatchNorm(outC)));
        var shortcut = new Sequential();
        if (stride != 1 || inC != outC)
            shortcut.Add(new Conv2d(inC, outC, 1, stride, 0, bias: false, rng: rng)).Add(new BatchNorm(outC));
        AddModule("shortcut", shortcut);
        AddModule("relu", act.Create());
    }

    public Module Residual => Children[0].Value;
    public Module Shortcut => Children[1].Value;
    public Module OutputActivation => Children[2].Value;

    public override Variable Forward(Variable x)
    {
        if (Fusion.ConvolutionsEnabled && OutputActivation is IConvOutputConsumer consumer && consumer.CanFuse(x.Shape[0])
            && Residual is ModuleChain chain && chain.ConvolutionTail() >= 0)
        {
            // SNN inference: the residual branch's last conv, its BN, the add and the output neuron in one pass.
            var sc = Shortcut.Forward(x);
            var spikes = chain.ForwardInto(x, consumer, sc);
            if (ReleasingArena is { } a && !ReferenceEquals(sc.Value.Data, x.Value.Data)) a.Release(sc.Value.Data);
            return spikes;
        }
        if (Fusion.NormalizationsEnabled && OutputActivation is Activation { FusesWithBatchNorm: true } act
            && Residual is ModuleChain { TailBatchNorm: { } bn } branch)
        {
            // The residual branch's last BN, the add and the output activation as one op.
            Variable preBn = branch.ForwardAllButLast(x), sc = Shortcut.Forward(x);
            var output = act.ForwardAfterBatchNorm(bn, preBn, sc);
            if (ReleasingArena is { } a)
            {
                a.Release(preBn.Value.Data);
                if (!ReferenceEquals(sc.Value.Data, x.Value.Data)) a.Release(sc.Value.Data);
            }
            return output;
        }
        Variable residual = Residual.Forward(x), shortcut = Shortcut.Forward(x);
        var sum = ElementwiseOps.Add(residual, shortcut);
        var y = OutputActivation.Forward(sum);
        if (ReleasingArena is { } arena)
        {
            arena.Release(residual.Value.Data);
            if (!ReferenceEquals(shortcut.Value.Data, x.Value.Data)) arena.Release(shortcut.Value.Data);
            arena.Release(sum.Value.Data);
        }
        return y;
    }
}
