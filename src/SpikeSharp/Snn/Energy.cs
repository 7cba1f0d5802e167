namespace SpikeSharp.Snn;

/// <summary>
/// Energy per operation (Horowitz, ISSCC 2014, 45 nm): a MAC = multiply + add, an AC (spike-driven synaptic
/// accumulate) = add. E_ANN = MACs·E_MAC; E_SNN(t) = analog first-layer MACs·t·E_MAC + SOPs(≤ t)·E_AC
/// (the convention of the dual-phase code: 4.6 pJ per fp32 MAC, 0.9 pJ per fp32 AC).
/// </summary>
public sealed record EnergyModel(string Name, double MacPj, double AcPj)
{
    public static readonly EnergyModel Fp32 = new("45nm-fp32", 4.6, 0.9);
    public static readonly EnergyModel Fp16 = new("45nm-fp16", 1.5, 0.4);
    public static readonly EnergyModel Int8 = new("45nm-int8", 0.23, 0.03);

    public static readonly IReadOnlyList<EnergyModel> Presets = [Fp32, Fp16, Int8];

    public static EnergyModel Get(string name) =>
        Presets.FirstOrDefault(p => p.Name == name || p.Name.EndsWith("-" + name, StringComparison.Ordinal))
        ?? throw new SpikeSharpException($"unknown energy preset '{name}'; expected one of {string.Join(", ", Presets.Select(p => p.Name))}");

    public string Formula =>
        $"E_ANN = MACs × {MacPj} pJ; E_SNN(t) = MACs_analog_first_layer × t × {MacPj} pJ + SOPs(1..t) × {AcPj} pJ ({Name}, Horowitz 2014)";

    public double Ann(double macs) => macs * MacPj;

    public double Snn(double analogMacs, double sops) => analogMacs * MacPj + sops * AcPj;
}
