// Pillow-compatible uint8 image operations on [C,H,W] planes, the primitives that torchvision's AutoAugment calls.
namespace SpikeSharp.Data;

/// <summary>
/// The operations of torchvision's AutoAugment as Pillow computes them on 8-bit images (torchvision applies
/// AutoAugment to PIL images in the usual CIFAR recipe). Images are [C,H,W] with C = 1 (mode L) or 3 (RGB).
/// Geometric ops sample with nearest neighbour at pixel centres and fill outside pixels with 0, like
/// <c>Image.transform(AFFINE, NEAREST)</c>; enhancers blend with a degenerate image like <c>ImageEnhance</c>,
/// truncating toward zero and clamping to [0, 255] as <c>Image.blend</c> does. All ops work in place;
/// <c>tmp</c> is scratch of the same size. No op allocates.
/// </summary>
internal static class PilOps
{
    private const double DegToRad = Math.PI / 180.0, RadToDeg = 180.0 / Math.PI;

    /// <summary>Python's <c>math.degrees</c> (same rounding).</summary>
    public static double Degrees(double radians) => radians * RadToDeg;

    /// <summary>
    /// Inverse affine map from output to input pixel coordinates, torchvision's
    /// <c>_get_inverse_affine_matrix(center, angle, translate, scale=1, shear)</c> (angles in degrees).
    /// </summary>
    public static AffineMatrix InverseAffine(double cx, double cy, double angle, double tx, double ty, double shearX, double shearY)
    {
        double rot = angle * DegToRad, sx = shearX * DegToRad, sy = shearY * DegToRad;
        double a = Math.Cos(rot - sy) / Math.Cos(sy);
        double b = -Math.Cos(rot - sy) * Math.Tan(sx) / Math.Cos(sy) - Math.Sin(rot);
        double c = Math.Sin(rot - sy) / Math.Cos(sy);
        double d = -Math.Sin(rot - sy) * Math.Tan(sx) / Math.Cos(sy) + Math.Cos(rot);
        // Inverse of [[a, b], [c, d]] (det 1), then undo translation and centre.
        double m0 = d, m1 = -b, m3 = -c, m4 = a;
        double m2 = m0 * (-cx - tx) + m1 * (-cy - ty) + cx;
        double m5 = m3 * (-cx - tx) + m4 * (-cy - ty) + cy;
        return new AffineMatrix(m0, m1, m2, m3, m4, m5);
    }

    /// <summary>
    /// Pillow's <c>Image.rotate(angle)</c> matrix (counter-clockwise degrees, centre (W/2, H/2), no expand); null
    /// for angle 0 mod 360, which Pillow returns unchanged.
    /// </summary>
    public static AffineMatrix? Rotation(double angle, int height, int width)
    {
        angle %= 360.0;
        if (angle < 0) angle += 360.0; // Python's float modulo
        if (angle == 0) return null;
        double r = -(angle * DegToRad);
        double cos = Math.Round(Math.Cos(r), 15), sin = Math.Round(Math.Sin(r), 15);
        double cx = width / 2.0, cy = height / 2.0;
        return new AffineMatrix(cos, sin, cos * -cx + sin * -cy + cx, -sin, cos, -sin * -cx + cos * -cy + cy);
    }

    /// <summary>
    /// Pillow's <c>Image.transform(size, AFFINE, m, NEAREST, fillcolor=0)</c> in place: output pixel (x, y) takes input
    /// (⌊m0(x+½)+m1(y+½)+m2⌋, ⌊m3(x+½)+m4(y+½)+m5⌋), or 0 outside. Ported path by path from Pillow's
    /// ImagingTransformAffine (pure scale/translate in doubles, otherwise 16.16 fixed point) so that pixels on
    /// rounding boundaries match.
    /// </summary>
    public static void Affine(Span<byte> img, Span<byte> tmp, int channels, int height, int width, in AffineMatrix m)
    {
        int plane = height * width;
        img[..(channels * plane)].CopyTo(tmp);
        img[..(channels * plane)].Clear();
        if (m.M1 == 0 && m.M3 == 0)
        {
            // ImagingScaleAffine: xin = COORD(m2 + m0/2 + x·m0), yin = COORD(m5 + m4/2 + y·m4), accumulated.
            double yo = m.M5 + m.M4 * 0.5;
            for (int y = 0; y < height; y++, yo += m.M4)
            {
                int yi = Coord(yo);
                if (yi < 0 || yi >= height) continue;
                double xo = m.M2 + m.M0 * 0.5;
                for (int x = 0; x < width; x++, xo += m.M0)
                {
                    int xi = Coord(xo);
                    if (xi >= 0 && xi < width) CopyPixel(img, tmp, channels, plane, y * width + x, yi * width + xi);
                }
            }
            return;
        }
        if (CheckFixed(m, 0, 0) && CheckFixed(m, width, height) && CheckFixed(m, 0, height) && CheckFixed(m, width, 0))
        {
            int a0 = Fix(m.M0), a1 = Fix(m.M1), a3 = Fix(m.M3), a4 = Fix(m.M4);
            int a2 = Fix(m.M2 + m.M0 * 0.5 + m.M1 * 0.5), a5 = Fix(m.M5 + m.M3 * 0.5 + m.M4 * 0.5);
            for (int y = 0; y < height; y++, a2 += a1, a5 += a4)
            {
                int xx = a2, yy = a5;
                for (int x = 0; x < width; x++, xx += a0, yy += a3)
                {
                    int xi = xx >> 16, yi = yy >> 16;
                    if (xi >= 0 && xi < width && yi >= 0 && yi < height)
                        CopyPixel(img, tmp, channels, plane, y * width + x, yi * width + xi);
                }
            }
            return;
        }
        // Coordinates beyond ±32768: Pillow's floating-point fallback.
        double xo0 = m.M2 + m.M1 * 0.5 + m.M0 * 0.5, yo0 = m.M5 + m.M4 * 0.5 + m.M3 * 0.5;
        for (int y = 0; y < height; y++, xo0 += m.M1, yo0 += m.M4)
        {
            double xx = xo0, yy = yo0;
            for (int x = 0; x < width; x++, xx += m.M0, yy += m.M3)
            {
                int xi = Coord(xx), yi = Coord(yy);
                if (xi >= 0 && xi < width && yi >= 0 && yi < height)
                    CopyPixel(img, tmp, channels, plane, y * width + x, yi * width + xi);
            }
        }
    }

    private static void CopyPixel(Span<byte> dst, ReadOnlySpan<byte> src, int channels, int plane, int to, int from)
    {
        for (int ch = 0; ch < channels; ch++) dst[ch * plane + to] = src[ch * plane + from];
    }

    // Pillow's COORD: truncation, with every negative value mapped to −1 (outside). NOTE: values past int range
    // saturate in .NET, which is still outside the image.
    private static int Coord(double v) => v < 0.0 ? -1 : v >= int.MaxValue ? int.MaxValue : (int)v;

    // Pillow's FIX: 16.16 fixed point, rounded.
    private static int Fix(double v) => (int)Math.Floor(v * 65536.0 + 0.5);

    private static bool CheckFixed(in AffineMatrix m, int x, int y) =>
        Math.Abs(x * m.M0 + y * m.M1 + m.M2) < 32768.0 && Math.Abs(x * m.M3 + y * m.M4 + m.M5) < 32768.0;

    /// <summary><c>Image.blend(degenerate, image, factor)</c> for one value: d + f·(v − d), truncated and clamped.</summary>
    public static byte Blend(int degenerate, int value, float factor)
    {
        float r = degenerate + factor * (value - degenerate);
        return r <= 0f ? (byte)0 : r >= 255f ? (byte)255 : (byte)r;
    }

    /// <summary><c>ImageEnhance.Brightness(img).enhance(f)</c>: blend with black.</summary>
    public static void Brightness(Span<byte> img, float factor)
    {
        Span<byte> lut = stackalloc byte[256];
        for (int v = 0; v < 256; v++) lut[v] = Blend(0, v, factor);
        ApplyLut(img, lut);
    }

    /// <summary><c>ImageEnhance.Contrast(img).enhance(f)</c>: blend with the rounded mean of the grayscale image.</summary>
    public static void Contrast(Span<byte> img, int channels, int height, int width, float factor)
    {
        int plane = height * width;
        long sum = 0;
        if (channels == 3)
        {
            for (int i = 0; i < plane; i++) sum += Luma(img[i], img[plane + i], img[2 * plane + i]);
        }
        else
        {
            for (int i = 0; i < plane; i++) sum += img[i];
        }
        int mean = (int)((double)sum / plane + 0.5);
        Span<byte> lut = stackalloc byte[256];
        for (int v = 0; v < 256; v++) lut[v] = Blend(mean, v, factor);
        ApplyLut(img[..(channels * plane)], lut);
    }

    /// <summary><c>ImageEnhance.Color(img).enhance(f)</c>: blend each pixel with its grayscale value (no-op for C = 1).</summary>
    public static void Color(Span<byte> img, int channels, int height, int width, float factor)
    {
        if (channels != 3) return;
        int plane = height * width;
        for (int i = 0; i < plane; i++)
        {
            int l = Luma(img[i], img[plane + i], img[2 * plane + i]);
            img[i] = Blend(l, img[i], factor);
            img[plane + i] = Blend(l, img[plane + i], factor);
            img[2 * plane + i] = Blend(l, img[2 * plane + i], factor);
        }
    }

    /// <summary>
    /// <c>ImageEnhance.Sharpness(img).enhance(f)</c>: blend with <c>ImageFilter.SMOOTH</c> (3×3 kernel 1 1 1 / 1 5 1 /
    /// 1 1 1, divisor 13, rounded). Pillow copies the border pixels unfiltered, so borders are unchanged.
    /// </summary>
    public static void Sharpness(Span<byte> img, Span<byte> tmp, int channels, int height, int width, float factor)
    {
        if (height < 3 || width < 3) return;
        int plane = height * width;
        img[..(channels * plane)].CopyTo(tmp);
        const float K1 = 1f / 13f, K5 = 5f / 13f;
        for (int ch = 0; ch < channels; ch++)
        {
            var src = tmp.Slice(ch * plane, plane);
            var dst = img.Slice(ch * plane, plane);
            for (int y = 1; y < height - 1; y++)
            {
                int up = (y - 1) * width, mid = y * width, down = (y + 1) * width;
                for (int x = 1; x < width - 1; x++)
                {
                    // Same summation order as Pillow's ImagingFilter3x3: row below, centre row, row above.
                    float ss = 0.5f;
                    ss += src[down + x - 1] * K1 + src[down + x] * K1 + src[down + x + 1] * K1;
                    ss += src[mid + x - 1] * K1 + src[mid + x] * K5 + src[mid + x + 1] * K1;
                    ss += src[up + x - 1] * K1 + src[up + x] * K1 + src[up + x + 1] * K1;
                    int smooth = ss <= 0f ? 0 : ss >= 255f ? 255 : (int)ss;
                    dst[mid + x] = Blend(smooth, src[mid + x], factor);
                }
            }
        }
    }

    /// <summary><c>ImageOps.posterize(img, bits)</c>: keep the top <paramref name="bits"/> bits.</summary>
    public static void Posterize(Span<byte> img, int bits)
    {
        byte mask = (byte)(0xFF << (8 - Math.Clamp(bits, 0, 8)));
        for (int i = 0; i < img.Length; i++) img[i] &= mask;
    }

    /// <summary><c>ImageOps.solarize(img, threshold)</c>: values ≥ threshold are inverted.</summary>
    public static void Solarize(Span<byte> img, double threshold)
    {
        for (int i = 0; i < img.Length; i++)
        {
            if (img[i] >= threshold) img[i] = (byte)(255 - img[i]);
        }
    }

    /// <summary><c>ImageOps.invert(img)</c>.</summary>
    public static void Invert(Span<byte> img)
    {
        for (int i = 0; i < img.Length; i++) img[i] = (byte)(255 - img[i]);
    }

    /// <summary><c>ImageOps.autocontrast(img)</c> (cutoff 0): per channel, stretch [min, max] to [0, 255].</summary>
    public static void AutoContrast(Span<byte> img, int channels, int plane)
    {
        Span<byte> lut = stackalloc byte[256];
        for (int ch = 0; ch < channels; ch++)
        {
            var p = img.Slice(ch * plane, plane);
            int lo = 255, hi = 0;
            foreach (byte v in p)
            {
                if (v < lo) lo = v;
                if (v > hi) hi = v;
            }
            if (hi <= lo) continue;
            double scale = 255.0 / (hi - lo), offset = -lo * scale;
            for (int v = 0; v < 256; v++) lut[v] = (byte)Math.Clamp((int)(v * scale + offset), 0, 255);
            ApplyLut(p, lut);
        }
    }

    /// <summary><c>ImageOps.equalize(img)</c>: per channel histogram equalization with Pillow's step rule.</summary>
    public static void Equalize(Span<byte> img, int channels, int plane)
    {
        Span<int> hist = stackalloc int[256];
        Span<byte> lut = stackalloc byte[256];
        for (int ch = 0; ch < channels; ch++)
        {
            var p = img.Slice(ch * plane, plane);
            hist.Clear();
            foreach (byte v in p) hist[v]++;
            int last = 255;
            while (last > 0 && hist[last] == 0) last--;
            int nonZero = 0;
            foreach (int count in hist) nonZero += count > 0 ? 1 : 0;
            if (nonZero <= 1) continue;
            // Pillow: step = (sum of non-zero bins − last non-zero bin) // 256; lut values are clipped to 255.
            int step = (plane - hist[last]) / 256;
            if (step == 0) continue;
            int n = step / 2;
            for (int i = 0; i < 256; i++)
            {
                lut[i] = (byte)Math.Min(n / step, 255);
                n += hist[i];
            }
            ApplyLut(p, lut);
        }
    }

    /// <summary>Pillow's RGB→L conversion: (R·19595 + G·38470 + B·7471 + 2¹⁵) >> 16.</summary>
    public static int Luma(int r, int g, int b) => (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;

    private static void ApplyLut(Span<byte> img, ReadOnlySpan<byte> lut)
    {
        for (int i = 0; i < img.Length; i++) img[i] = lut[img[i]];
    }
}

/// <summary>Row-major 2×3 matrix mapping output pixel centres to input coordinates (Pillow's AFFINE data).</summary>
internal readonly record struct AffineMatrix(double M0, double M1, double M2, double M3, double M4, double M5);
