// Decodes image files with SkiaSharp into uint8 planes, the way torchvision's default loader sees them.
using SkiaSharp;

namespace SpikeSharp.Data;

/// <summary>
/// Decodes JPEG, PNG, BMP and WebP files to uint8 planes [C,H,W] as torchvision's <c>pil_loader</c> does with
/// Pillow: no EXIF rotation, no colour management, alpha dropped without premultiplying (<c>convert("RGB")</c>),
/// and for one channel ITU-R 601-2 luma (<c>convert("L")</c>). Buffers are per thread and reused.
/// </summary>
internal static class ImageDecoder
{
    [ThreadStatic] private static byte[]? t_rgba;

    /// <summary>Width and height from the file header, without decoding the pixels.</summary>
    /// <exception cref="InvalidFileException">The file is not an image Skia can decode.</exception>
    public static (int Height, int Width) Probe(string path)
    {
        using var codec = Open(path);
        return (codec.Info.Height, codec.Info.Width);
    }

    /// <summary>Decodes <paramref name="path"/>; the planes live in <paramref name="pixels"/> (grown as needed).</summary>
    /// <exception cref="InvalidFileException">Not an image, or its data is corrupt or truncated.</exception>
    public static (int Height, int Width) Decode(string path, int channels, ref byte[] pixels)
    {
        using var codec = Open(path);
        int h = codec.Info.Height, w = codec.Info.Width;
        var info = new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Unpremul);
        if (t_rgba == null || t_rgba.Length < info.BytesSize) t_rgba = new byte[info.BytesSize];
        SKCodecResult result;
        unsafe
        {
            fixed (byte* p = t_rgba) result = codec.GetPixels(info, (IntPtr)p);
        }
        if (result != SKCodecResult.Success)
            throw new InvalidFileException(path, $"image data is corrupt or truncated (decoder says {result})");
        int plane = h * w;
        if (pixels.Length < channels * plane) pixels = new byte[channels * plane];
        var rgba = t_rgba.AsSpan(0, 4 * plane);
        if (channels == 3)
        {
            var r = pixels.AsSpan(0, plane);
            var g = pixels.AsSpan(plane, plane);
            var b = pixels.AsSpan(2 * plane, plane);
            for (int i = 0; i < plane; i++) (r[i], g[i], b[i]) = (rgba[4 * i], rgba[4 * i + 1], rgba[4 * i + 2]);
        }
        else
        {
            var l = pixels.AsSpan(0, plane);
            for (int i = 0; i < plane; i++) l[i] = (byte)PilOps.Luma(rgba[4 * i], rgba[4 * i + 1], rgba[4 * i + 2]);
        }
        return (h, w);
    }

    private static SKCodec Open(string path)
    {
        SKCodec? codec;
        SKCodecResult result;
        try { codec = SKCodec.Create(path, out result); }
        catch (Exception e) when (e is not OutOfMemoryException)
        { throw new InvalidFileException(path, $"cannot read the image: {e.Message}", e); }
        if (codec == null)
        {
            if (!File.Exists(path)) throw new InvalidFileException(path, "image file not found");
            throw new InvalidFileException(path, $"not a decodable image (decoder says {result}); expected a JPEG, PNG, BMP or WebP file");
        }
        return codec;
    }
}
