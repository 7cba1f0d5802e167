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
public sealed class QcfsConversion : ConversionMethod
{
    public override string Name => "qcfs";
    public override string Description => "QCFS (Bu et al. 2022, spec §1): IF neurons with θ = λ and v(0) = θ/2";
}

/// <summary>The methods <c>--method</c> accepts.</summary>
public static class ConversionMethods
{
    public static readonly string[] Names = ["qcfs", "srp", "cos", "dual-phase", "bit-serial", "parallel", "signed", "burst", "ftbc"];

    /// <summary>Builds a method with the papers' defaults; presim is τ for srp and ρ for cos; calibration images and
    /// steps are dual-phase's N and T_c; burst is m; calibrate switches on parallel's per-channel calibration.</summary>
    public static ConversionMethod Create(string name, int presim = 4, int calibrationImages = 1024, int calibrationSteps = 8,
        int burst = BurstConversion.DefaultMaxBurst, bool calibrate = false) => name switch
    {
        "qcfs" => new QcfsConversion(),
        "srp" => new SrpCalibration(presim),
        "cos" => new CosCalibration(presim),
        "bit-serial" => new BitSerialConversion(),
        "dual-phase" => new DualPhaseCalibration(calibrationImages, calibrationImages / 4, calibrationSteps),
        "parallel" => new ParallelConversion(calibrate),
        "signed" => new SignedConversion(),
        "burst" => new BurstConversion(burst),
        "ftbc" => new FtbcCalibration(),
        _ => throw new SpikeSharpException($"unknown method '{name}'; expected one of {string.Join(", ", Names)}"),
    };
}
