using SpikeSharp.Conversion;
using SpikeSharp.Conversion.Methods;
using SpikeSharp.Data;
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
}
