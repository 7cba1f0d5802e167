// Loads the supported datasets by name from a folder and knows their standard normalization; it downloads nothing.
namespace SpikeSharp.Data;

/// <summary>
/// The dataset catalogue: <c>mnist</c>, <c>fashion-mnist</c> (IDX files, raw or gzip), <c>cifar10</c>,
/// <c>cifar100</c> (binary versions), <c>imagefolder</c> (<c>DIR/train/&lt;class&gt;/…</c> and <c>DIR/val/&lt;class&gt;/…</c>
/// image files, ImageNet-style). Each name maps to a reader, a class count and the per-channel mean/std that the
/// literature normalizes with.
/// </summary>
public static class Datasets
{
    /// <summary>The accepted dataset names, in the order messages list them.</summary>
    public static readonly IReadOnlyList<string> Names = ["mnist", "fashion-mnist", "cifar10", "cifar100", ImageFolderName];

    /// <summary>The name of torchvision-style image folders.</summary>
    public const string ImageFolderName = "imagefolder";

    /// <summary>
    /// Loads the training or test split of dataset <paramref name="name"/> from <paramref name="dir"/>.
    /// IDX datasets are also found in torchvision's layout (<c>MNIST/raw/</c>, <c>FashionMNIST/raw/</c>), CIFAR
    /// in the folder its archive extracts to, image folders in <c>DIR/train</c> or <c>DIR/val</c> (decoded as
    /// <paramref name="folder"/> says; default 3×224×224 after resizing the shorter side to 256).
    /// </summary>
    /// <exception cref="SpikeSharpException">Unknown name.</exception>
    /// <exception cref="InvalidFileException">Missing folder or file, or a malformed file.</exception>
    public static ImageSet Load(string name, string dir, bool train, ImageFolderOptions? folder = null)
    {
        ArgumentNullException.ThrowIfNull(dir);
        return Canonical(name) switch
        {
            "mnist" => LoadIdx("mnist", dir, "MNIST", train),
            "fashion-mnist" => LoadIdx("fashion-mnist", dir, "FashionMNIST", train),
            "cifar10" => CifarReader.ReadCifar10(dir, train),
            "cifar100" => CifarReader.ReadCifar100(dir, train),
            _ => LoadImageFolder(dir, train, folder ?? new ImageFolderOptions()),
        };
    }

    /// <summary><c>DIR/train</c> or <c>DIR/val</c>; the validation classes must be the training classes, or labels
    /// would silently mean different classes.</summary>
    private static ImageFolder LoadImageFolder(string dir, bool train, ImageFolderOptions options)
    {
        if (!Directory.Exists(dir))
            throw new InvalidFileException(dir, "dataset folder not found; expected DIR/train/<class>/<images> and DIR/val/<class>/<images>");
        string split = Path.Combine(dir, train ? "train" : "val");
        if (!Directory.Exists(split))
            throw new InvalidFileException(split, $"the {(train ? "training" : "validation")} split is missing; expected DIR/{(train ? "train" : "val")}/<class>/<images>");
        var set = ImageFolder.Load(split, options);
        string trainDir = Path.Combine(dir, "train");
        if (!train && Directory.Exists(trainDir))
        {
            var trainClasses = ImageFolder.ClassFolders(trainDir);
            if (!trainClasses.SequenceEqual(set.ClassNames))
                throw new InvalidFileException(split, $"its class folders ({Names(set.ClassNames)}) differ from train/'s ({Names(trainClasses)}); labels would not match");
        }
        return set;

        static string Names(IReadOnlyList<string> n) => n.Count <= 6 ? string.Join(", ", n) : $"{n.Count} classes: {string.Join(", ", n.Take(5))}, …";
    }

    /// <summary>
    /// Per-channel mean and std over pixels scaled to [0, 1]: MNIST 0.1307/0.3081, Fashion-MNIST 0.2860/0.3530,
    /// CIFAR-10 (0.4914, 0.4822, 0.4465)/(0.2023, 0.1994, 0.2010), CIFAR-100 (129.3, 124.1, 112.4)/255 and
    /// (68.2, 65.4, 70.4)/255, image folders ImageNet's (0.485, 0.456, 0.406)/(0.229, 0.224, 0.225). One-channel
    /// entries are broadcast when images are repeated to three channels.
    /// </summary>
    public static Normalization DefaultNormalization(string name) => Canonical(name) switch
    {
        ImageFolderName => new Normalization([0.485f, 0.456f, 0.406f], [0.229f, 0.224f, 0.225f]),
        "mnist" => new Normalization([0.1307f], [0.3081f]),
        "fashion-mnist" => new Normalization([0.2860f], [0.3530f]),
        "cifar10" => new Normalization([0.4914f, 0.4822f, 0.4465f], [0.2023f, 0.1994f, 0.2010f]),
        _ => new Normalization([129.3f / 255f, 124.1f / 255f, 112.4f / 255f], [68.2f / 255f, 65.4f / 255f, 70.4f / 255f]),
    };

    /// <summary>Number of classes of a dataset (10, or 100 for CIFAR-100); an image folder's are its sub-folders, so
    /// ask the loaded <see cref="ImageSet.Classes"/> instead.</summary>
    public static int ClassCount(string name) => Canonical(name) switch
    {
        "cifar100" => 100,
        ImageFolderName => throw new SpikeSharpException("an image folder's class count is its number of class folders: load it first"),
        _ => 10,
    };

    /// <summary>Stored image geometry [C,H,W] of a dataset, before any transform (an image folder's default crop).</summary>
    public static (int Channels, int Height, int Width) ImageShape(string name) => Canonical(name) switch
    {
        "mnist" or "fashion-mnist" => (1, 28, 28),
        ImageFolderName => (3, 224, 224),
        _ => (3, 32, 32),
    };

    /// <summary>The canonical (lower-case) name, or an error listing the accepted names.</summary>
    /// <exception cref="SpikeSharpException">Unknown name.</exception>
    public static string Canonical(string name)
    {
        string n = (name ?? "").Trim().ToLowerInvariant();
        foreach (string known in Names)
        {
            if (n == known) return known;
        }
        throw new SpikeSharpException($"unknown dataset '{name}'; expected one of {string.Join(", ", Names)}");
    }

    private static ImageDataset LoadIdx(string name, string dir, string torchvisionFolder, bool train)
    {
        string prefix = train ? "train" : "t10k";
        string images = $"{prefix}-images-idx3-ubyte";
        string labels = $"{prefix}-labels-idx1-ubyte";
        string baseUrl = name == "mnist" ? DatasetSources.MnistBaseUrl : DatasetSources.FashionMnistBaseUrl;
        string expected = $"{images}[.gz] and {labels}[.gz] (from {baseUrl})";
        if (!Directory.Exists(dir))
            throw new InvalidFileException(dir, $"dataset folder not found; expected a folder holding the {name} files {expected}");

        string[] folders = [dir, Path.Combine(dir, torchvisionFolder, "raw")];
        foreach (string folder in folders)
        {
            string? imagesPath = Find(folder, images);
            string? labelsPath = Find(folder, labels);
            if (imagesPath != null && labelsPath != null)
                return IdxReader.ReadPair(imagesPath, labelsPath, name, classes: 10);
        }
        var missing = new List<string>(2);
        if (Find(dir, images) == null && Find(folders[1], images) == null) missing.Add(images + "[.gz]");
        if (Find(dir, labels) == null && Find(folders[1], labels) == null) missing.Add(labels + "[.gz]");
        string what = missing.Count > 0 ? $"missing {string.Join(", ", missing)}" : "image and label files are in different folders";
        throw new InvalidFileException(dir,
            $"{name} {(train ? "training" : "test")} files not found: {what}; looked in {dir} and {folders[1]}; expected {expected}");
    }

    // The raw file is preferred when both exist; the reader sniffs gzip by content either way.
    private static string? Find(string folder, string baseName)
    {
        string raw = Path.Combine(folder, baseName);
        if (File.Exists(raw)) return raw;
        string gz = raw + ".gz";
        return File.Exists(gz) ? gz : null;
    }
}
