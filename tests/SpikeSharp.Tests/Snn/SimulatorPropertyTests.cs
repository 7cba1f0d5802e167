// Property tests (FsCheck): on small random networks (conv, linear, pooling, residual blocks, random θ and T) the
// production simulator agrees with ReferenceSnn spike for spike, per neuron and step, and in accuracy by t, SOPs and
// analog MACs, for any batch size and MaxRows chunking. Networks are dyadic (ReferenceNets), so agreement is exact.
using FsCheck;
using FsCheck.Fluent;
using SpikeSharp.Autograd;
using SpikeSharp.Conversion;
using SpikeSharp.Conversion.Methods;
using SpikeSharp.Data;
using SpikeSharp.Nn;
using SpikeSharp.Snn;
using SpikeSharp.Tensors;
using Xunit;

namespace SpikeSharp.Tests.Snn;

public class SimulatorPropertyTests
{
    private const int Classes = 4;

    /// <summary>One generated case: network seed, input shape, horizon, dataset size, loader batch and chunk rows.</summary>
    public sealed record Case(int Seed, int Channels, int Size, int Steps, int Images, int Batch, int MaxRows)
    {
        public override string ToString() => $"seed {Seed}, {Channels}×{Size}×{Size}, T = {Steps}, {Images} images, batch {Batch}, MaxRows {MaxRows}";
    }

    private static Gen<Case> Cases =>
        from seed in Gen.Choose(0, 1_000_000)
        from c in Gen.Choose(1, 3)
        from size in Gen.Elements(4, 8)
        from steps in Gen.Choose(1, 6)
        from images in Gen.Choose(1, 7)
        from batch in Gen.Choose(1, images)
        from chunk in Gen.Choose(1, 4)
        from extraRows in Gen.Choose(0, steps - 1)
        select new Case(seed, c, size, steps, images, batch, chunk * steps + extraRows);

    /// <summary>Runs a property on <paramref name="cases"/> random cases (times SPIKESHARP_PROPERTY_SCALE for a long
    /// local run); a failure reports the case and FsCheck's seed.</summary>
    private static void Check(Action<Case> property, int cases) =>
        Prop.ForAll(Cases.ToArbitrary(), property).Check(Config.QuickThrowOnFailure.WithMaxTest(cases * Scale));

    private static readonly int Scale = int.TryParse(Environment.GetEnvironmentVariable("SPIKESHARP_PROPERTY_SCALE"), out int s) && s > 0 ? s : 1;

    /// <summary>Per neuron and step: the spikes the production network emits in one direct call of the method, [layer][t][b·S + i].</summary>
    internal static byte[][][] ProductionSpikes(SpikingNetwork snn, ConversionMethod method, Tensor batch, int steps)
    {
        var spikes = new byte[snn.Neurons.Count][][];
        var monitors = snn.Neurons.Select((n, layer) => n.Attach((_, counts, output) =>
        {
            if (snn.InExtraRun) return;
            int perStep = output.Length / steps;
            spikes[layer] = Enumerable.Range(0, steps)
                .Select(t => output.Data.AsSpan(t * perStep, perStep).ToArray().Select(v => v != 0 ? (byte)1 : (byte)0).ToArray()).ToArray();
        })).ToList();
        try { method.Simulate(snn, batch, steps); }
        finally { foreach (var m in monitors) m.Dispose(); }
        return spikes;
    }

    internal static void AssertSameSpikes(ReferenceSnn.Result expected, byte[][][] actual, string what)
    {
        for (int l = 0; l < expected.Layers.Length; l++)
            for (int t = 0; t < expected.Steps; t++)
            {
                var e = expected.Spikes[l][t];
                var a = actual[l][t];
                Assert.True(e.Length == a.Length, $"{what}: layer {expected.Layers[l]} has {a.Length} neurons, the reference {e.Length}");
                int i = Enumerable.Range(0, e.Length).FirstOrDefault(k => e[k] != a[k], -1);
                Assert.True(i < 0, $"{what}: layer {expected.Layers[l]}, t = {t + 1}, neuron {i}: reference {(i < 0 ? 0 : e[i])}, production {(i < 0 ? 0 : a[i])}");
            }
    }

    /// <summary>Runs the production Simulator and checks everything it reports against the reference.</summary>
    internal static void AssertSimulatorMatches(ReferenceSnn.Result expected, SimulationResult actual, string what)
    {
        Assert.True(expected.Images == actual.Images, $"{what}: {actual.Images} images simulated, expected {expected.Images}");
        Assert.True(expected.CorrectByStep.SequenceEqual(actual.CorrectByStep),
            $"{what}: correct by t {string.Join(",", actual.CorrectByStep)}, reference {string.Join(",", expected.CorrectByStep)}");
        for (int l = 0; l < expected.Layers.Length; l++)
        {
            Assert.Equal(expected.Layers[l], actual.Layers[l].Layer);
            var want = Enumerable.Range(1, expected.Steps).Select(t => expected.SpikesAt(l, t)).ToArray();
            Assert.True(want.SequenceEqual(actual.Layers[l].SpikesByStep),
                $"{what}: layer {expected.Layers[l]} spikes by t {string.Join(",", actual.Layers[l].SpikesByStep)}, reference {string.Join(",", want)}");
        }
        Assert.True(expected.AnalogMacsPerImageStep == actual.AnalogMacsPerImagePerStep,
            $"{what}: analog MACs {actual.AnalogMacsPerImagePerStep}, reference {expected.AnalogMacsPerImageStep}");
        for (int t = 0; t < expected.Steps; t++)
        {
            double e = expected.SopsPerImageByStep[t], a = actual.SopsPerImageByStep[t];
            Assert.True(Math.Abs(e - a) <= 1e-9 * Math.Max(1, e), $"{what}: SOPs per image at t = {t + 1}: {a}, reference {e}");
        }
    }

    private static (Module Model, ImageDataset Data, float[][] Inputs, TransformSpec Transform) Build(Case c)
    {
        var model = ReferenceNets.Random(c.Seed, c.Channels, c.Size, Classes);
        var (data, inputs, transform) = ReferenceNets.Images(c.Seed, c.Images, c.Channels, c.Size, Classes);
        return (model, data, inputs, transform);
    }

    [Fact]
    public void SpikesPerNeuronAndStepMatchTheReference()
    {
        Check(c =>
        {
            var (model, data, inputs, _) = Build(c);
            var snn = Converter.Convert(model);
            var expected = new ReferenceSnn(snn.Model).Run(inputs, [c.Channels, c.Size, c.Size], data.Labels, c.Steps);
            var actual = ProductionSpikes(snn, new QcfsConversion(), ReferenceNets.Batch(inputs, c.Channels, c.Size), c.Steps);
            AssertSameSpikes(expected, actual, c.ToString());
        }, 100);
    }

    /// <summary>Networks of 16–64 channels on 16×16 inputs: their convolutions on spikes run on the spike table
    /// (<see cref="SpikeTableConv"/>; the profile says so), and the spikes still agree with the reference neuron for
    /// neuron (dyadic networks: every sum is exact in any order).</summary>
    [Fact]
    public void WideNetworksConvolveSpikesByTableAndMatchTheReference()
    {
        int tableCalls = 0;
        foreach (int seed in Enumerable.Range(1, 8))
        {
            var c = new Case(seed, 3, 16, 1 + seed % 4, 3, 3, 12);
            var model = ReferenceNets.Random(seed, c.Channels, c.Size, Classes, width: 16);
            var (data, inputs, _) = ReferenceNets.Images(seed, c.Images, c.Channels, c.Size, Classes);
            var snn = Converter.Convert(model);
            var expected = new ReferenceSnn(snn.Model).Run(inputs, [c.Channels, c.Size, c.Size], data.Labels, c.Steps);
            Profiler.Start();
            byte[][][] actual;
            try { actual = ProductionSpikes(snn, new QcfsConversion(), ReferenceNets.Batch(inputs, c.Channels, c.Size), c.Steps); }
            finally { tableCalls += Profiler.Stop().Where(e => e.Op.StartsWith("spike conv")).Sum(e => e.Calls); }
            AssertSameSpikes(expected, actual, c + " (16-channel widths)");
        }
        Assert.True(tableCalls >= 8, $"only {tableCalls} convolutions ran on the spike table in 8 wide networks");
    }

    [Fact]
    public void AccuracyByStepSopsAndMacsMatchTheReferenceForAnyBatchAndChunking()
    {
        Check(c =>
        {
            var (model, data, inputs, transform) = Build(c);
            var snn = Converter.Convert(model);
            var expected = new ReferenceSnn(snn.Model).Run(inputs, [c.Channels, c.Size, c.Size], data.Labels, c.Steps);
            using var loader = new DataLoader(data, c.Batch, transform, shuffle: false, train: false, seed: 0);
            var actual = new Simulator { MaxRows = c.MaxRows }.Run(snn, loader, c.Steps);
            AssertSimulatorMatches(expected, actual, c.ToString());
        }, 100);
    }

    [Fact]
    public void SrpOnRandomNetworksMatchesTheReference()
    {
        Check(c =>
        {
            var (model, data, inputs, transform) = Build(c);
            var snn = Converter.Convert(model);
            int presim = 1 + c.Seed % 4;
            var expected = new ReferenceSnn(snn.Model).RunSrp(inputs, [c.Channels, c.Size, c.Size], data.Labels, c.Steps, presim);
            var actual = ProductionSpikes(snn, new SrpCalibration(presim), ReferenceNets.Batch(inputs, c.Channels, c.Size), c.Steps);
            AssertSameSpikes(expected, actual, $"srp τ = {presim}, {c}");
            using var loader = new DataLoader(data, c.Batch, transform, shuffle: false, train: false, seed: 0);
            AssertSimulatorMatches(expected, new Simulator { MaxRows = c.MaxRows }.Run(snn, loader, c.Steps, method: new SrpCalibration(presim)), $"srp τ = {presim}, {c}");
        }, 60);
    }

    [Fact]
    public void CosOnRandomNetworksMatchesTheReference()
    {
        Check(c =>
        {
            var (model, data, inputs, transform) = Build(c);
            ReferenceNets.MakeDyadic(model, c.Seed, powerOfTwoThresholds: true);
            var snn = Converter.Convert(model);
            int rho = 1 + c.Seed % c.Steps;
            var expected = new ReferenceSnn(snn.Model).RunCos(inputs, [c.Channels, c.Size, c.Size], data.Labels, c.Steps, rho);
            Assert.True(expected.MinMargin > 1e-5, $"{c}: a potential came within {expected.MinMargin} of θ; the case is not exact");
            var actual = ProductionSpikes(snn, new CosCalibration(rho), ReferenceNets.Batch(inputs, c.Channels, c.Size), c.Steps);
            AssertSameSpikes(expected, actual, $"cos ρ = {rho}, {c}");
            using var loader = new DataLoader(data, c.Batch, transform, shuffle: false, train: false, seed: 0);
            AssertSimulatorMatches(expected, new Simulator { MaxRows = c.MaxRows }.Run(snn, loader, c.Steps, method: new CosCalibration(rho)), $"cos ρ = {rho}, {c}");
        }, 60);
    }

    [Fact]
    public void GeneratedNetworksExerciseTiesResidualsAndEveryLayerKind()
    {
        // The properties above are only as strong as the networks: they must contain residual blocks, pools, both heads,
        // exact ties m = θ (where ≥ and > differ) and neurons that fire and ones that do not.
        var kinds = new HashSet<string>();
        long ties = 0, spikes = 0, silent = 0;
        for (int seed = 0; seed < 30; seed++)
        {
            var model = ReferenceNets.Random(seed, 2, 8, Classes);
            foreach (var (_, m) in model.NamedModules()) kinds.Add(m.GetType().Name);
            var (data, inputs, _) = ReferenceNets.Images(seed, 3, 2, 8, Classes);
            var snn = Converter.Convert(model);
            var r = new ReferenceSnn(snn.Model).Run(inputs, [2, 8, 8], data.Labels, 4);
            var strict = new ReferenceSnn(snn.Model) { Strict = true }.Run(inputs, [2, 8, 8], data.Labels, 4);
            for (int l = 0; l < r.Layers.Length; l++)
                for (int t = 0; t < 4; t++)
                {
                    long n = r.Spikes[l][t].Count(s => s == 1);
                    spikes += n;
                    silent += r.Spikes[l][t].Length - n;
                    ties += r.Spikes[l][t].Zip(strict.Spikes[l][t]).Count(p => p.First != p.Second);
                }
        }
        Assert.Superset(new HashSet<string> { "AddModule", "AvgPool2d", "GlobalAvgPool2d", "Flatten", "BatchNorm", "Conv2d", "Linear" }, kinds);
        Assert.True(ties > 0, "no exact tie m = θ in 30 networks: ≥ versus > would go unnoticed");
        Assert.True(spikes > 1000 && silent > 1000, $"{spikes} spikes, {silent} silent neuron-steps");
    }
}
