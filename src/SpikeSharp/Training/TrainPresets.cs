using SpikeSharp.Nn;

namespace SpikeSharp.Training;

/// <summary>The reference codes' CIFAR recipes (spec §5b) by name; explicit flags override a preset's values.</summary>
public static class TrainPresets
{
    public sealed record Preset(string Name, string Description, ActivationSpec Activation, TrainOptions Options);

    private static readonly TrainOptions Base = new();

    public static readonly IReadOnlyList<Preset> All =
    [
        new("qcfs", "QCFS (Bu et al.): L=4, λ init 8, SGD lr 0.1, wd 5e-4 (also on λ), cosine; AutoAugment + Cutout 16",
            ActivationSpec.Qcfs(4, 8f), Base with { LearningRate = 0.1f, AutoAugment = true, CutoutLength = 16 }),
        new("srp", "SRP / COS (Hao et al.): QCFS L=4, λ init 8, lr 0.02, wd 5e-4, cosine; AutoAugment + Cutout 8",
            ActivationSpec.Qcfs(4, 8f), Base with { LearningRate = 0.02f, AutoAugment = true, CutoutLength = 8 }),
        new("cos", "same recipe as srp",
            ActivationSpec.Qcfs(4, 8f), Base with { LearningRate = 0.02f, AutoAugment = true, CutoutLength = 8 }),
        new("dual-phase", "dual-phase pre-training (Wang et al.): trainable clip, λ init 5, lr 0.1, wd 5e-4, cosine",
            new ActivationSpec("clip", 4, 5f), Base with { LearningRate = 0.1f }),
        new("bit-serial", "bit-serial (Datta et al.): QCFS with L = 2^T − 1 = 15 (T = 4), λ init 8, lr 0.1, wd 5e-4",
            ActivationSpec.Qcfs(15, 8f), Base with { LearningRate = 0.1f }),
        new("relu", "plain ReLU baseline: SGD lr 0.1, wd 5e-4, cosine, crop + flip",
            ActivationSpec.Relu, Base),
    ];

    public static Preset Get(string name) =>
        All.FirstOrDefault(p => p.Name == name)
        ?? throw new SpikeSharpException($"unknown preset '{name}'; expected one of {string.Join(", ", All.Select(p => p.Name))}");
}
