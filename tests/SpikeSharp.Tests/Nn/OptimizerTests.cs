using SpikeSharp.Interop;
using SpikeSharp.Models;
using SpikeSharp.Nn;
using SpikeSharp.Tensors;
using SpikeSharp.Training;
using Xunit;

namespace SpikeSharp.Tests.Nn;

public class OptimizerTests
{
    [Fact]
    public void SgdMatchesPyTorchSemanticsWithMomentumAndDecay()
    {
        var p = new SpikeSharp.Autograd.Parameter(Tensor.FromArray([1f, -2f]));
        var sgd = new Sgd([new("w", p)], momentum: 0.9f, weightDecay: 0.1f);
        p.AccumulateGrad([0.5f, 0.5f]);
        sgd.Step(0.1f);            // g = 0.5 + 0.1·w; b = g; w −= 0.1·b
        Assert.Equal(1f - 0.1f * 0.6f, p.Value.Data[0], 6);
        p.ZeroGrad();
        p.AccumulateGrad([0.5f, 0.5f]);
        float w0 = p.Value.Data[0], g = 0.5f + 0.1f * w0, b = 0.9f * 0.6f + g;
        sgd.Step(0.1f);
        Assert.Equal(w0 - 0.1f * b, p.Value.Data[0], 6);
    }

    [Fact]
    public void AdamMatchesTheBiasCorrectedUpdateStepByStep()
    {
        // torch.optim.Adam (amsgrad off), worked out in float64 for three steps with changing gradients and L2 decay.
        const double b1 = 0.9, b2 = 0.999, eps = 1e-8, wd = 0.01, lr = 0.05;
        double[] w = [1.0, -2.0, 0.5], m = new double[3], v = new double[3];
        float[][] grads = [[0.5f, -0.25f, 0f], [0.1f, 0.3f, -2f], [-0.4f, 0f, 1f]];
        var p = new SpikeSharp.Autograd.Parameter(Tensor.FromArray(w.Select(x => (float)x).ToArray()));
        var adam = new Adam([new("w", p)], (float)b1, (float)b2, (float)eps, (float)wd);
        for (int t = 1; t <= grads.Length; t++)
        {
            p.ZeroGrad();
            p.AccumulateGrad((float[])grads[t - 1].Clone());
            adam.Step((float)lr);
            for (int i = 0; i < 3; i++)
            {
                double g = grads[t - 1][i] + wd * w[i];
                m[i] = b1 * m[i] + (1 - b1) * g;
                v[i] = b2 * v[i] + (1 - b2) * g * g;
                w[i] -= lr * (m[i] / (1 - Math.Pow(b1, t))) / (Math.Sqrt(v[i] / (1 - Math.Pow(b2, t))) + eps);
                Assert.True(Math.Abs(w[i] - p.Value.Data[i]) < 1e-5, $"step {t}, element {i}: {p.Value.Data[i]}, expected {w[i]}");
            }
        }
        // The first step moves every element with a gradient by lr against its sign (m̂/√v̂ = ±1).
        var q = new SpikeSharp.Autograd.Parameter(Tensor.FromArray([3f, 3f]));
        q.AccumulateGrad([1e-3f, -7f]);
        new Adam([new("q", q)]).Step(0.1f);
        Assert.Equal(2.9f, q.Value.Data[0], 5);
        Assert.Equal(3.1f, q.Value.Data[1], 5);
    }

    [Fact]
    public void ExemptParametersGetNoDecay()
    {
        var p = new SpikeSharp.Autograd.Parameter(Tensor.FromArray([3f]), weightDecay: false);
        new Sgd([new("w", p)], momentum: 0f, weightDecay: 0.5f).Step(0.1f); // no gradient: untouched
        p.AccumulateGrad([0f]);
        new Sgd([new("w", p)], momentum: 0f, weightDecay: 0.5f).Step(0.1f);
        Assert.Equal(3f, p.Value.Data[0]);
    }

    [Fact]
    public void TrainerCanExemptBatchNormFromDecay()
    {
        var spec = new ModelSpec("cnn-small", 1, 8, 8, 10, 0.25f, ActivationSpec.Qcfs());
        var trainer = new Trainer(spec, new TrainOptions { WeightDecayOnBatchNorm = false }, new DataInfo("mnist", [0f], [1f]));
        var bns = trainer.Model.NamedModules().Select(m => m.Value).OfType<BatchNorm>().ToList();
        Assert.NotEmpty(bns);
        Assert.All(bns, bn => Assert.False(bn.Weight.WeightDecay || bn.Bias.WeightDecay));
        Assert.Contains(trainer.Model.Parameters(), q => q.WeightDecay);
    }

    [Theory]
    [InlineData("cosine", 0, 0.1f)]
    [InlineData("cosine", 5, 0.05f)]
    [InlineData("step", 30, 0.01f)]
    [InlineData("constant", 7, 0.1f)]
    public void Schedules(string kind, int epoch, float expected) =>
        Assert.Equal(expected, new LrSchedule(kind).At(0.1f, epoch, 10), 5);
}
