using SpikeSharp.Autograd;
using SpikeSharp.Data;
using SpikeSharp.Nn;
using SpikeSharp.Snn;
using SpikeSharp.Tensors;

namespace SpikeSharp.Conversion.Methods;

/// <summary>
/// Dual-phase conversion, Phase II (Wang et al. 2022; spec §4): IF neurons with θ = |λ|, v(0) = θ/2, firing on v &gt; θ,
/// then layer-wise mean-potential calibration on TRAINING images: for each layer ℓ in order (earlier layers already
/// calibrated), per neuron v0 += T_c·(mean_N a − mean_N r), a the ANN activation and r = mean_t θ·s the SNN rate value,
/// for the calibration horizon T_c. The calibrated offsets are kept only if they raise accuracy on a held-out part of
/// the training data (the reference code selects on the test set; we do not). Phase I (NoisyQC fine-tuning) is a training
/// step: <c>spikesharp train --activation noisyqc --init-from CKPT</c>. NOTE: the layer-wise BPTT fine-tuning of Phase II
/// is not implemented yet.
/// </summary>
public sealed class DualPhaseCalibration(int calibrationImages = 1024, int validationImages = 256, int calibrationSteps = 8) : ConversionMethod
{
    public int CalibrationImagesCount { get; } = calibrationImages > 0 ? calibrationImages : throw new SpikeSharpException($"dual-phase needs calibration images, got {calibrationImages}");
    public int ValidationImages { get; } = validationImages >= 0 ? validationImages : throw new SpikeSharpException($"validation images must be ≥ 0, got {validationImages}");
    public int CalibrationSteps { get; } = calibrationSteps > 0 ? calibrationSteps : throw new SpikeSharpException($"calibration steps must be > 0, got {calibrationSteps}");

    /// <summary>Whether the last calibration was kept (it raised held-out accuracy).</summary>
    public bool? KeptCalibration { get; private set; }

    public override string Name => "dual-phase";
    public override string Description =>
        $"dual-phase (Wang et al. 2022, spec §4): fire on v > θ, layer-wise mean-potential calibration for T = {CalibrationSteps} on {CalibrationImagesCount} training images " +
        $"(kept only if better on {ValidationImages} held-out training images); layer-wise BPTT not implemented";
    public override ConversionOptions Options => new(Rule: FireRule.Greater);

    public override int Calibrate(SpikingNetwork snn, Module ann, CalibrationData data, int steps)
    {
        if (data.Train == null || data.Train.Count == 0)
            throw new SpikeSharpException("dual-phase calibrates on training images, but no training split was found in --data; pass a folder with the train files");
        int n = Math.Min(CalibrationImagesCount, data.Train.Count), v = Math.Min(ValidationImages, data.Train.Count - n);
        var calib = data.Train.Subset(Enumerable.Range(0, n).ToArray());
        var valid = v > 0 ? data.Train.Subset(Enumerable.Range(n, v).ToArray()) : null;
        var neurons = snn.IfNeurons.ToList();
        using var calibLoader = new DataLoader(calib, data.BatchSize, data.Transform, shuffle: false, train: false, seed: 0);
        var annMeans = AnnMeans(ann, calibLoader, neurons);
        double before = valid != null ? ValidationAccuracy(snn, valid, data) : 0;
        for (int l = 0; l < neurons.Count; l++)
        {
            var rate = MeanRateUpTo(snn, neurons[l], calibLoader);
            var offset = neurons[l].InitialOffset ?? new float[rate.Length];
            for (int i = 0; i < rate.Length; i++) offset[i] += CalibrationSteps * (annMeans[l][i] - rate[i]);
            neurons[l].InitialOffset = offset;
        }
        if (valid != null)
        {
            double after = ValidationAccuracy(snn, valid, data);
            KeptCalibration = after >= before;
            data.Log?.Invoke($"dual-phase: held-out training accuracy at T = {CalibrationSteps}: {before:P2} before, {after:P2} after mean-potential calibration; " +
                (KeptCalibration.Value ? "kept" : "discarded"));
            if (!KeptCalibration.Value) foreach (var neuron in neurons) neuron.InitialOffset = null;
        }
        return n + v;
    }

    /// <summary>Per layer, the ANN activation averaged over the calibration images, per neuron.</summary>
    private static List<float[]> AnnMeans(Module ann, DataLoader loader, List<IfNeuron> neurons)
    {
        ann.Eval();
        var byName = ann.NamedModules().Where(m => m.Value is Activation).ToDictionary(m => m.Key, m => m.Value);
        var sums = neurons.Select(_ => (float[]?)null).ToList();
        int images = 0;
        var arena = new TensorArena();
        foreach (var batch in loader.Epoch(0))
        {
            using var scope = arena.Activate();
            using var rec = ActivationRecorder.Start();
            ann.Forward(new Variable(batch.Images));
            for (int l = 0; l < neurons.Count; l++)
            {
                var act = rec.Outputs(byName[neurons[l].LayerName])[0];
                int per = act.SizeFrom(1);
                var sum = sums[l] ??= new float[per];
                for (int b = 0; b < batch.Count; b++) TensorPrimitives.Add(sum, act.Data.AsSpan(b * per, per), sum);
            }
            images += batch.Count;
        }
        foreach (var s in sums) TensorPrimitives.Multiply(s!, 1f / images, s!);
        return sums.Select(s => s!).ToList();
    }

    /// <summary>The SNN rate value mean_t θ·s of one layer per neuron, averaged over the images; the simulation of each
    /// batch stops after that layer.</summary>
    private float[] MeanRateUpTo(SpikingNetwork snn, SpikingNeuron layer, DataLoader loader)
    {
        float[]? sum = null;
        int images = 0;
        var arena = new TensorArena();
        layer.Observer = (_, _, output) =>
        {
            int per = output.SizeFrom(1), batch = output.Shape[0] / CalibrationSteps;
            sum ??= new float[per];
            for (int r = 0; r < output.Shape[0]; r++) TensorPrimitives.Add(sum, output.Data.AsSpan(r * per, per), sum);
            images += batch;
            throw new StopAfterLayer();
        };
        try
        {
            foreach (var batch in loader.Epoch(0))
            {
                using var scope = arena.Activate();
                snn.Configure(batch.Count, CalibrationSteps);
                try { snn.Run(batch.Images, CalibrationSteps, extra: true); }
                catch (StopAfterLayer) { /* the layer of interest has run; deeper layers are not needed */ }
            }
        }
        finally { layer.Observer = null; }
        TensorPrimitives.Multiply(sum!, 1f / (images * CalibrationSteps), sum!);
        return sum!;
    }

    private double ValidationAccuracy(SpikingNetwork snn, ImageDataset valid, CalibrationData data)
    {
        using var loader = new DataLoader(valid, data.BatchSize, data.Transform, shuffle: false, train: false, seed: 0);
        var correct = new long[CalibrationSteps];
        var arena = new TensorArena();
        foreach (var batch in loader.Epoch(0))
        {
            using var scope = arena.Activate();
            snn.Configure(batch.Count, CalibrationSteps);
            var y = snn.Run(batch.Images, CalibrationSteps, extra: true);
            Simulator.CountCorrectByStep(y, batch.Count, CalibrationSteps, batch.Labels, correct);
        }
        return (double)correct[^1] / valid.Count;
    }

    private sealed class StopAfterLayer : Exception;
}
