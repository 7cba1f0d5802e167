using SpikeSharp.Tensors;

namespace SpikeSharp.Autograd.Ops;

/// <summary>2-D convolution y = conv(x, w) + b with its backward rule (∂x through the transposed convolution or
/// col2im, ∂w and ∂b through im2col GEMMs). Shapes: x [N,Cin,H,W], w [Cout,Cin,KH,KW], b [Cout].</summary>
public static class Conv2dOp
{
    public static Variable Forward(Variable x, Variable w, Variable? b, int stride = 1, int padding = 0) =>
        Forward(x, w, b, stride, stride, padding, padding);

    /// <summary>Inference only: the convolution with <paramref name="epilogue"/> applied to each output image while it is
    /// in cache (see <see cref="IConvEpilogue"/>); the result is what the epilogue left in the output.</summary>
    public static Variable Forward(Variable x, Variable w, Variable? b, int stride, int padding, IConvEpilogue epilogue) =>
        Forward(x, w, b, stride, stride, padding, padding, epilogue);

    /// <summary>A grouped (groups &gt; 1, e.g. depthwise) or dilated convolution, w [Cout, Cin/groups, K, K] (square
    /// kernel, the same stride and padding on both axes); groups = dilation = 1 is the ordinary convolution.</summary>
    public static Variable ForwardGrouped(Variable x, Variable w, Variable? b, int stride, int padding, int dilation, int groups)
    {
        if (groups == 1 && dilation == 1) return Forward(x, w, b, stride, padding);
        var xs = x.Shape;
        var ws = w.Shape;
        if (xs.Length != 4 || ws.Length != 4 || ws[2] != ws[3] || xs[1] != ws[1] * groups)
            throw new ArgumentException($"conv2d (groups {groups}): input {x.Value.ShapeString} does not fit weight {w.Value.ShapeString} (expected [N,{(ws.Length > 1 ? ws[1] * groups : 0)},H,W])");
        if (b != null && b.Value.Length != ws[0])
            throw new ArgumentException($"conv2d: bias has {b.Value.Length} elements, expected {ws[0]}");
        var g = new GroupedConvGeometry(xs[0], xs[1], xs[2], xs[3], ws[0], ws[2], stride, padding, dilation, groups);
        g.Validate();
        var y = Tensor.Scratch(g.N, g.OutChannels, g.OutH, g.OutW);
        bool record = Tape.IsRecording(x, w, b);
        using (Profiler.Measure(groups > 1 ? "grouped conv fwd" : "dilated conv fwd", x.Value))
            if (!DilatedAsDense(g, x.Value.Data, w.Value.Data, b?.Value.Data, y.Data, skipSilentChannels: !record))
                GroupedConvKernels.Forward(g, x.Value.Data, w.Value.Data, b?.Value.Data, y.Data);
        OpCounter.Add("conv2d", g.OutChannels * (long)g.OutH * g.OutW * g.MacsPerOutput, x.Value);
        var result = new Variable(y, record);
        if (record)
            Tape.Record(() =>
            {
                var gy = result.Grad;
                if (gy == null) return;
                if (w.RequiresGrad || (b?.RequiresGrad ?? false))
                {
                    float[] gw = w.RequiresGrad ? w.GradBuffer().Data : Tensor.Scratch(w.Shape, clear: true).Data;
                    GroupedConvKernels.BackwardWeight(g, gy.Data, x.Value.Data, gw, b is { RequiresGrad: true } ? b.GradBuffer().Data : null);
                }
                if (x.RequiresGrad)
                {
                    var (gx, accumulate) = x.GradTarget();
                    GroupedConvKernels.BackwardData(g, gy.Data, w.Value.Data, gx, accumulate);
                }
            });
        return result;
    }

    /// <summary>A dilated convolution (groups = 1) as the dense one of its spread kernel, K' = d·(K − 1) + 1 with zeros
    /// between the taps: (K'/K)² times the multiply-adds, but on the tuned dense kernels instead of direct loops (3×3,
    /// d = 2: 2.8× the work, measured 2–3× faster on Inception's branch). Taken where K'² ≤ 4·K²; false otherwise.</summary>
    private static bool DilatedAsDense(GroupedConvGeometry g, float[] x, float[] w, float[]? b, float[] y, bool skipSilentChannels)
    {
        int k = g.Kernel, spread = g.Dilation * (k - 1) + 1;
        if (g.Groups != 1 || g.Dilation == 1 || spread * spread > 4 * k * k) return false;
        var dense = Tensor.Scratch(g.OutChannels, g.InChannels, spread, spread).Data;
        Array.Clear(dense, 0, g.OutChannels * g.InChannels * spread * spread);
        for (int oc = 0; oc < g.OutChannels * g.InChannels; oc++)
            for (int kh = 0; kh < k; kh++)
                for (int kw = 0; kw < k; kw++)
                    dense[(oc * spread + kh * g.Dilation) * spread + kw * g.Dilation] = w[(oc * k + kh) * k + kw];
        var geometry = new Conv2dGeometry(g.N, g.InChannels, g.H, g.W, g.OutChannels, spread, spread, g.Stride, g.Stride, g.Padding, g.Padding);
        Conv2dKernels.Forward(geometry, x, dense, b, y, skipSilentChannels: skipSilentChannels);
        return true;
    }

    public static Variable Forward(Variable x, Variable w, Variable? b, int strideH, int strideW, int padH, int padW,
        IConvEpilogue? epilogue = null)
    {
        var xs = x.Shape;
        var ws = w.Shape;
        if (xs.Length != 4 || ws.Length != 4 || xs[1] != ws[1])
            throw new ArgumentException($"conv2d: input {x.Value.ShapeString} does not fit weight {w.Value.ShapeString} (expected [N,{(ws.Length > 1 ? ws[1] : 0)},H,W])");
        if (b != null && b.Value.Length != ws[0])
            throw new ArgumentException($"conv2d: bias has {b.Value.Length} elements, expected {ws[0]}");
        var g = new Conv2dGeometry(xs[0], xs[1], xs[2], xs[3], ws[0], ws[2], ws[3], strideH, strideW, padH, padW);
        var y = Tensor.Scratch(g.N, g.OutChannels, g.OutH, g.OutW);
        bool record = Tape.IsRecording(x, w, b);
        if (record && epilogue != null) throw new InvalidOperationException("conv2d: a fused epilogue has no backward rule; use it in inference only");
        // Inference skips input channels that are silent across a group of images (spikes are mostly zero), and runs
        // on spikes of one amplitude as bits.
        float spikes = !record && Conv2dKernels.RunsOnSpikes(g, x.Value.Data, x.Value.SpikeAmplitude) ? x.Value.SpikeAmplitude : 0;
        string label = (spikes > 0 ? "spike " : "") + (epilogue?.Name ?? "conv fwd");
        using (Profiler.Measure(label, g))
            Conv2dKernels.Forward(g, x.Value.Data, w.Value.Data, b?.Value.Data, y.Data, skipSilentChannels: !record, epilogue: epilogue,
                spikeAmplitude: spikes);
        OpCounter.Add("conv2d", (long)g.OutChannels * g.OutPlane * g.ColRows, x.Value);
        var result = new Variable(y, record);
        if (record)
            Tape.Record(() =>
            {
                var gy = result.Grad;
                if (gy == null) return;
                if (w.RequiresGrad || (b?.RequiresGrad ?? false))
                {
                    // BackwardWeight accumulates into both; a frozen weight gets a throwaway buffer.
                    using var _ = Profiler.Measure("conv bwd-weight", g);
                    float[] gw = w.RequiresGrad ? w.GradBuffer().Data : Tensor.Scratch(w.Shape, clear: true).Data;
                    Conv2dKernels.BackwardWeight(g, gy.Data, x.Value.Data, gw, b is { RequiresGrad: true } ? b.GradBuffer().Data : null);
                }
                if (x.RequiresGrad)
                {
                    using var _ = Profiler.Measure("conv bwd-data", g);
                    var (gx, accumulate) = x.GradTarget();
                    Conv2dKernels.BackwardData(g, gy.Data, w.Value.Data, gx, accumulate: accumulate);
                }
            });
        return result;
    }
}
