using SpikeSharp.Conversion;
using SpikeSharp.Conversion.Methods;
using SpikeSharp.Data;
using SpikeSharp.Graphs;
using SpikeSharp.Interop;
using SpikeSharp.Models;
using SpikeSharp.Nn;
using SpikeSharp.Training;
using Xunit;

namespace SpikeSharp.Tests;

/// <summary>The README's library sample, verbatim apart from paths and sizes, so it cannot rot.</summary>
[Collection("cli")]
public class ReadmeSampleTests
{
    [Fact]
    public void TrainConvertEvaluateFromCSharp()
    {
        string data = Cli.CliTests.DataDir, runs = Path.Combine(Path.GetTempPath(), "spikesharp-api-" + Guid.NewGuid().ToString("N"));
        // --- README sample starts ---
        var train = Datasets.Load("mnist", data, train: true).Take(512);
        var test = Datasets.Load("mnist", data, train: false).Take(128);
        var spec = new ModelSpec("cnn-small", InChannels: 1, Height: 28, Width: 28, Classes: 10, Activation: ActivationSpec.Qcfs(levels: 4));
        var norm = Datasets.DefaultNormalization("mnist");
        var options = new TrainOptions { Epochs = 1, CropPadding = 0, HorizontalFlip = false };
        new Trainer(spec, options, new DataInfo("mnist", norm.Mean, norm.Std)).Run(train, test, runs);
        var report = new ConversionEvaluator { CheckpointDir = Path.Combine(runs, "last"), Test = test, Train = train }
            .Run([new QcfsConversion(), new SrpCalibration(presimSteps: 4), new CosCalibration(presimSteps: 4)], [1, 2, 4, 8]);
        Console.Write(report.ToTable());
        // --- README sample ends ---
        Assert.Equal(3, report.Snn.Count);
        Assert.Equal(4, report.Snn[0].AccuracyByT.Count);
        Directory.Delete(runs, true);
    }

    [Fact]
    public void BuildTrainAndConvertAGraphFromCSharp()
    {
        string data = Cli.CliTests.DataDir, runs = Path.Combine(Path.GetTempPath(), "spikesharp-graph-" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(runs);
        var train = Datasets.Load("mnist", data, train: true).Take(256);
        var test = Datasets.Load("mnist", data, train: false).Take(64);
        var norm = Datasets.DefaultNormalization("mnist");
        string json = Path.Combine(runs, "net.json");
        // --- README graph sample starts ---
        var g = new GraphBuilder(1, 28, 28);
        var x = g.Activation("act1", g.BatchNorm("bn1", g.Conv("conv1", g.Input, 16, 3, padding: 1, bias: false)), "qcfs");
        x = g.MaxPool("pool1", x, 2);                                   // a max pool of spikes: gated in the SNN
        var dw = g.Activation("act2", g.BatchNorm("bn2", g.Conv("dw", x, 16, 3, padding: 1, bias: false, groups: 16)), "qcfs");
        var graph = g.Build(g.Linear("fc", g.GlobalAvgPool("gap", g.Concat("cat", x, dw)), 10));
        File.WriteAllText(json, graph.ToJson().ToJsonString());       // spikesharp train --graph net.json …
        new Trainer(ModelSpec.For(graph), new TrainOptions { Epochs = 1, CropPadding = 0, HorizontalFlip = false },
            new DataInfo("mnist", norm.Mean, norm.Std)).Run(train, test, runs);
        var report = new ConversionEvaluator { CheckpointDir = Path.Combine(runs, "last"), Test = test }
            .Run([new QcfsConversion(), new CosCalibration(presimSteps: 4)], [1, 2, 4, 8]);
        // --- README graph sample ends ---
        Assert.Equal(2, report.Snn.Count);
        Assert.Equal(graph, SpikeSharp.Graphs.Graph.Load(json));
        Directory.Delete(runs, true);
    }
}
