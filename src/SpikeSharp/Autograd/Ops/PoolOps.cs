using SpikeSharp.Tensors;

namespace SpikeSharp.Autograd.Ops;

/// <summary>Pooling primitives on x [N,C,H,W]: average, max (with saved argmax) and global average.</summary>
public static class PoolOps
{
    public static Variable AvgPool2d(Variable x, int kernel, int stride) => Pool(x, kernel, kernel, stride, stride, max: false);

    public static Variable MaxPool2d(Variable x, int kernel, int stride) => Pool(x, kernel, kernel, stride, stride, max: true);

    /// <summary>Adaptive average pooling to 1×1: [N,C,H,W] → [N,C,1,1].</summary>
    public static Variable GlobalAvgPool(Variable x)
    {
        CheckRank4(x, "global average pool");
        return Pool(x, x.Shape[2], x.Shape[3], 1, 1, max: false);
    }

    private static Variable Pool(Variable x, int kh, int kw, int sh, int sw, bool max)
    {
        CheckRank4(x, max ? "max pool" : "avg pool");
        int n = x.Shape[0], c = x.Shape[1], h = x.Shape[2], w = x.Shape[3];
        if (kh > h || kw > w || kh <= 0 || kw <= 0 || sh <= 0 || sw <= 0)
            throw new ArgumentException($"pool window {kh}x{kw} stride {sh} does not fit input {x.Value.ShapeString}");
        int oh = PoolKernels.OutSize(h, kh, sh), ow = PoolKernels.OutSize(w, kw, sw), planes = n * c;
        using var _ = Profiler.Measure(max ? "maxpool fwd" : "avgpool fwd", x.Value);
        var y = Tensor.Scratch(n, c, oh, ow);
        int[]? argmax = null;
        if (max)
        {
            argmax = new int[y.Length];
            PoolKernels.MaxForward(x.Value.Data, planes, h, w, kh, kw, sh, sw, y.Data, argmax);
        }
        else PoolKernels.AvgForward(x.Value.Data, planes, h, w, kh, kw, sh, sw, y.Data);
        bool record = Tape.IsRecording(x);
        var result = new Variable(y, record);
        if (record)
            Tape.Record(() =>
            {
                if (result.Grad == null) return;
                using var _ = Profiler.Measure(max ? "maxpool bwd" : "avgpool bwd", x.Value);
                var gx = x.GradBuffer().Data;
                if (argmax != null) PoolKernels.MaxBackward(result.Grad.Data, argmax, planes, h, w, oh * ow, gx);
                else PoolKernels.AvgBackward(result.Grad.Data, planes, h, w, kh, kw, sh, sw, gx);
            });
        return result;
    }

    private static void CheckRank4(Variable x, string what)
    {
        if (x.Shape.Length != 4) throw new ArgumentException($"{what} expects [N,C,H,W], got {x.Value.ShapeString}");
    }
}
