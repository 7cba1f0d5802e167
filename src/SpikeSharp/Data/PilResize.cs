// Pillow's resampling, bit for bit, so that image-folder tensors equal what torchvision's transforms produce.
namespace SpikeSharp.Data;

/// <summary>
/// <c>PIL.Image.resize(size, Image.BILINEAR)</c> on uint8 planes [C,H,W], written from Pillow's algorithm
/// (libImaging/Resample.c, as in Pillow 9): a separable triangle filter whose support widens with the scale when
/// shrinking (antialiasing), weights normalized per output pixel and rounded to 22-bit fixed point, a horizontal pass
/// into a clipped uint8 image, then a vertical pass. A pass whose size does not change is skipped, as Pillow does.
/// </summary>
internal static class PilResize
{
    private const int PrecisionBits = 32 - 8 - 2;

    /// <summary>Resizes <paramref name="src"/> [C,inH,inW] to <paramref name="dst"/> [C,outH,outW].</summary>
    public static void Bilinear(ReadOnlySpan<byte> src, int channels, int inH, int inW, Span<byte> dst, int outH, int outW)
    {
        if (src.Length < channels * inH * inW || dst.Length < channels * outH * outW)
            throw new ArgumentException($"resize {channels}×{inH}×{inW} → {outH}×{outW}: buffers too small");
        bool horizontal = outW != inW, vertical = outH != inH;
        if (!horizontal && !vertical)
        {
            src[..(channels * inH * inW)].CopyTo(dst);
            return;
        }
        var (vBounds, vWeights, vTaps) = Coefficients(inH, outH);
        if (!horizontal)
        {
            Vertical(src, channels, inH, inW, 0, dst, outH, vBounds, vWeights, vTaps);
            return;
        }
        var (hBounds, hWeights, hTaps) = Coefficients(inW, outW);
        // Only the source rows the vertical pass reads are resampled horizontally.
        int firstRow = vertical ? vBounds[0] : 0;
        int lastRow = vertical ? vBounds[2 * outH - 2] + vBounds[2 * outH - 1] : inH;
        int rows = lastRow - firstRow;
        var temp = vertical ? new byte[channels * rows * outW] : null;
        var across = vertical ? temp.AsSpan() : dst;
        for (int c = 0; c < channels; c++)
        {
            for (int y = 0; y < rows; y++)
            {
                var row = src.Slice((c * inH + firstRow + y) * inW, inW);
                var outRow = across.Slice((c * rows + y) * outW, outW);
                for (int x = 0; x < outW; x++)
                {
                    int min = hBounds[2 * x], count = hBounds[2 * x + 1];
                    var k = hWeights.AsSpan(x * hTaps, count);
                    int sum = 1 << (PrecisionBits - 1);
                    for (int i = 0; i < count; i++) sum += row[min + i] * k[i];
                    outRow[x] = Clip8(sum);
                }
            }
        }
        if (vertical) Vertical(temp, channels, rows, outW, firstRow, dst, outH, vBounds, vWeights, vTaps);
    }

    private static void Vertical(ReadOnlySpan<byte> src, int channels, int rows, int width, int firstRow, Span<byte> dst, int outH,
        int[] bounds, int[] weights, int taps)
    {
        for (int c = 0; c < channels; c++)
        {
            var plane = src.Slice(c * rows * width, rows * width);
            for (int y = 0; y < outH; y++)
            {
                int min = bounds[2 * y] - firstRow, count = bounds[2 * y + 1];
                var k = weights.AsSpan(y * taps, count);
                var outRow = dst.Slice((c * outH + y) * width, width);
                for (int x = 0; x < width; x++)
                {
                    int sum = 1 << (PrecisionBits - 1);
                    for (int i = 0; i < count; i++) sum += plane[(min + i) * width + x] * k[i];
                    outRow[x] = Clip8(sum);
                }
            }
        }
    }

    private static byte Clip8(int sum) =>
        sum >= 1 << PrecisionBits << 8 ? (byte)255 : sum <= 0 ? (byte)0 : (byte)(sum >> PrecisionBits);

    /// <summary>Pillow's precompute_coeffs + normalize_coeffs_8bpc for the bilinear filter (support 1) over the whole
    /// input: per output index its first input index and tap count, and fixed-point weights, <c>taps</c> per row.</summary>
    private static (int[] Bounds, int[] Weights, int Taps) Coefficients(int inSize, int outSize)
    {
        double scale = (double)inSize / outSize;
        double filterScale = Math.Max(scale, 1.0);
        double support = 1.0 * filterScale;
        int taps = (int)Math.Ceiling(support) * 2 + 1;
        var bounds = new int[2 * outSize];
        var weights = new int[outSize * taps];
        var k = new double[taps];
        for (int xx = 0; xx < outSize; xx++)
        {
            double center = (xx + 0.5) * scale;
            double inverse = 1.0 / filterScale;
            int min = Math.Max((int)(center - support + 0.5), 0);
            int max = Math.Min((int)(center + support + 0.5), inSize) - min;
            double total = 0.0;
            for (int x = 0; x < max; x++)
            {
                double w = Triangle((x + min - center + 0.5) * inverse);
                k[x] = w;
                total += w;
            }
            for (int x = 0; x < max; x++)
            {
                double w = total != 0.0 ? k[x] / total : k[x];
                weights[xx * taps + x] = w < 0 ? (int)(-0.5 + w * (1 << PrecisionBits)) : (int)(0.5 + w * (1 << PrecisionBits));
            }
            bounds[2 * xx] = min;
            bounds[2 * xx + 1] = max;
        }
        return (bounds, weights, taps);
    }

    private static double Triangle(double x)
    {
        x = Math.Abs(x);
        return x < 1.0 ? 1.0 - x : 0.0;
    }
}
