using SpikeSharp.Conversion.Methods;
using SpikeSharp.Snn;
using Xunit;

namespace SpikeSharp.Tests.Conversion;

/// <summary>
/// The hand-written backward of <see cref="LayerwiseBptt.Loss"/>. A finite difference of the loss itself is zero almost
/// everywhere (spikes are discrete), so the reference is forward-mode differentiation in float64 of the same hard
/// forward pass with ∂s/∂m replaced by the derivative of the surrogate ½·tanh(α(m − θ)/θ) + ½, that derivative taken by
/// central finite differences, and ∂KL/∂r by central finite differences of the KL itself.
/// </summary>
public class LayerwiseBpttTests
{
    private const float Alpha = 2.5f;

    private static double Surrogate(double m, double theta) => 0.5 * Math.Tanh(Alpha * (m - theta) / theta) + 0.5;

    private static double[] SoftMax(double[] x)
    {
        double max = x.Max();
        var e = x.Select(v => Math.Exp(v - max)).ToArray();
        double sum = e.Sum();
        return e.Select(v => v / sum).ToArray();
    }

    private static double Kl(double[] target, double[] rate)
    {
        var p = SoftMax(target);
        var q = SoftMax(rate);
        return p.Select((pi, i) => pi * (Math.Log(pi) - Math.Log(q[i]))).Sum();
    }

    /// <summary>Rates of one sample and their forward-mode derivatives d r_i / d seed, where the seed adds 1 to the
    /// offset (t = −1) or to the current at step t of every neuron.</summary>
    private static (double[] Rate, double[] DRate) Forward(LayerwiseBptt.LayerData d, int b, float[] offsets, float theta, bool strict, int seedStep)
    {
        int s = d.Neurons;
        var rate = new double[s];
        var dRate = new double[s];
        for (int i = 0; i < s; i++)
        {
            double v = theta / 2.0 + offsets[i], dv = seedStep < 0 ? 1 : 0;
            for (int t = 0; t < d.Steps; t++)
            {
                double m = v + (d.Constant ? d.Currents[b * s + i] : d.Currents[(t * d.Samples + b) * s + i]);
                double dm = dv + (seedStep >= 0 && (d.Constant || t == seedStep) ? 1 : 0); // a constant current enters every step
                double spike = (strict ? m > theta : m >= theta) ? 1 : 0;
                const double h = 1e-5;
                double ds = (Surrogate(m + h, theta) - Surrogate(m - h, theta)) / (2 * h) * dm;
                v = m - theta * spike;
                dv = dm - theta * ds;
                rate[i] += theta * spike / d.Steps;
                dRate[i] += theta * ds / d.Steps;
            }
        }
        return (rate, dRate);
    }

    /// <summary>∂KL(softmax(a) ‖ softmax(r))/∂r_i by central differences.</summary>
    private static double[] KlGradient(double[] target, double[] rate)
    {
        var g = new double[rate.Length];
        for (int i = 0; i < rate.Length; i++)
        {
            const double h = 1e-6;
            var plus = (double[])rate.Clone();
            var minus = (double[])rate.Clone();
            plus[i] += h;
            minus[i] -= h;
            g[i] = (Kl(target, plus) - Kl(target, minus)) / (2 * h);
        }
        return g;
    }

    [Theory]
    [InlineData(false, false)]
    [InlineData(false, true)]
    [InlineData(true, false)]
    public void GradientsOfOffsetsAndCurrentsMatchForwardModeDifferentiation(bool constant, bool strict)
    {
        const int samples = 5, neurons = 37, steps = 4; // two vectors of 16 neurons and a scalar tail
        const float theta = 0.75f;
        var rng = new Random(constant ? 1 : strict ? 2 : 3);
        var currents = Enumerable.Range(0, (constant ? 1 : steps) * samples * neurons).Select(_ => (float)(rng.NextDouble() * 1.2 - 0.2)).ToArray();
        var targets = Enumerable.Range(0, samples * neurons).Select(_ => (float)(rng.NextDouble() * theta)).ToArray();
        var offsets = Enumerable.Range(0, neurons).Select(_ => (float)(rng.NextDouble() * 0.4 - 0.2)).ToArray();
        var d = new LayerwiseBptt.LayerData(currents, constant, targets, samples, neurons, steps);
        var neuron = new IfNeuron("l", theta) { Rule = strict ? FireRule.Greater : FireRule.GreaterOrEqual };
        var bptt = new LayerwiseBptt { Alpha = Alpha };
        var grad = new float[neurons];
        var currentGrad = new float[currents.Length];
        double loss = bptt.Loss(neuron, offsets, d, grad, 0, samples, currentGrad);

        var expectedGrad = new double[neurons];
        var expectedCurrentGrad = new double[currents.Length];
        double expectedLoss = 0;
        for (int b = 0; b < samples; b++)
        {
            var target = targets.Skip(b * neurons).Take(neurons).Select(x => (double)x).ToArray();
            var (rate, dRate) = Forward(d, b, offsets, theta, strict, -1);
            expectedLoss += Kl(target, rate) / samples;
            var gr = KlGradient(target, rate);
            for (int i = 0; i < neurons; i++) expectedGrad[i] += gr[i] * dRate[i] / samples;
            for (int t = 0; t < (constant ? 1 : steps); t++)
            {
                var (_, dRateT) = Forward(d, b, offsets, theta, strict, t);
                for (int i = 0; i < neurons; i++) expectedCurrentGrad[(t * samples + b) * neurons + i] = gr[i] * dRateT[i] / samples;
            }
        }
        Assert.Equal(expectedLoss, loss, 1e-5);
        Assert.True(expectedGrad.Any(g => Math.Abs(g) > 1e-3), "the case has no gradient to check");
        // Relative to each gradient, with a floor of 10⁻⁴ of the largest (float32 rounding), never an absolute 1.
        double floor = 1e-4 * expectedCurrentGrad.Concat(expectedGrad).Max(Math.Abs);
        for (int i = 0; i < neurons; i++)
            Assert.True(Math.Abs(expectedGrad[i] - grad[i]) <= floor + 1e-3 * Math.Abs(expectedGrad[i]), $"∂loss/∂offset[{i}] = {grad[i]}, expected {expectedGrad[i]}");
        for (int k = 0; k < currents.Length; k++)
            Assert.True(Math.Abs(expectedCurrentGrad[k] - currentGrad[k]) <= floor + 1e-3 * Math.Abs(expectedCurrentGrad[k]),
                $"∂loss/∂I[{k}] = {currentGrad[k]}, expected {expectedCurrentGrad[k]}");
    }

    /// <summary>The same batch gives the same bits with 1 to 4 workers. Gradients used to be summed in one partial per
    /// worker, filled in whatever order the pool handed out samples, so dual-phase's stage b trained different offsets
    /// from run to run.</summary>
    [Fact]
    public void GradientsDoNotDependOnTheWorkersThatComputeThem()
    {
        const int samples = 61, neurons = 257, steps = 4;
        const float theta = 0.75f;
        var rng = new Random(7);
        var currents = Enumerable.Range(0, steps * samples * neurons).Select(_ => (float)(rng.NextDouble() * 1.2 - 0.2)).ToArray();
        var targets = Enumerable.Range(0, samples * neurons).Select(_ => (float)(rng.NextDouble() * theta)).ToArray();
        var offsets = Enumerable.Range(0, neurons).Select(_ => (float)(rng.NextDouble() * 0.4 - 0.2)).ToArray();
        var d = new LayerwiseBptt.LayerData(currents, false, targets, samples, neurons, steps);
        var neuron = new IfNeuron("l", theta);
        (double Loss, float[] Grad, float[] CurrentGrad) Run(int workers)
        {
            var bptt = new LayerwiseBptt { Pool = new SpikeSharp.Tensors.WorkerPool(workers) };
            var grad = new float[neurons];
            var currentGrad = new float[currents.Length];
            double loss = bptt.Loss(neuron, offsets, d, grad, 0, samples, currentGrad);
            return (loss, grad, currentGrad);
        }
        var one = Run(1);
        Assert.Contains(one.Grad, g => g != 0);
        foreach (int workers in new[] { 2, 3, 4, 2 })
        {
            var other = Run(workers);
            Assert.Equal(one.Loss, other.Loss);
            Assert.Equal(one.Grad, other.Grad);
            Assert.Equal(one.CurrentGrad, other.CurrentGrad);
        }
    }
}
