// Golden tests: run SpikeSharp's ops on the inputs of each PyTorch fixture (tools/make_fixtures.py) and compare the
// forward outputs and every gradient with what PyTorch computed.
using System.Globalization;
using SpikeSharp.Autograd;
using SpikeSharp.Autograd.Ops;
using SpikeSharp.Interop;
using SpikeSharp.Nn;
using SpikeSharp.Tensors;
using Xunit;

namespace SpikeSharp.Tests.Golden;

public class TorchGoldenTests
{
    private static readonly string FixtureDir = Path.Combine(AppContext.BaseDirectory, "Fixtures", "torch");

    // Float32 throughout on both sides; differences come only from summation order.
    private const double Atol = 1e-5, Rtol = 1e-4;

    /// <summary>Every fixture make_fixtures.py writes; each has a test below.</summary>
    private static readonly string[] AllFixtures =
    [
        "conv_k3s1p1_bias", "conv_k3s2p1_nobias", "conv_k1s2p0_nobias", "conv_k5s1p2_bias", "conv_k3s1p0_bias",
        "bn2d_train", "bn2d_eval", "bn1d_train", "bn1d_eval",
        "avgpool2", "maxpool2", "gap", "linear", "ce", "ce_ls01", "qcfs",
    ];

    // ------------------------------------------------------------------ helpers

    private static SafetensorsFile Fixture(string name) => Safetensors.Read(Path.Combine(FixtureDir, name + ".safetensors"));

    private static Variable Leaf(SafetensorsFile f, string name) => new(f.Get(name).Clone(), requiresGrad: true);

    private static int MetaInt(SafetensorsFile f, string key) => int.Parse(f.Metadata[key], CultureInfo.InvariantCulture);

    private static float MetaFloat(SafetensorsFile f, string key) => float.Parse(f.Metadata[key], CultureInfo.InvariantCulture);

    /// <summary>Runs <paramref name="forward"/> on a tape, seeds ∂L/∂y = gy from the fixture (L = Σ y·gy, as
    /// torch.autograd.grad with grad_outputs=gy) and runs the backward rules.</summary>
    private static Variable ForwardBackward(SafetensorsFile f, Func<Variable> forward)
    {
        Variable y;
        using (var tape = Tape.Start())
        {
            y = forward();
            var gy = f.Get("gy");
            Assert.Equal(gy.Shape, y.Shape);
            y.AccumulateGrad(gy.Data);
            tape.Backward(new Variable(new Tensor(new[] { 0f }, 1), true));
        }
        return y;
    }

    private static void AssertTensor(SafetensorsFile f, string expectedName, Tensor actual, string what,
        double atol = Atol, double rtol = Rtol)
    {
        var expected = f.Get(expectedName);
        Assert.True(expected.Length == actual.Length, $"{what}: shape {actual.ShapeString}, expected {expected.ShapeString}");
        TestUtil.AssertClose(expected.Data, actual.Data, atol, rtol, what);
    }

    private static void AssertGrad(SafetensorsFile f, string expectedName, Variable v, string what)
    {
        Assert.True(v.Grad != null, $"{what}: no gradient reached it");
        AssertTensor(f, expectedName, v.Grad!, what);
    }

    // ------------------------------------------------------------------ convolution

    [Theory]
    [InlineData("conv_k3s1p1_bias")]
    [InlineData("conv_k3s2p1_nobias")]
    [InlineData("conv_k1s2p0_nobias")]
    [InlineData("conv_k5s1p2_bias")]
    [InlineData("conv_k3s1p0_bias")]
    public void Conv2d_MatchesTorch(string name)
    {
        var f = Fixture(name);
        Assert.Equal("conv2d", f.Metadata["op"]);
        Assert.Equal(1, MetaInt(f, "dilation"));
        Assert.Equal(1, MetaInt(f, "groups"));
        int stride = MetaInt(f, "stride"), padding = MetaInt(f, "padding");
        bool bias = f.Metadata["bias"] == "true";
        var x = Leaf(f, "x");
        var w = Leaf(f, "w");
        Assert.Equal(MetaInt(f, "kernel"), w.Shape[2]);
        var b = bias ? Leaf(f, "b") : null;
        Assert.Equal(bias, f.Tensors.ContainsKey("b"));

        var y = ForwardBackward(f, () => Conv2dOp.Forward(x, w, b, stride, stride, padding, padding));

        Assert.Equal(f.Get("y").Shape, y.Shape);
        AssertTensor(f, "y", y.Value, $"{name} y");
        AssertGrad(f, "gx", x, $"{name} gx");
        AssertGrad(f, "gw", w, $"{name} gw");
        if (b != null) AssertGrad(f, "gb", b, $"{name} gb");
    }

    // ------------------------------------------------------------------ batch normalization

    [Theory]
    [InlineData("bn2d_train")]
    [InlineData("bn2d_eval")]
    [InlineData("bn1d_train")]
    [InlineData("bn1d_eval")]
    public void BatchNorm_MatchesTorch(string name)
    {
        var f = Fixture(name);
        Assert.Equal("batchnorm", f.Metadata["op"]);
        bool training = f.Metadata["mode"] == "train";
        float momentum = MetaFloat(f, "momentum"), eps = MetaFloat(f, "eps");
        var x = Leaf(f, "x");
        var gamma = Leaf(f, "weight");
        var beta = Leaf(f, "bias");
        float[] runningMean = (float[])f.Get("rm0").Data.Clone(), runningVar = (float[])f.Get("rv0").Data.Clone();

        var y = ForwardBackward(f, () => BatchNormOp.Forward(x, gamma, beta, runningMean, runningVar, training, momentum, eps));

        Assert.Equal(f.Get("y").Shape, y.Shape);
        AssertTensor(f, "y", y.Value, $"{name} y");
        AssertGrad(f, "gx", x, $"{name} gx");
        AssertGrad(f, "gweight", gamma, $"{name} gweight");
        AssertGrad(f, "gbias", beta, $"{name} gbias");
        if (training)
        {
            // Running statistics after one step: momentum update, running_var from the unbiased batch variance.
            TestUtil.AssertClose(f.Get("rm1").Data, runningMean, Atol, Rtol, $"{name} running mean");
            TestUtil.AssertClose(f.Get("rv1").Data, runningVar, Atol, Rtol, $"{name} running var");
        }
        else
        {
            // Eval mode must leave the running statistics untouched.
            Assert.Equal(f.Get("rm0").Data, runningMean);
            Assert.Equal(f.Get("rv0").Data, runningVar);
        }
    }

    // ------------------------------------------------------------------ pooling

    [Fact]
    public void AvgPool2d_MatchesTorch()
    {
        var f = Fixture("avgpool2");
        Assert.Equal("avgpool2d", f.Metadata["op"]);
        var x = Leaf(f, "x");
        var y = ForwardBackward(f, () => PoolOps.AvgPool2d(x, MetaInt(f, "kernel"), MetaInt(f, "stride")));
        Assert.Equal(f.Get("y").Shape, y.Shape);
        AssertTensor(f, "y", y.Value, "avgpool2 y");
        AssertGrad(f, "gx", x, "avgpool2 gx");
    }

    [Fact]
    public void MaxPool2d_MatchesTorch()
    {
        var f = Fixture("maxpool2");
        Assert.Equal("maxpool2d", f.Metadata["op"]);
        var x = Leaf(f, "x");
        var y = ForwardBackward(f, () => PoolOps.MaxPool2d(x, MetaInt(f, "kernel"), MetaInt(f, "stride")));
        Assert.Equal(f.Get("y").Shape, y.Shape);
        // Max pooling only selects values and routes gradients: the results must be bit-exact.
        Assert.Equal(f.Get("y").Data, y.Value.Data);
        Assert.Equal(f.Get("gx").Data, x.Grad!.Data);
    }

    [Fact]
    public void GlobalAvgPool_MatchesTorch()
    {
        var f = Fixture("gap");
        Assert.Equal("adaptive_avgpool2d", f.Metadata["op"]);
        Assert.Equal(1, MetaInt(f, "output_size"));
        var x = Leaf(f, "x");
        var y = ForwardBackward(f, () => PoolOps.GlobalAvgPool(x));
        Assert.Equal(f.Get("y").Shape, y.Shape);
        AssertTensor(f, "y", y.Value, "gap y");
        AssertGrad(f, "gx", x, "gap gx");
    }

    // ------------------------------------------------------------------ linear

    [Fact]
    public void Linear_MatchesTorch()
    {
        var f = Fixture("linear");
        Assert.Equal("linear", f.Metadata["op"]);
        var x = Leaf(f, "x");
        var w = Leaf(f, "w");
        var b = Leaf(f, "b");
        var y = ForwardBackward(f, () => LinearOp.Forward(x, w, b));
        Assert.Equal(f.Get("y").Shape, y.Shape);
        AssertTensor(f, "y", y.Value, "linear y");
        AssertGrad(f, "gx", x, "linear gx");
        AssertGrad(f, "gw", w, "linear gw");
        AssertGrad(f, "gb", b, "linear gb");
    }

    // ------------------------------------------------------------------ cross-entropy

    [Theory]
    [InlineData("ce")]
    [InlineData("ce_ls01")]
    public void CrossEntropy_MatchesTorch(string name)
    {
        var f = Fixture(name);
        Assert.Equal("cross_entropy", f.Metadata["op"]);
        Assert.Equal("mean", f.Metadata["reduction"]);
        float smoothing = MetaFloat(f, "label_smoothing");
        var logits = Leaf(f, "logits");
        // Labels are stored as float32 (exact small integers).
        int[] labels = f.Get("labels").Data.Select(v => checked((int)v)).ToArray();
        Assert.All(f.Get("labels").Data, v => Assert.Equal(MathF.Round(v), v));

        Variable loss;
        using (var tape = Tape.Start())
        {
            loss = CrossEntropyOp.Forward(logits, labels, smoothing);
            tape.Backward(loss);
        }

        Assert.Empty(f.Get("loss").Shape); // PyTorch's mean loss is 0-d
        AssertTensor(f, "loss", loss.Value, $"{name} loss");
        AssertGrad(f, "glogits", logits, $"{name} glogits");
    }

    // ------------------------------------------------------------------ QCFS

    [Fact]
    public void Qcfs_MatchesTorch()
    {
        var f = Fixture("qcfs");
        Assert.Equal("qcfs", f.Metadata["op"]);
        Assert.Equal("clip-then-floor", f.Metadata["order"]);
        var act = new QcfsActivation(levels: MetaInt(f, "L"), lambdaInit: f.Get("lam").Data[0]) { Shift = MetaFloat(f, "phi") };
        Assert.Equal(f.Get("lam").Shape, act.Lambda.Value.Shape);
        var z = Leaf(f, "z");

        var y = ForwardBackward(f, () => act.Forward(z));

        AssertTensor(f, "y", y.Value, "qcfs y");
        AssertGrad(f, "gz", z, "qcfs gz");
        Assert.True(act.Lambda.Grad != null, "qcfs: no gradient reached λ");
        AssertTensor(f, "glam", act.Lambda.Grad!, "qcfs glam");
    }

    // ------------------------------------------------------------------ the fixture set itself

    [Fact]
    public void Fixtures_AreAllTested()
    {
        var onDisk = Directory.GetFiles(FixtureDir, "*.safetensors").Select(p => Path.GetFileNameWithoutExtension(p)!).Order().ToArray();
        // Spike-level goldens, each with its own script and test: snn_cnn_small (tools/make_snn_fixtures.py,
        // SnnEquivalenceTests), methods_resnet20 (SRP and COS, tools/make_method_fixtures.py, MethodGoldenTests),
        // neurons_resnet20 (parallel, signed, burst, FTBC neurons, tools/make_neuron_fixtures.py, NewMethodTests).
        Assert.Equal(AllFixtures.Concat(["snn_cnn_small", "methods_resnet20", "neurons_resnet20"]).Order().ToArray(), onDisk);
    }

    [Fact]
    public void Fixtures_TotalAtMostOneMegabyte()
    {
        long total = Directory.GetFiles(FixtureDir, "*.safetensors").Sum(p => new FileInfo(p).Length);
        Assert.True(total > 0, $"no fixtures found in {FixtureDir}");
        Assert.True(total <= 1024 * 1024, $"fixtures total {total} bytes, over the 1 MB budget");
    }
}
