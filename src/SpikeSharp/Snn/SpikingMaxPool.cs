using SpikeSharp.Autograd;
using SpikeSharp.Tensors;

namespace SpikeSharp.Snn;

/// <summary>
/// Max pooling of spikes (docs/conversion-methods.md "Max pooling"): in every window, step t passes on the output at t
/// of the unit whose accumulated output over steps 1..t is largest (the first such unit on ties). The pooled rate then
/// follows the window's highest rate, which is the ANN's max pool of the activations as t grows (Rueckauer et al.
/// 2017's gating by spike counts; accumulated values rather than counts, so graded and signed spikes pool the same way).
/// Layer-major: the input is the whole sequence [T·B, C, H, W], row t·B + b.
/// </summary>
public sealed class SpikingMaxPool(string layerName, int kernelSize, int stride) : Nn.Module
{
    public string LayerName { get; } = layerName;
    public int KernelSize { get; } = kernelSize;
    public int Stride { get; } = stride;
    private int _batch, _steps;

    /// <summary>Images and steps per call, as the neurons (<see cref="SpikingNetwork.Configure"/>).</summary>
    public void Configure(int batch, int steps) => (_batch, _steps) = (batch, steps);

    public override Variable Forward(Variable x)
    {
        var s = x.Shape;
        if (s.Length != 4) throw new ArgumentException($"max pool '{LayerName}': expects [T·B, C, H, W], got {x.Value.ShapeString}");
        if (_batch <= 0 || s[0] != _batch * _steps)
            throw new InvalidOperationException($"max pool '{LayerName}': {s[0]} rows, expected T·B = {_steps}·{_batch} spikes (call Configure; a max pool of the constant input is an ordinary max pool)");
        int c = s[1], h = s[2], w = s[3], oh = (h - KernelSize) / Stride + 1, ow = (w - KernelSize) / Stride + 1;
        int plane = h * w, outPlane = oh * ow, k = KernelSize;
        var y = Tensor.Scratch(s[0], c, oh, ow);
        var input = x.Value.Data;
        WorkerPool.Shared.For(_batch * c, (item, _) =>
        {
            int b = item / c, ch = item % c;
            var total = ThreadScratch.GetCleared(0, plane); // accumulated output of each unit of this image and channel
            for (int t = 0; t < _steps; t++)
            {
                int row = t * _batch + b;
                var frame = input.AsSpan((row * c + ch) * plane, plane);
                for (int i = 0; i < plane; i++) total[i] += frame[i];
                var output = y.Data.AsSpan((row * c + ch) * outPlane, outPlane);
                for (int r = 0; r < oh; r++)
                    for (int col = 0; col < ow; col++)
                    {
                        int best = (r * Stride) * w + col * Stride;
                        for (int dy = 0; dy < k; dy++)
                            for (int dx = 0; dx < k; dx++)
                            {
                                int at = (r * Stride + dy) * w + col * Stride + dx;
                                if (total[at] > total[best]) best = at;
                            }
                        output[r * ow + col] = frame[best];
                    }
            }
        });
        y.SpikeUnit = x.Value.SpikeUnit; // a pooled burst still counts its unit spikes
        y.SpikeAmplitude = x.Value.SpikeAmplitude; // and pooled spikes are still 0 or θ
        return new Variable(y);
    }
}
