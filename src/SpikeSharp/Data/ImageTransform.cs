// Executes a TransformSpec on one image at a time, writing normalized floats; one instance per worker thread.
namespace SpikeSharp.Data;

/// <summary>
/// The per-image pipeline of <see cref="TransformSpec"/>, with its scratch buffers preallocated so that
/// <see cref="Apply"/> never allocates. Not thread-safe: each worker owns one. Shapes: source [Cs,Hs,Ws] uint8,
/// output [C,H,W] float32. Randomness comes only from the <see cref="Rng"/> passed in, drawn in a fixed order
/// (crop row, crop column, flip, AutoAugment, cutout row, cutout column) and only for the steps switched on.
/// </summary>
internal sealed class ImageTransform
{
    private readonly TransformSpec _spec;
    private readonly int _srcChannels, _srcHeight, _srcWidth;
    private readonly int _channels, _height, _width, _plane;
    private readonly int _padTop, _padLeft;
    private readonly bool _identityGeometry;
    private readonly float[] _lut;      // [C,256] normalized value of each uint8 level per channel
    private byte[] _image, _scratch;    // [C,H,W] working image and scratch

    /// <summary>Prepares the pipeline for source images of the given geometry (validated here).</summary>
    public ImageTransform(TransformSpec spec, int sourceChannels, int sourceHeight, int sourceWidth)
    {
        spec.Validate(sourceChannels, sourceHeight, sourceWidth);
        _spec = spec;
        (_srcChannels, _srcHeight, _srcWidth) = (sourceChannels, sourceHeight, sourceWidth);
        (_channels, _height, _width) = (spec.Channels, spec.Height, spec.Width);
        _plane = _height * _width;
        _padTop = (_height - sourceHeight) / 2;
        _padLeft = (_width - sourceWidth) / 2;
        _identityGeometry = sourceChannels == _channels && sourceHeight == _height && sourceWidth == _width;
        _image = new byte[_channels * _plane];
        _scratch = new byte[_channels * _plane];
        _lut = new float[_channels * 256];
        for (int c = 0; c < _channels; c++)
        {
            float mean = spec.Norm.MeanOf(c), std = spec.Norm.StdOf(c);
            // Same float32 operations as ToTensor() then Normalize(): (v / 255 − mean) / std.
            for (int v = 0; v < 256; v++) _lut[c * 256 + v] = (v / 255f - mean) / std;
        }
    }

    /// <summary>Floats per output image, C·H·W.</summary>
    public int OutputSize => _channels * _plane;

    /// <summary>
    /// Transforms one source image into <paramref name="output"/> ([C,H,W], length <see cref="OutputSize"/>).
    /// Augmentation runs only when <paramref name="train"/> is true.
    /// </summary>
    public void Apply(ReadOnlySpan<byte> source, Span<float> output, bool train, ref Rng rng)
    {
        if (source.Length != _srcChannels * _srcHeight * _srcWidth)
            throw new ArgumentException($"source has {source.Length} bytes; expected {_srcChannels}×{_srcHeight}×{_srcWidth}");
        if (output.Length != OutputSize)
            throw new ArgumentException($"output has {output.Length} floats; expected {OutputSize}");
        bool augment = train && _spec.HasAugmentation;
        if (!augment && _identityGeometry)
        {
            Normalize(source, output);
            return;
        }
        Place(source, _image);
        if (augment)
        {
            if (_spec.CropPadding > 0) RandomCrop(ref rng);
            if (_spec.HorizontalFlip && rng.NextFloat() < 0.5f) FlipHorizontal(_image);
            if (_spec.AutoAugment) Cifar10AutoAugment.Apply(_image, _scratch, _channels, _height, _width, ref rng);
        }
        Normalize(_image, output);
        if (augment && _spec.CutoutLength > 0) Cutout(output, ref rng);
    }

    /// <summary>Geometry only: pads centred with black and repeats a single channel; no normalization.</summary>
    public void Place(ReadOnlySpan<byte> source, Span<byte> target)
    {
        if (!_identityGeometry) target.Clear();
        int srcPlane = _srcHeight * _srcWidth;
        for (int c = 0; c < _channels; c++)
        {
            var srcPlaneSpan = source.Slice((_srcChannels == 1 ? 0 : c) * srcPlane, srcPlane);
            var dstPlane = target.Slice(c * _plane, _plane);
            if (_identityGeometry)
            {
                srcPlaneSpan.CopyTo(dstPlane);
                continue;
            }
            for (int y = 0; y < _srcHeight; y++)
            {
                srcPlaneSpan.Slice(y * _srcWidth, _srcWidth).CopyTo(dstPlane.Slice((y + _padTop) * _width + _padLeft, _srcWidth));
            }
        }
    }

    // torchvision RandomCrop((H, W), padding=p, fill=0): i ~ U{0..2p} rows, then j ~ U{0..2p} columns of the
    // zero-padded image, i.e. a shift by (i − p, j − p).
    private void RandomCrop(ref Rng rng)
    {
        int p = _spec.CropPadding;
        int dy = rng.NextInt(2 * p + 1) - p;
        int dx = rng.NextInt(2 * p + 1) - p;
        if (dy == 0 && dx == 0) return;
        var src = _image;
        var dst = _scratch;
        Array.Clear(dst);
        int x0 = Math.Max(0, -dx), x1 = Math.Min(_width, _width - dx);
        int y0 = Math.Max(0, -dy), y1 = Math.Min(_height, _height - dy);
        if (x1 > x0)
        {
            for (int c = 0; c < _channels; c++)
            {
                for (int y = y0; y < y1; y++)
                {
                    int to = c * _plane + y * _width;
                    int from = c * _plane + (y + dy) * _width;
                    Array.Copy(src, from + x0 + dx, dst, to + x0, x1 - x0);
                }
            }
        }
        (_image, _scratch) = (dst, src);
    }

    private void FlipHorizontal(Span<byte> image)
    {
        for (int row = 0; row < _channels * _height; row++) image.Slice(row * _width, _width).Reverse();
    }

    private void Normalize(ReadOnlySpan<byte> image, Span<float> output)
    {
        var lut = _lut.AsSpan();
        for (int c = 0; c < _channels; c++)
        {
            var table = lut.Slice(c * 256, 256);
            var src = image.Slice(c * _plane, _plane);
            var dst = output.Slice(c * _plane, _plane);
            for (int i = 0; i < src.Length; i++) dst[i] = table[src[i]];
        }
    }

    // Cutout (DeVries & Taylor 2017, reference code): centre (y, x) uniform over the image, hole rows
    // [y − L/2, y + L/2) and columns [x − L/2, x + L/2) clipped to the image, zeroed in every channel.
    private void Cutout(Span<float> output, ref Rng rng)
    {
        int half = _spec.CutoutLength / 2;
        int y = rng.NextInt(_height), x = rng.NextInt(_width);
        int y1 = Math.Clamp(y - half, 0, _height), y2 = Math.Clamp(y + half, 0, _height);
        int x1 = Math.Clamp(x - half, 0, _width), x2 = Math.Clamp(x + half, 0, _width);
        for (int c = 0; c < _channels; c++)
        {
            for (int row = y1; row < y2; row++) output.Slice(c * _plane + row * _width + x1, x2 - x1).Clear();
        }
    }
}
