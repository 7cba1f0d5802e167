using SpikeSharp.Nn;

namespace SpikeSharp.Training;

/// <summary>A training recipe (spec §1 defaults: SGD 0.9, lr 0.1, wd 5e-4 also on λ, cosine to 0, batch 128).
/// Augmentation flags map onto <c>Data.TransformSpec</c>.</summary>
public sealed record TrainOptions
{
    public int Epochs { get; init; } = 30;
    public int BatchSize { get; init; } = 128;
    public float LearningRate { get; init; } = 0.1f;
    public float Momentum { get; init; } = 0.9f;
    public float WeightDecay { get; init; } = 5e-4f;
    /// <summary>Apply weight decay to BN γ and β too (the reference codes do; dual-phase's --split does not).</summary>
    public bool WeightDecayOnBatchNorm { get; init; } = true;
    /// <summary>"sgd" or "adam".</summary>
    public string Optimizer { get; init; } = "sgd";
    public LrSchedule Schedule { get; init; } = new();
    public float LabelSmoothing { get; init; }
    public int Seed { get; init; } = 42;
    public int CropPadding { get; init; } = 4;
    public bool HorizontalFlip { get; init; } = true;
    public bool AutoAugment { get; init; }
    public int CutoutLength { get; init; }
    /// <summary>β of the spike-count (popcount) regularizer for QCFS layers (spec §5); 0 = off.</summary>
    public float SpikeCountBeta { get; init; }

    public void Validate()
    {
        if (Epochs <= 0) throw new SpikeSharpException($"--epochs must be > 0, got {Epochs}");
        if (BatchSize <= 1) throw new SpikeSharpException($"--batch must be > 1 (batch norm needs two samples), got {BatchSize}");
        if (!(LearningRate > 0) || float.IsInfinity(LearningRate)) throw new SpikeSharpException($"--lr must be > 0, got {LearningRate}");
        if (!(WeightDecay >= 0) || float.IsInfinity(WeightDecay)) throw new SpikeSharpException($"--wd must be finite and ≥ 0, got {WeightDecay}");
        if (Optimizer is not ("sgd" or "adam")) throw new SpikeSharpException($"unknown optimizer '{Optimizer}'; expected sgd or adam");
        if (!LrSchedule.Kinds.Contains(Schedule.Kind)) throw new SpikeSharpException($"unknown LR schedule '{Schedule.Kind}'; expected one of {string.Join(", ", LrSchedule.Kinds)}");
        if (!(SpikeCountBeta >= 0)) throw new SpikeSharpException($"--spike-beta must be ≥ 0, got {SpikeCountBeta}");
        if (!(LabelSmoothing >= 0 && LabelSmoothing < 1)) throw new SpikeSharpException($"label smoothing must be in [0, 1), got {LabelSmoothing}");
    }
}

/// <summary>One epoch's numbers, as written to train_log.jsonl. TestSpikesPerImage = mean Σ popcount(k) over QCFS
/// outputs per test image (the spikes a bit-serial SNN emits); null without QCFS layers.</summary>
public sealed record EpochResult(int Epoch, float LearningRate, double TrainLoss, double TrainAccuracy, double TestAccuracy, double Seconds,
    double ImagesPerSecond, double? TestSpikesPerImage = null);

/// <summary>Progress inside an epoch, for progress bars.</summary>
public sealed record TrainProgress(int Epoch, int Epochs, int Batch, int Batches, double Loss, double Accuracy, double ImagesPerSecond);
