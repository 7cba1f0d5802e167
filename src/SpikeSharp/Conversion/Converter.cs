using SpikeSharp.Autograd;
using SpikeSharp.Nn;
using SpikeSharp.Snn;
using SpikeSharp.Tensors;

namespace SpikeSharp.Conversion;

/// <summary>Settings of the ANN → SNN conversion (spec §8b).</summary>
/// <param name="FoldBatchNorm">Fold BN into the preceding layer instead of applying it per step (same outputs up to rounding).</param>
/// <param name="InitialFraction">v(0) as a fraction of θ (½ for QCFS).</param>
/// <param name="Rule">Fire on v ≥ θ (QCFS family) or v &gt; θ (dual-phase).</param>
/// <param name="ReluPercentile">For plain ReLU layers (no λ): θ = this percentile of the layer's activations on the
/// calibration images (threshold balancing); ReLU conversion is refused without calibration data.</param>
public sealed record ConversionOptions(bool FoldBatchNorm = false, float InitialFraction = 0.5f, FireRule Rule = FireRule.GreaterOrEqual,
    double ReluPercentile = 99.99);

/// <summary>
/// Turns a trained ANN into an SNN in place, sharing its parameter tensors (spec §1, STYLE §6): Validate (no max
/// pooling), optionally FoldBatchNorm, Thresholds (θ = λ, or balanced for ReLU), ReplaceActivations. The result can
/// be undone with <see cref="SpikingNetwork.RestoreAnn"/>.
/// </summary>
public static class Converter
{
    /// <param name="createNeuron">builds the neuron for (layer name, activation, θ); default: an <see cref="IfNeuron"/>
    /// with the options' initial potential and fire rule</param>
    public static SpikingNetwork Convert(Module model, ConversionOptions? options = null, IEnumerable<Tensor>? calibrationImages = null,
        Action<string>? warn = null, Func<string, Activation, float, SpikingNeuron>? createNeuron = null)
    {
        options ??= new ConversionOptions();
        Validate(model);
        model.Eval();
        var reluThresholds = NeedsBalancing(model) ? BalanceThresholds(model, calibrationImages, options.ReluPercentile, warn) : null;
        var swaps = options.FoldBatchNorm ? BatchNormFolding.Fold(model) : new List<ModuleSwap>();
        var neurons = new List<SpikingNeuron>();
        var pools = new List<SpikingMaxPool>();
        var opts = options;
        createNeuron ??= (layer, act, theta) => new IfNeuron(layer, theta, act) { InitialFraction = opts.InitialFraction, Rule = opts.Rule };
        // Depth first over children in registration order, which is execution order for these models: a residual
        // block's inner neuron comes before its output neuron (methods that calibrate "in order" rely on it).
        void Visit(Module parent, string prefix)
        {
            foreach (var (childName, child) in parent.Children.ToList())
            {
                string layer = prefix + childName;
                if (child is MaxPool2d { Input: PoolInput.Spikes } maxPool)
                {
                    var gated = new SpikingMaxPool(layer, maxPool.KernelSize, maxPool.Stride);
                    swaps.Add(ModuleSwap.Apply(parent, childName, gated));
                    pools.Add(gated);
                    continue;
                }
                if (child is not Activation act) { Visit(child, layer + "."); continue; }
                float theta = act.Lambda is { } l ? MathF.Abs(l.Value.Data[0]) : reluThresholds![layer];
                var neuron = createNeuron(layer, act, theta);
                swaps.Add(ModuleSwap.Apply(parent, childName, neuron));
                neurons.Add(neuron);
            }
        }
        Visit(model, "");
        if (neurons.Count == 0) throw new SpikeSharpException("the model has no activation layers to convert into spiking neurons");
        return new SpikingNetwork(model, neurons, swaps, pools);
    }

    /// <summary>A max pool converts where a graph's planner said what it reads (docs/conversion-methods.md "Max
    /// pooling"); in a hand-built module tree (a <see cref="Sequential"/>) nobody did.</summary>
    public static void Validate(Module model)
    {
        var maxPool = model.NamedModules().FirstOrDefault(m => m.Value is MaxPool2d { Input: PoolInput.Unknown });
        if (maxPool.Value != null)
            throw new SpikeSharpException($"layer '{maxPool.Key}' is a max pool outside a graph model, which cannot be converted; " +
                "train with average pooling instead (the QCFS/SRP/COS codes replace MaxPool by AvgPool before training), or describe the network " +
                "as a graph (train --graph, or import it from ONNX), which pools spikes by gating");
    }

    private static bool NeedsBalancing(Module model) => model.NamedModules().Any(m => m.Value is Activation { Lambda: null });

    /// <summary>Threshold balancing for ReLU layers: runs the ANN on calibration images and takes a high percentile
    /// of each layer's positive activations.</summary>
    private static Dictionary<string, float> BalanceThresholds(Module model, IEnumerable<Tensor>? images, double percentile, Action<string>? warn)
    {
        if (images == null)
            throw new SpikeSharpException("the model has plain ReLU activations (no trained threshold λ): converting it needs threshold " +
                "balancing on calibration images, and accuracy at small T is poor; train with --activation qcfs for low-latency SNNs");
        warn?.Invoke($"plain ReLU layers: thresholds set to the {percentile}th percentile of activations on calibration images (threshold balancing); expect poor accuracy at small T");
        var samples = new Dictionary<string, List<float>>();
        using var rec = ActivationRecorder.Start();
        foreach (var x in images) model.Forward(new Variable(x));
        var result = new Dictionary<string, float>();
        foreach (var (name, m) in model.NamedModules())
        {
            if (m is not Activation { Lambda: null } act) continue;
            var values = rec.Outputs(act).SelectMany(t => t.Data).Where(v => v > 0).ToArray();
            if (values.Length == 0) { result[name] = 1f; continue; }
            Array.Sort(values);
            result[name] = values[Math.Min(values.Length - 1, (int)(values.Length * percentile / 100))];
        }
        return result;
    }
}
