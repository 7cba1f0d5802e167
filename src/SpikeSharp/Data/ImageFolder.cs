// A torchvision-style ImageFolder: class sub-folders of image files, decoded, resized and cropped on demand.
namespace SpikeSharp.Data;

/// <summary>How an image folder's files become uint8 [C,H,W] images.</summary>
/// <param name="Channels">3 (RGB, Pillow's <c>convert("RGB")</c>) or 1 (luma, <c>convert("L")</c>).</param>
/// <param name="Height">Crop height: the images' height as the loader delivers them (default 224).</param>
/// <param name="Width">Crop width (default 224).</param>
/// <param name="Resize">Evaluation: the shorter side is resized to this before the center crop; 0 = torchvision's
/// ImageNet ratio 256/224 of the crop's shorter side (256 for 224).</param>
/// <param name="SkipBadImages">Decode every file while loading and leave out the ones that fail (counted in
/// <see cref="ImageFolder.Skipped"/>); otherwise the first unreadable file is an error naming it.</param>
public sealed record ImageFolderOptions(int Channels = 3, int Height = 224, int Width = 224, int Resize = 0, bool SkipBadImages = false)
{
    /// <summary>The shorter side before the center crop.</summary>
    public int ResizeOrDefault => Resize > 0 ? Resize : (int)Math.Round(Math.Min(Height, Width) * 256.0 / 224.0);

    public void Validate()
    {
        if (Channels is not (1 or 3)) throw new SpikeSharpException($"image folder: {Channels} channels; expected 1 (grayscale) or 3 (RGB)");
        if (Height <= 0 || Width <= 0 || Height > 4096 || Width > 4096)
            throw new SpikeSharpException($"image folder: crop {Height}×{Width}; expected sides in 1..4096");
        if (Resize < 0 || Resize > 8192) throw new SpikeSharpException($"--resize {Resize}; expected 1..8192 (or 0 for the default)");
    }
}

/// <summary>
/// Images in <c>DIR/&lt;class&gt;/**/*.{jpg,jpeg,png,bmp,webp}</c>, as torchvision's <c>ImageFolder</c> lists them:
/// classes are the sub-folder names in ordinal (Python) order, files are walked recursively, directories then file
/// names in ordinal order; other files are ignored. Each read decodes the file (<see cref="ImageDecoder"/>) and, for
/// evaluation, resizes its shorter side to <see cref="ImageFolderOptions.ResizeOrDefault"/> (Pillow bilinear) and
/// center-crops H×W (torchvision's <c>Resize</c> + <c>CenterCrop</c>); for training it takes a random-resized crop
/// (scale 0.08–1, aspect 3/4–4/3, torchvision's algorithm on our random stream) resized to H×W.
/// </summary>
public sealed class ImageFolder : ImageSet
{
    /// <summary>File extensions read (case-insensitive): the formats of torchvision's list that Skia decodes.</summary>
    public static readonly IReadOnlyList<string> Extensions = [".jpg", ".jpeg", ".png", ".bmp", ".webp"];

    private readonly string[] _files;

    private ImageFolder(string name, string directory, string[] files, int[] labels, string[] classNames, ImageFolderOptions options, int skipped)
        : base(name, labels, options.Channels, options.Height, options.Width, Math.Max(1, classNames.Length))
    {
        (Directory, _files, ClassNames, Options, Skipped) = (directory, files, classNames, options, skipped);
    }

    /// <summary>The folder holding the class sub-folders.</summary>
    public string Directory { get; }

    /// <summary>Class names (sub-folder names); label i is ClassNames[i].</summary>
    public IReadOnlyList<string> ClassNames { get; }

    /// <summary>The file of each image, [N].</summary>
    public IReadOnlyList<string> Files => _files;

    public ImageFolderOptions Options { get; }

    /// <summary>Files left out because they could not be decoded (only with <see cref="ImageFolderOptions.SkipBadImages"/>).</summary>
    public int Skipped { get; }

    /// <summary>Decoding is the expensive part: spread it over every core.</summary>
    public override int ReadWorkers => Math.Max(1, Environment.ProcessorCount);

    /// <summary>
    /// Lists <paramref name="directory"/>'s class folders and image files, and checks every file's header (or, with
    /// <see cref="ImageFolderOptions.SkipBadImages"/>, decodes every file), so a bad file fails here and not mid-run.
    /// </summary>
    /// <exception cref="InvalidFileException">Missing folder, no classes, a class without images, or an unreadable
    /// file (naming it).</exception>
    public static ImageFolder Load(string directory, ImageFolderOptions options, string name = "imagefolder")
    {
        options.Validate();
        if (!System.IO.Directory.Exists(directory))
            throw new InvalidFileException(directory, "image folder not found; expected DIR/<class>/<image files>");
        var classNames = ClassFolders(directory);
        if (classNames.Length == 0)
            throw new InvalidFileException(directory, "no class folders; expected DIR/<class>/<image files>");
        var files = new List<string>();
        var labels = new List<int>();
        for (int c = 0; c < classNames.Length; c++)
        {
            var found = ImageFiles(Path.Combine(directory, classNames[c]));
            if (found.Count == 0)
                throw new InvalidFileException(Path.Combine(directory, classNames[c]),
                    $"class folder holds no image files; expected files ending in {string.Join(", ", Extensions)}");
            files.AddRange(found);
            labels.AddRange(Enumerable.Repeat(c, found.Count));
        }
        var bad = Check(files, options.SkipBadImages, options.Channels);
        if (bad.Count > 0)
        {
            var keep = Enumerable.Range(0, files.Count).Where(i => !bad.Contains(i)).ToArray();
            files = keep.Select(i => files[i]).ToList();
            labels = keep.Select(i => labels[i]).ToList();
            if (files.Count == 0) throw new InvalidFileException(directory, $"none of the {bad.Count} image files could be decoded");
        }
        return new ImageFolder(name, directory, files.ToArray(), labels.ToArray(), classNames, options, bad.Count);
    }

    /// <summary>The class sub-folders of <paramref name="directory"/> in ordinal (Python) order, as torchvision lists them.</summary>
    public static string[] ClassFolders(string directory) =>
        System.IO.Directory.GetDirectories(directory).Select(Path.GetFileName).OfType<string>().Order(StringComparer.Ordinal).ToArray();

    public override ReadOnlySpan<byte> Read(int index, Span<byte> scratch, bool train, ref Rng rng)
    {
        var output = scratch[..ImageSize];
        var (h, w) = Decode(_files[index], Channels);
        byte[] decoded = t_decoded!;
        if (train)
        {
            var (top, left, ch, cw) = RandomResizedCropBox(h, w, ref rng);
            byte[] crop = Grow(ref t_resized, Channels * ch * cw);
            Crop(decoded, h, w, top, left, ch, cw, crop);
            PilResize.Bilinear(crop, Channels, ch, cw, output, Height, Width);
            return output;
        }
        var (rh, rw) = ResizedSize(h, w, Options.ResizeOrDefault);
        byte[] resized = Grow(ref t_resized, Channels * rh * rw);
        PilResize.Bilinear(decoded, Channels, h, w, resized, rh, rw);
        Crop(resized, rh, rw, CenterOffset(rh, Height), CenterOffset(rw, Width), Height, Width, output);
        return output;
    }

    // Per-thread buffers: decoded planes, and the resized (evaluation) or cropped (training) image.
    [ThreadStatic] private static byte[]? t_decoded, t_resized;

    private static byte[] Grow(ref byte[]? buffer, int size) => buffer = buffer is { } b && b.Length >= size ? b : new byte[size];

    /// <summary>Decodes into this thread's <see cref="t_decoded"/>; a file that fails only now (its header read fine
    /// while listing) says how to go on.</summary>
    private static (int Height, int Width) Decode(string file, int channels)
    {
        byte[] buffer = t_decoded ?? [];
        try { return ImageDecoder.Decode(file, channels, ref buffer); }
        catch (InvalidFileException e) when (!e.Message.Contains("--skip-bad-images"))
        { throw new InvalidFileException(file, e.Message[(file.Length + 2)..] + "; pass --skip-bad-images to decode every file first and leave unreadable ones out", e); }
        finally { t_decoded = buffer; }
    }

    protected override ImageSet SubsetOf(int[] indices) =>
        new ImageFolder(Name, Directory, indices.Select(i => _files[i]).ToArray(), indices.Select(i => Labels[i]).ToArray(),
            [.. ClassNames], Options, Skipped);

    /// <summary>torchvision's <c>Resize(size)</c> with one int: the shorter side becomes <paramref name="size"/>, the
    /// longer <c>int(size · long / short)</c>.</summary>
    internal static (int Height, int Width) ResizedSize(int h, int w, int size)
    {
        if (w <= h) return ((int)((double)size * h / w), size);
        return (size, (int)((double)size * w / h));
    }

    /// <summary>torchvision's <c>CenterCrop</c> offset: <c>round((size − crop) / 2)</c> (half to even), or, when the
    /// crop is larger, minus the left/top zero padding <c>(crop − size) // 2</c>.</summary>
    internal static int CenterOffset(int size, int crop) =>
        crop > size ? -((crop - size) / 2) : (int)Math.Round((size - crop) / 2.0, MidpointRounding.ToEven);

    /// <summary>torchvision's <c>RandomResizedCrop.get_params</c> with scale (0.08, 1) and ratio (3/4, 4/3).</summary>
    internal static (int Top, int Left, int Height, int Width) RandomResizedCropBox(int height, int width, ref Rng rng)
    {
        double area = (double)height * width;
        double logLo = Math.Log(3.0 / 4.0), logHi = Math.Log(4.0 / 3.0);
        for (int attempt = 0; attempt < 10; attempt++)
        {
            double target = area * (0.08 + (1.0 - 0.08) * rng.NextDouble());
            double aspect = Math.Exp(logLo + (logHi - logLo) * rng.NextDouble());
            int w = (int)Math.Round(Math.Sqrt(target * aspect), MidpointRounding.ToEven);
            int h = (int)Math.Round(Math.Sqrt(target / aspect), MidpointRounding.ToEven);
            if (w > 0 && w <= width && h > 0 && h <= height)
                return (rng.NextInt(height - h + 1), rng.NextInt(width - w + 1), h, w);
        }
        double ratio = (double)width / height;
        var (fh, fw) = ratio < 3.0 / 4.0 ? ((int)Math.Round(width / (3.0 / 4.0), MidpointRounding.ToEven), width)
            : ratio > 4.0 / 3.0 ? (height, (int)Math.Round(height * (4.0 / 3.0), MidpointRounding.ToEven))
            : (height, width);
        return ((height - fh) / 2, (width - fw) / 2, fh, fw);
    }

    /// <summary>Copies the window (top, left, h, w) of [C,H,W] planes; parts outside the source are black.</summary>
    private void Crop(ReadOnlySpan<byte> src, int srcH, int srcW, int top, int left, int h, int w, Span<byte> dst)
    {
        int x0 = Math.Max(0, -left), x1 = Math.Min(w, srcW - left);
        bool inside = top >= 0 && left >= 0 && top + h <= srcH && left + w <= srcW;
        if (!inside) dst[..(Channels * h * w)].Clear();
        for (int c = 0; c < Channels; c++)
        {
            for (int y = 0; y < h; y++)
            {
                int sy = top + y;
                if (sy < 0 || sy >= srcH || x1 <= x0) continue;
                src.Slice((c * srcH + sy) * srcW + left + x0, x1 - x0).CopyTo(dst.Slice((c * h + y) * w + x0, x1 - x0));
            }
        }
    }

    /// <summary>torchvision's <c>make_dataset</c> walk: directories in ordinal order, then file names in ordinal order.</summary>
    private static List<string> ImageFiles(string classDir)
    {
        var options = new EnumerationOptions { RecurseSubdirectories = true, AttributesToSkip = 0 }; // hidden files too, as os.walk
        return System.IO.Directory.EnumerateFiles(classDir, "*", options)
            .Where(f => Extensions.Contains(Path.GetExtension(f).ToLowerInvariant()))
            .OrderBy(f => Path.GetDirectoryName(f), StringComparer.Ordinal).ThenBy(Path.GetFileName, StringComparer.Ordinal)
            .ToList();
    }

    /// <summary>Header check of every file (in parallel); with <paramref name="decode"/>, a full decode whose failures
    /// are returned as indices to leave out instead of thrown.</summary>
    private static HashSet<int> Check(List<string> files, bool decode, int channels)
    {
        var bad = new System.Collections.Concurrent.ConcurrentBag<int>();
        var errors = new InvalidFileException?[files.Count];
        Parallel.For(0, files.Count, new ParallelOptions { MaxDegreeOfParallelism = Math.Max(1, Environment.ProcessorCount) }, i =>
        {
            try
            {
                if (decode) Decode(files[i], channels);
                else ImageDecoder.Probe(files[i]);
            }
            catch (InvalidFileException e)
            {
                if (decode) bad.Add(i);
                else errors[i] = e;
            }
        });
        // The first bad file in listing order, whatever the scheduling; the message says how to go on.
        if (errors.FirstOrDefault(e => e != null) is { } first)
        {
            int count = errors.Count(e => e != null);
            throw new InvalidFileException(first.FilePath, first.Message[(first.FilePath.Length + 2)..] +
                (count > 1 ? $" ({count} unreadable files in all)" : "") + "; remove it, or pass --skip-bad-images to leave unreadable files out");
        }
        return [.. bad];
    }
}
