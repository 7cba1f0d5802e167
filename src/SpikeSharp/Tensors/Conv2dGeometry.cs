namespace SpikeSharp.Tensors;

/// <summary>Shapes of a 2-D convolution: input [N, Cin, H, W], weight [Cout, Cin, KH, KW],
/// output [N, Cout, OutH, OutW]. Validated once at construction.</summary>
public sealed record Conv2dGeometry
{
    public int N { get; }
    public int InChannels { get; }
    public int H { get; }
    public int W { get; }
    public int OutChannels { get; }
    public int KH { get; }
    public int KW { get; }
    public int StrideH { get; }
    public int StrideW { get; }
    public int PadH { get; }
    public int PadW { get; }
    public int OutH { get; }
    public int OutW { get; }

    /// <summary>Rows of the im2col matrix: Cin·KH·KW.</summary>
    public int ColRows => InChannels * KH * KW;
    public int InPlane => H * W;
    public int OutPlane => OutH * OutW;

    public Conv2dGeometry(int n, int inChannels, int h, int w, int outChannels, int kh, int kw,
        int strideH, int strideW, int padH, int padW)
    {
        if (n < 0 || inChannels <= 0 || h <= 0 || w <= 0 || outChannels <= 0 || kh <= 0 || kw <= 0)
            throw new ArgumentException($"invalid conv shape: input [{n},{inChannels},{h},{w}], kernel [{outChannels},{inChannels},{kh},{kw}]");
        if (strideH <= 0 || strideW <= 0 || padH < 0 || padW < 0)
            throw new ArgumentException($"invalid conv stride ({strideH},{strideW}) or padding ({padH},{padW})");
        (N, InChannels, H, W, OutChannels, KH, KW) = (n, inChannels, h, w, outChannels, kh, kw);
        (StrideH, StrideW, PadH, PadW) = (strideH, strideW, padH, padW);
        OutH = (h + 2 * padH - kh) / strideH + 1;
        OutW = (w + 2 * padW - kw) / strideW + 1;
        if (h + 2 * padH < kh || w + 2 * padW < kw)
            throw new ArgumentException($"conv kernel {kh}x{kw} is larger than the padded input {h + 2 * padH}x{w + 2 * padW}");
    }
}
