using SpikeSharp.Autograd;
using SpikeSharp.Data;
using SpikeSharp.Nn;
using SpikeSharp.Snn;
using SpikeSharp.Tensors;

namespace SpikeSharp.Conversion.Methods;

/// <summary>
/// Dual-phase conversion, Phase II (Wang et al. 2022; spec §4): IF neurons with θ = |λ|, v(0) = θ/2, firing on v &gt; θ,
/// then on TRAINING images for the calibration horizon T_c: (a) layer-wise mean-potential calibration — for each layer
/// ℓ in order (earlier layers already calibrated), per neuron v0 += T_c·(mean_N a − mean_N r), a the ANN activation and
/// r = mean_t θ·s; (b) layer-wise BPTT of the initial potentials (<see cref="LayerwiseBptt"/>); (c) mean-potential
/// calibration again; (d) the stage with the best accuracy on a held-out part of the training data is kept (including
/// "no calibration"; the reference code selects on the test set, we do not). Phase I (NoisyQC fine-tuning) is a training
/// step: <c>spikesharp train --activation noisyqc --init-from CKPT</c>.
/// </summary>
[ConversionMethod("dual-phase", 3)]
public sealed class DualPhaseCalibration(int calibrationImages = 1024, int validationImages = 256, int calibrationSteps = 8) : ConversionMethod
{
    public override bool CalibrationIsExported => true;

    public DualPhaseCalibration(MethodOptions o) : this(o.CalibrationImages, o.CalibrationImages / 4, o.CalibrationSteps) { }

    public int CalibrationImagesCount { get; } = calibrationImages > 0 ? calibrationImages : throw new SpikeSharpException($"dual-phase needs calibration images, got {calibrationImages}");
    public int ValidationImages { get; } = validationImages >= 0 ? validationImages : throw new SpikeSharpException($"validation images must be ≥ 0, got {validationImages}");
    public int CalibrationSteps { get; } = calibrationSteps > 0 ? calibrationSteps : throw new SpikeSharpException($"calibration steps must be > 0, got {calibrationSteps}");

    /// <summary>Layer-wise BPTT of v0 (stage b); null skips it.</summary>
    public LayerwiseBptt? Bptt { get; init; } = new();

    /// <summary>Stage b also trains each layer's weights and bias (spec §4b); false trains only the initial potentials.</summary>
    public bool TrainWeights { get; init; } = true;

    /// <summary>At most this many of the calibration images feed the BPTT stage (its inputs are held in memory).</summary>
    public int BpttImages { get; init; } = 512;

    /// <summary>Held-out accuracy of each stage of the last calibration, and the stage kept.</summary>
    public IReadOnlyList<(string Stage, double Accuracy)> Stages { get; private set; } = [];
    public string? KeptStage { get; private set; }

    public override string Name => "dual-phase";
    public override string Description =>
        $"dual-phase (Wang et al. 2022, spec §4): fire on v > θ; for T = {CalibrationSteps} on {CalibrationImagesCount} training images: mean-potential calibration, " +
        $"layer-wise BPTT of {(TrainWeights ? "W, b and v0" : "v0 (weights fixed)")}, calibration again; best stage by accuracy on {ValidationImages} held-out training images";
    public override ConversionOptions Options => new(Rule: FireRule.Greater);

    public override string? CalibrationSummary => KeptStage == null ? null :
        $"held-out training accuracy at T = {CalibrationSteps}: " + string.Join(", ", Stages.Select(s => $"{s.Stage} {s.Accuracy:P2}")) + $"; kept '{KeptStage}'";

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
        // A stage is the offsets and (stage b trains them) the SNN's parameters; the kept stage restores both.
        var stages = new List<(string, double, float[]?[], float[][])>();
        var parameters = snn.Model.Parameters().ToList();
        void Snapshot(string name) => stages.Add((name, valid != null ? ValidationAccuracy(snn, valid, data) : 0,
            neurons.Select(nr => nr.InitialOffset is { } o ? (float[]?)o.Clone() : null).ToArray(),
            parameters.Select(p => (float[])p.Value.Data.Clone()).ToArray()));
        Snapshot("none");
        MeanPotentialCalibration(snn, neurons, annMeans, calibLoader);
        Snapshot("mean-potential");
        if (Bptt != null && valid != null)
        {
            var bpttSet = calib.Take(Math.Min(BpttImages, calib.Count));
            using var bpttLoader = new DataLoader(bpttSet, data.BatchSize, data.Transform, shuffle: false, train: false, seed: 0);
            using var validLoader = new DataLoader(valid, data.BatchSize, data.Transform, shuffle: false, train: false, seed: 0);
            foreach (var neuron in neurons)
            {
                var synapse = TrainWeights ? LayerwiseBptt.Synapse.Find(snn.Model, neuron.LayerName) : null;
                var (trainData, trainInputs) = Record(snn, ann, neuron, bpttLoader, synapse);
                var (validData, validInputs) = Record(snn, ann, neuron, validLoader, synapse);
                var offsets = neuron.InitialOffset ?? new float[trainData.Neurons];
                var (lossBefore, lossAfter) = synapse == null
                    ? Bptt.Train(neuron, offsets, trainData, validData)
                    : Bptt.TrainWithSynapse(neuron, offsets, synapse, SynapseData(synapse, trainData, trainInputs!), SynapseData(synapse, validData, validInputs!));
                neuron.InitialOffset = offsets;
                data.Log?.Invoke($"dual-phase BPTT {neuron.LayerName}{(synapse != null ? " (W, b, v0)" : " (v0)")}: held-out KL {lossBefore:0.0000} -> {lossAfter:0.0000}");
            }
            Snapshot("bptt");
            MeanPotentialCalibration(snn, neurons, annMeans, calibLoader);
            Snapshot("mean-potential again");
        }
        var best = stages.MaxBy(st => st.Item2);
        for (int l = 0; l < neurons.Count; l++) neurons[l].InitialOffset = best.Item3[l];
        for (int j = 0; j < parameters.Count; j++) best.Item4[j].CopyTo(parameters[j].Value.Data, 0);
        Stages = stages.Select(st => (st.Item1, st.Item2)).ToList();
        KeptStage = best.Item1;
        if (valid != null)
            data.Log?.Invoke($"dual-phase: held-out training accuracy at T = {CalibrationSteps}: " +
                string.Join(", ", stages.Select(st => $"{st.Item1} {st.Item2:P2}")) + $"; kept '{best.Item1}'");
        return n + v;
    }

    /// <summary>Stage (a)/(c): for each layer in order, v0 += T_c·(mean a − mean r) per neuron.</summary>
    private void MeanPotentialCalibration(SpikingNetwork snn, List<IfNeuron> neurons, List<float[]> annMeans, DataLoader loader)
    {
        for (int l = 0; l < neurons.Count; l++)
        {
            var rate = MeanRateUpTo(snn, neurons[l], loader);
            var offset = neurons[l].InitialOffset ?? new float[rate.Length];
            for (int i = 0; i < rate.Length; i++) offset[i] += CalibrationSteps * (annMeans[l][i] - rate[i]);
            neurons[l].InitialOffset = offset;
        }
    }

    /// <summary>One layer's input currents over the loader's images (earlier layers as calibrated so far) and the ANN's
    /// activations of that layer, for <see cref="LayerwiseBptt"/>.</summary>
    private (LayerwiseBptt.LayerData, Tensor?) Record(SpikingNetwork snn, Module ann, IfNeuron layer, DataLoader loader, LayerwiseBptt.Synapse? synapse = null)
    {
        int total = loader.Data.Count, offset = 0, perSample = 0;
        float[]? currents = null, targets = null;
        bool constant = false;
        Tensor? inputs = null;
        int batchCount = 0;
        var swap = synapse == null ? null : ModuleSwap.Apply(synapse.Parent, synapse.LayerName, new InputRecorder(synapse.Layer, x =>
        {
            // The synapse's input rows, t-major like the currents: row t·total + sample.
            bool isConstant = x.Shape[0] == batchCount;
            int steps = isConstant ? 1 : CalibrationSteps, per = x.SizeFrom(1);
            if (inputs == null)
            {
                var shape = (int[])x.Shape.Clone();
                shape[0] = steps * total;
                inputs = new Tensor(shape);
            }
            CopyTimeMajor(x.Data, batchCount, steps, per, inputs.Data, total, offset);
        }));
        var activation = ann.NamedModules().First(m => m.Key == layer.LayerName).Value;
        var arena = new TensorArena();
        layer.BeforeRun = (_, input, isConstant) =>
        {
            int b = input.Shape[0] / (isConstant ? 1 : CalibrationSteps);
            perSample = input.SizeFrom(1);
            constant = isConstant;
            currents ??= new float[(long)total * perSample * (isConstant ? 1 : CalibrationSteps)];
            CopyTimeMajor(input.Data, b, isConstant ? 1 : CalibrationSteps, perSample, currents, total, offset);
            throw new SpikingNetwork.StopRun();
        };
        try
        {
            foreach (var batch in loader.Epoch(0))
            {
                using var scope = arena.Activate();
                using (var rec = ActivationRecorder.Start())
                {
                    ann.Eval();
                    ann.Forward(new Variable(batch.Images));
                    var act = rec.Outputs(activation)[0];
                    targets ??= new float[(long)total * act.SizeFrom(1)];
                    act.Data.CopyTo(targets.AsSpan(offset * act.SizeFrom(1)));
                }
                batchCount = batch.Count;
                snn.RunUntilStopped(batch.Images, CalibrationSteps);
                offset += batch.Count;
            }
        }
        finally
        {
            layer.BeforeRun = null;
            swap?.Undo();
        }
        return (new LayerwiseBptt.LayerData(currents!, constant, targets!, total, perSample, CalibrationSteps), inputs);
    }

    /// <summary>Copies one batch's rows ([steps·batch, per], t-major) to rows t·total + offset … of a buffer that holds
    /// all images t-major ([steps·total, per]).</summary>
    private static void CopyTimeMajor(ReadOnlySpan<float> batchRows, int batch, int steps, int per, Span<float> all, int total, int offset)
    {
        for (int t = 0; t < steps; t++)
            batchRows.Slice(t * batch * per, batch * per).CopyTo(all[checked((int)(((long)t * total + offset) * per))..]);
    }

    /// <summary>Stage-b data of a synapse: its recorded inputs, and whatever part of the recorded current does not come
    /// through it (a residual shortcut), computed with the weights as they are now.</summary>
    private LayerwiseBptt.SynapseData SynapseData(LayerwiseBptt.Synapse synapse, LayerwiseBptt.LayerData d, Tensor inputs)
    {
        var through = synapse.Forward(new Variable(inputs)).Value.Data;
        float[]? extra = null;
        if (through.Length != d.Currents.Length)
            throw new InvalidOperationException($"synapse {synapse.LayerName} gives {through.Length} currents, the neuron received {d.Currents.Length}");
        for (int i = 0; i < through.Length; i++)
            if (d.Currents[i] != through[i])
            {
                extra = new float[through.Length];
                TensorPrimitives.Subtract(d.Currents, through, extra);
                break;
            }
        return new LayerwiseBptt.SynapseData(inputs, d.Constant, extra, d.Targets, d.Samples, d.Neurons, d.Steps);
    }

    /// <summary>Stands in for a layer while its inputs are recorded: calls <c>record(input, batch)</c>, then the layer.</summary>
    private sealed class InputRecorder(Module inner, Action<Tensor> record) : Module
    {
        public override Variable Forward(Variable x)
        {
            record(x.Value);
            return inner.Forward(x);
        }
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
        using var monitor = layer.Attach((_, _, output) =>
        {
            int per = output.SizeFrom(1), batch = output.Shape[0] / CalibrationSteps;
            sum ??= new float[per];
            for (int r = 0; r < output.Shape[0]; r++) TensorPrimitives.Add(sum, output.Data.AsSpan(r * per, per), sum);
            images += batch;
            throw new SpikingNetwork.StopRun();
        });
        foreach (var batch in loader.Epoch(0))
        {
            using var scope = arena.Activate();
            snn.RunUntilStopped(batch.Images, CalibrationSteps);
        }
        TensorPrimitives.Multiply(sum!, 1f / (images * CalibrationSteps), sum!);
        return sum!;
    }

    private double ValidationAccuracy(SpikingNetwork snn, ImageSet valid, CalibrationData data)
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
}
