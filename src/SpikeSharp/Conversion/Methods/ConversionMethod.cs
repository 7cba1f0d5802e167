using SpikeSharp.Snn;
using SpikeSharp.Tensors;

namespace SpikeSharp.Conversion.Methods;

/// <summary>
/// One published conversion recipe (spec §8b "Method = preset"). The converter builds the SNN; a method may change
/// the conversion options, calibrate on training images, and change how one batch is simulated (pre-simulation,
/// per-layer offsets). Each method is one file overriding only what it changes.
/// </summary>
public abstract class ConversionMethod
{
    /// <summary>The name used by <c>--method</c>.</summary>
    public abstract string Name { get; }

    /// <summary>One line for help and reports, with the paper and spec section.</summary>
    public abstract string Description { get; }

    public virtual ConversionOptions Options => new();

    /// <summary>Steps simulated before the counted steps (τ for SRP, ρ for COS); reported separately from T.</summary>
    public virtual int ExtraSteps => 0;

    /// <summary>What one output value of a spiking layer can be: <c>binary</c> (0 or θ), <c>signed</c> (0 or ±θ) or
    /// <c>graded</c> (several unit spikes in one step). Every unit spike counts as one spike and one SOP per fan-out.</summary>
    public virtual string SpikeKind => "binary";

    /// <summary>Steps from the input's onset until the output of counted step <paramref name="t"/> is known, in a
    /// network of <paramref name="depth"/> spiking layers: the extra steps plus t for causal neurons.</summary>
    public virtual int Latency(int t, int depth) => ExtraSteps + t;

    /// <summary>True when the neurons see their whole window before firing (parallel neurons): the first t output
    /// steps of a longer run are not a t-step run, so each t is simulated (and calibrated) as its own window.</summary>
    public virtual bool WindowPerT => false;

    /// <summary>The neuron replacing one activation; null uses the converter's IF neuron.</summary>
    public virtual Func<string, Nn.Activation, float, SpikingNeuron>? NeuronFactory => null;

    /// <summary>Checks settings against the horizon T before any work.</summary>
    public virtual void Validate(int steps) { }

    /// <summary>Checks that the method can run a model with <paramref name="activation"/> for <paramref name="steps"/>
    /// steps (bit-serial needs QCFS with 2^T − 1 levels), before any work.</summary>
    public virtual void ValidateModel(Nn.ActivationSpec activation, int steps) { }

    /// <summary>True when the calibration sets static parameters (dual-phase's initial potentials) that an exported
    /// graph carries; other methods' calibrations act at run time.</summary>
    public virtual bool CalibrationIsExported => false;

    /// <summary>What the last calibration found and kept, for reports (null when the method does not calibrate).</summary>
    public virtual string? CalibrationSummary => null;

    /// <summary>Adjusts the converted network on TRAINING images before the test run (never on test data).</summary>
    /// <returns>training images used (0 if the method does not calibrate)</returns>
    public virtual int Calibrate(SpikingNetwork snn, Nn.Module ann, CalibrationData data, int steps) => 0;

    /// <summary>Simulates one batch for <paramref name="steps"/> counted steps; returns the output layer [steps·B, K].</summary>
    public virtual Tensor Simulate(SpikingNetwork snn, Tensor images, int steps)
    {
        snn.Configure(images.Shape[0], steps);
        return snn.Run(images, steps);
    }
}

/// <summary>Training images for calibration, with the checkpoint's evaluation transform; null images when none exist.</summary>
public sealed record CalibrationData(Data.ImageSet? Train, Data.TransformSpec Transform, int BatchSize, Action<string>? Log);

/// <summary>QCFS (Bu et al., ICLR 2022; spec §1): θ = λ, v(0) = θ/2, fire on v ≥ θ, soft reset, direct input.</summary>
[ConversionMethod("qcfs", 0)]
public sealed class QcfsConversion : ConversionMethod
{
    public QcfsConversion(MethodOptions o) : this() { }

    public QcfsConversion() { }

    public override string Name => "qcfs";
    public override string Description => "QCFS (Bu et al. 2022, spec §1): IF neurons with θ = λ and v(0) = θ/2";
}

/// <summary>The options <c>evaluate</c> and <c>export</c> pass to every method; each takes what it uses.</summary>
/// <param name="Presim">τ for srp, ρ for cos</param>
/// <param name="CalibrationImages">dual-phase's N (a quarter more are held out)</param>
/// <param name="CalibrationSteps">dual-phase's T_c</param>
/// <param name="Burst">burst's m</param>
/// <param name="Calibrate">parallel's per-channel calibration</param>
public sealed record MethodOptions(int Presim = 4, int CalibrationImages = 1024, int CalibrationSteps = 8, int Burst = BurstConversion.DefaultMaxBurst,
    bool Calibrate = false);

/// <summary>Registers a <see cref="ConversionMethod"/> under its <c>--method</c> name; <paramref name="order"/> is its
/// place in lists. The class needs a public constructor taking <see cref="MethodOptions"/>. Adding a method is its
/// file alone.</summary>
[AttributeUsage(AttributeTargets.Class, Inherited = false)]
public sealed class ConversionMethodAttribute(string name, int order) : Attribute
{
    public string Name { get; } = name;
    public int Order { get; } = order;
}

/// <summary>The methods <c>--method</c> accepts: every class carrying <see cref="ConversionMethodAttribute"/>.</summary>
public static class ConversionMethods
{
    private static readonly (string Name, Type Type)[] Registered = typeof(ConversionMethod).Assembly.GetTypes()
        .Select(t => (Type: t, Attribute: (ConversionMethodAttribute?)Attribute.GetCustomAttribute(t, typeof(ConversionMethodAttribute))))
        .Where(x => x.Attribute != null && typeof(ConversionMethod).IsAssignableFrom(x.Type))
        .OrderBy(x => x.Attribute!.Order)
        .Select(x => (x.Attribute!.Name, x.Type))
        .ToArray();

    public static readonly string[] Names = Registered.Select(r => r.Name).ToArray();

    /// <summary>Builds the method <paramref name="name"/> with <paramref name="options"/> (the papers' defaults when null).</summary>
    public static ConversionMethod Create(string name, MethodOptions? options = null)
    {
        var type = Registered.FirstOrDefault(r => r.Name == name).Type
            ?? throw new SpikeSharpException($"unknown method '{name}'; expected one of {string.Join(", ", Names)}");
        return (ConversionMethod)Activator.CreateInstance(type, options ?? new MethodOptions())!;
    }
}
