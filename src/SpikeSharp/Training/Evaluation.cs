using SpikeSharp.Autograd;
using SpikeSharp.Data;
using SpikeSharp.Nn;
using SpikeSharp.Tensors;

namespace SpikeSharp.Training;

/// <summary>ANN inference over a data loader (eval mode, no tape).</summary>
public static class Evaluation
{
    /// <summary>Top-1 accuracy in [0, 1].</summary>
    public static double Accuracy(Module model, DataLoader loader) => AccuracyAndSpikes(model, loader).Accuracy;

    /// <summary>Top-1 accuracy and the mean Σ popcount(k) over QCFS outputs per image (0 without QCFS layers).</summary>
    public static (double Accuracy, double SpikesPerImage) AccuracyAndSpikes(Module model, DataLoader loader)
    {
        using var spikes = SpikeCountRegularizer.Start(0f);
        bool wasTraining = model.IsTraining;
        model.Eval();
        long correct = 0, total = 0;
        var arena = new TensorArena();
        try
        {
            foreach (var batch in loader.Epoch(0))
            {
                using var scope = arena.Activate();
                var logits = model.Forward(new Variable(batch.Images)).Value;
                correct += CountCorrect(logits.Data, logits.Shape[1], batch.Labels);
                total += batch.Count;
            }
        }
        finally { model.Train(wasTraining); }
        return total == 0 ? (0, 0) : ((double)correct / total, (double)spikes.SpikeCount / total);
    }

    /// <summary>Number of rows of logits [N,K] whose argmax equals the label (first maximum wins).</summary>
    public static int CountCorrect(ReadOnlySpan<float> logits, int classes, ReadOnlySpan<int> labels)
    {
        int correct = 0;
        for (int i = 0; i < labels.Length; i++)
            if (TensorPrimitives.IndexOfMax(logits.Slice(i * classes, classes)) == labels[i]) correct++;
        return correct;
    }
}
