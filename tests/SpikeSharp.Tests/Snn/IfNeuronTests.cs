using SpikeSharp.Autograd;
using SpikeSharp.Nn;
using SpikeSharp.Snn;
using SpikeSharp.Tensors;
using Xunit;

namespace SpikeSharp.Tests.Snn;

/// <summary>Spec §8(c) cases 1–3 and the fused kernels against the charge/fire/reset reference.</summary>
public class IfNeuronTests
{
    /// <summary>Spike trains of one neuron layer driven by a constant input for T steps.</summary>
    private static float[][] Trains(float theta, float[] inputs, int steps, float initialFraction = 0.5f)
    {
        var neuron = new IfNeuron("l", theta) { InitialFraction = initialFraction };
        neuron.Configure(inputs.Length, steps);
        var y = neuron.Forward(new Variable(new Tensor((float[])inputs.Clone(), inputs.Length))).Value;
        return Enumerable.Range(0, inputs.Length).Select(i => Enumerable.Range(0, steps).Select(t => y.Data[t * inputs.Length + i] / theta).ToArray()).ToArray();
    }

    [Fact]
    public void Case1_IfTraces()
    {
        var trains = Trains(1f, [0.3f, 0.6f, 0.9f, -0.2f, 1.7f], 4);
        Assert.Equal(new float[] { 0, 1, 0, 0 }, trains[0]);
        Assert.Equal(new float[] { 1, 0, 1, 0 }, trains[1]);
        Assert.Equal(new float[] { 1, 1, 1, 1 }, trains[2]);
        Assert.Equal(new float[] { 0, 0, 0, 0 }, trains[3]);
        Assert.Equal(new float[] { 1, 1, 1, 1 }, trains[4]);
    }

    [Fact]
    public void Case2_ConstantInputWithTEqualsLIsExactlyQcfs()
    {
        var rng = new Random(2);
        int mismatches = 0, tested = 0;
        foreach (int levels in new[] { 1, 2, 4, 8, 16 })
            foreach (int steps in new[] { levels, levels + 3 })
            {
                const int n = 10_000;
                float lambda = 0.5f + 4 * rng.NextSingle();
                var z = new float[n];
                for (int i = 0; i < n; i++) z[i] = lambda * (-1f + 2.5f * rng.NextSingle());
                var neuron = new IfNeuron("l", lambda);
                neuron.Configure(n, steps);
                var y = neuron.Forward(new Variable(new Tensor((float[])z.Clone(), n))).Value.Data;
                for (int i = 0; i < n; i++)
                {
                    // NOTE: skip inputs within float rounding of a level boundary (spec §7.1).
                    double u = steps * (double)z[i] / lambda + 0.5;
                    if (Math.Abs(u - Math.Round(u)) < 1e-4) continue;
                    double count = 0;
                    for (int t = 0; t < steps; t++) count += y[t * n + i];
                    tested++;
                    // T spikes of θ over T steps equal QCFS with L' = T levels.
                    if (Math.Abs(count / steps - QcfsActivation.Quantize(z[i], lambda, steps)) > 1e-5 * lambda) mismatches++;
                }
            }
        Assert.True(tested > 90_000, $"only {tested} samples away from ties");
        Assert.Equal(0, mismatches);
    }

    [Theory]
    [InlineData(2, 4)]
    [InlineData(4, 4)]
    [InlineData(8, 4)]
    [InlineData(3, 7)]
    public void Case3_ExpectedErrorIsZeroWithHalfShiftAndBiasedWithout(int steps, int levels)
    {
        const int n = 100_000;
        const float lambda = 1f;
        var rng = new Random(steps * 10 + levels);
        var z = new float[n];
        for (int i = 0; i < n; i++) z[i] = lambda * rng.NextSingle();
        var neuron = new IfNeuron("l", lambda);
        neuron.Configure(n, steps);
        var y = neuron.Forward(new Variable(new Tensor((float[])z.Clone(), n))).Value.Data;
        double diffHalf = 0, diffFloor = 0;
        for (int i = 0; i < n; i++)
        {
            double snn = 0;
            for (int t = 0; t < steps; t++) snn += y[t * n + i];
            snn /= steps;
            diffHalf += snn - QcfsActivation.Quantize(z[i], lambda, levels, 0.5f);
            diffFloor += snn - QcfsActivation.Quantize(z[i], lambda, levels, 0f);
        }
        Assert.InRange(diffHalf / n, -0.005, 0.005);
        Assert.InRange(diffFloor / n, lambda / (2.0 * levels) - 0.005, lambda / (2.0 * levels) + 0.005);
    }

    [Fact]
    public void NeuronKernelMatchesTheChargeFireResetReferenceAtEveryLength()
    {
        foreach (bool strict in new[] { false, true })
            for (int n = 0; n <= 257; n++)
            {
                const int steps = 5;
                var input = TestUtil.RandomRange(n, -0.5f, 1.5f, steps * n).Data;
                var mask = TestUtil.Random(n + 1, n).Data.Select(v => v > 0 ? 1f : 0f).ToArray();
                float theta = 0.8f;
                // The reference: charge, fire, reset (SpikingJelly's split), one neuron at a time.
                var vRef = Enumerable.Repeat(0.4f, n).ToArray();
                var outRef = new float[steps * n];
                var countsRef = new long[steps];
                for (int t = 0; t < steps; t++)
                    for (int i = 0; i < n; i++)
                    {
                        vRef[i] += input[t * n + i];
                        float spike = (strict ? vRef[i] > theta : vRef[i] >= theta) ? 1f : 0f;
                        vRef[i] -= theta * spike;
                        outRef[t * n + i] = spike * theta * mask[i];
                        if (outRef[t * n + i] != 0) countsRef[t]++; // emitted spikes: a masked one does not count
                    }
                foreach (bool vectorize in new[] { true, false })
                {
                    var v = Enumerable.Repeat(0.4f, n).ToArray();
                    var output = new float[steps * n];
                    var counts = new long[steps];
                    NeuronKernel.Run(new MaskedIfStep(new IfStep(theta, strict), mask, 0), input, false, v, output, steps, n, 0, n, counts, vectorize);
                    Assert.Equal(outRef, output);
                    Assert.Equal(vRef, v);
                    Assert.Equal(countsRef, counts);
                }
            }
    }

    [Fact]
    public void BurstStepVectorAndScalarBodiesAgree()
    {
        for (int n = 1; n <= 70; n += 23)
        {
            const int steps = 6;
            var input = TestUtil.RandomRange(n, -1f, 3f, steps * n).Data;
            var step = new BurstStep(0.25f, 3);
            var results = new[] { true, false }.Select(vectorize =>
            {
                var v = Enumerable.Repeat(0.125f, n).ToArray();
                var output = new float[steps * n];
                var counts = new long[steps];
                NeuronKernel.Run(step, input, false, v, output, steps, n, 0, n, counts, vectorize);
                return (v, output, counts);
            }).ToArray();
            Assert.Equal(results[1].v, results[0].v);
            Assert.Equal(results[1].output, results[0].output);
            Assert.Equal(results[1].counts, results[0].counts);
            Assert.True(results[0].counts.Sum() > 0);
        }
    }

    [Fact]
    public void StepMajorEqualsLayerMajor()
    {
        const int n = 300, steps = 6;
        var input = TestUtil.RandomRange(3, -0.5f, 1.5f, steps * n).Data;
        var layer = new IfNeuron("l", 1f);
        layer.Configure(n, steps);
        var all = layer.Forward(new Variable(new Tensor((float[])input.Clone(), steps * n))).Value.Data;
        var step = new IfNeuron("l", 1f);
        step.Configure(n, 1);
        for (int t = 0; t < steps; t++)
        {
            var y = step.Forward(new Variable(new Tensor(input.AsSpan(t * n, n).ToArray(), n))).Value.Data;
            Assert.Equal(all.AsSpan(t * n, n).ToArray(), y);
        }
    }

    [Fact]
    public void GreaterRuleDoesNotFireAtExactThreshold()
    {
        var neuron = new IfNeuron("l", 1f) { InitialFraction = 0f, Rule = FireRule.Greater };
        neuron.Configure(1, 1);
        Assert.Equal(0f, neuron.Forward(new Variable(Tensor.FromArray([1f]))).Value.Data[0]);
        var ge = new IfNeuron("l", 1f) { InitialFraction = 0f };
        ge.Configure(1, 1);
        Assert.Equal(1f, ge.Forward(new Variable(Tensor.FromArray([1f]))).Value.Data[0]);
    }

    [Fact]
    public void RejectsNonPositiveThreshold() =>
        Assert.Throws<SpikeSharpException>(() => new IfNeuron("conv1.2", 0f));
}
