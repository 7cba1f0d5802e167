// Reads the binary versions of CIFAR-10 and CIFAR-100 (fixed-size records of label bytes + 3072 pixels).
namespace SpikeSharp.Data;

/// <summary>
/// Reader for the "binary version (suitable for C programs)" of CIFAR-10 and CIFAR-100. A CIFAR-10 record is
/// 1 label byte + 3072 pixels; a CIFAR-100 record is 1 coarse label byte + 1 fine label byte + 3072 pixels (the
/// fine label is used). Pixels are stored as 1024 red, 1024 green, 1024 blue bytes, row-major, which is already
/// the [C,H,W] layout of <see cref="ImageDataset"/>. Files are looked for in the given folder and in the folder the
/// official archive extracts to (<c>cifar-10-batches-bin/</c>, <c>cifar-100-binary/</c>).
/// </summary>
public static class CifarReader
{
    /// <summary>Pixels per image: 3 channels × 32 × 32.</summary>
    public const int ImageBytes = 3 * 32 * 32;

    /// <summary>Folder that <c>cifar-10-binary.tar.gz</c> extracts to.</summary>
    public const string Cifar10Folder = "cifar-10-batches-bin";

    /// <summary>Folder that <c>cifar-100-binary.tar.gz</c> extracts to.</summary>
    public const string Cifar100Folder = "cifar-100-binary";

    /// <summary>The CIFAR-10 training batches, 10 000 images each.</summary>
    public static readonly IReadOnlyList<string> Cifar10TrainFiles =
        ["data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"];

    /// <summary>The CIFAR-10 test batch, 10 000 images.</summary>
    public static readonly IReadOnlyList<string> Cifar10TestFiles = ["test_batch.bin"];

    /// <summary>The CIFAR-100 training file, 50 000 images.</summary>
    public static readonly IReadOnlyList<string> Cifar100TrainFiles = ["train.bin"];

    /// <summary>The CIFAR-100 test file, 10 000 images.</summary>
    public static readonly IReadOnlyList<string> Cifar100TestFiles = ["test.bin"];

    /// <summary>Loads the CIFAR-10 training (50 000) or test (10 000) split from <paramref name="dir"/>.</summary>
    public static ImageDataset ReadCifar10(string dir, bool train)
    {
        var files = train ? Cifar10TrainFiles : Cifar10TestFiles;
        var paths = Locate(dir, Cifar10Folder, files, "CIFAR-10", "cifar-10-binary.tar.gz");
        return ReadFiles(paths, cifar100: false, "cifar10");
    }

    /// <summary>Loads the CIFAR-100 training (50 000) or test (10 000) split from <paramref name="dir"/>, fine labels.</summary>
    public static ImageDataset ReadCifar100(string dir, bool train)
    {
        var files = train ? Cifar100TrainFiles : Cifar100TestFiles;
        var paths = Locate(dir, Cifar100Folder, files, "CIFAR-100", "cifar-100-binary.tar.gz");
        return ReadFiles(paths, cifar100: true, "cifar100");
    }

    /// <summary>
    /// Reads and concatenates record files in order. Every file's length is checked to be a positive multiple of
    /// the record size before anything is allocated; labels are range-checked (10 classes, or 20 coarse / 100 fine).
    /// </summary>
    public static ImageDataset ReadFiles(IReadOnlyList<string> paths, bool cifar100, string name)
    {
        ArgumentNullException.ThrowIfNull(paths);
        if (paths.Count == 0) throw new ArgumentException("expected at least one file", nameof(paths));
        var files = new DataFile[paths.Count];
        try
        {
            for (int f = 0; f < paths.Count; f++) files[f] = DataFile.Open(paths[f]);
            return Read(files, cifar100, name);
        }
        finally
        {
            foreach (var file in files) file?.Dispose();
        }
    }

    /// <summary>Reads one record file from a seekable stream (e.g. its bytes in memory); <paramref name="path"/> names it in
    /// messages. Validation is the same as for <see cref="ReadFiles"/>.</summary>
    public static ImageDataset Read(Stream stream, string path, bool cifar100, string name)
    {
        using var file = DataFile.FromStream(stream, path);
        return Read([file], cifar100, name);
    }

    private static ImageDataset Read(DataFile[] files, bool cifar100, string name)
    {
        int labelBytes = cifar100 ? 2 : 1;
        int record = labelBytes + ImageBytes;
        string format = cifar100
            ? $"CIFAR-100 record ({record} bytes: coarse label, fine label, {ImageBytes} pixels)"
            : $"CIFAR-10 record ({record} bytes: label, {ImageBytes} pixels)";

        long total = 0;
        foreach (var file in files)
        {
            if (file.Gzip)
            {
                throw new InvalidFileException(file.Path,
                    "is gzip-compressed; expected the raw .bin files extracted from the official archive");
            }
            if (file.FileLength == 0 || file.FileLength % record != 0)
            {
                throw new InvalidFileException(file.Path,
                    $"length {file.FileLength} is not a positive multiple of the {format}; " +
                    $"the file is truncated ({file.FileLength % record} bytes of a partial record at offset " +
                    $"{file.FileLength - file.FileLength % record}) or not in this format");
            }
            total += file.FileLength / record;
        }
        if (total * ImageBytes > Array.MaxLength)
            throw new InvalidFileException(files[0].Path, $"{total} images exceed the 2 GiB in-memory limit");

        var pixels = new byte[total * ImageBytes];
        var labels = new int[total];
        int index = 0;
        foreach (var file in files) index = ReadRecords(file, cifar100, record, pixels, labels, index);
        return new ImageDataset(name, pixels, labels, 3, 32, 32, cifar100 ? 100 : 10);
    }

    private static int ReadRecords(DataFile file, bool cifar100, int record, byte[] pixels, int[] labels, int index)
    {
        const int RecordsPerChunk = 256;
        var chunk = new byte[RecordsPerChunk * record];
        long records = file.FileLength / record;
        for (long done = 0; done < records;)
        {
            int n = (int)Math.Min(RecordsPerChunk, records - done);
            int got = file.ReadFully(chunk.AsSpan(0, n * record));
            if (got != n * record)
                throw new InvalidFileException(file.Path, $"data ends at offset {file.Offset}; expected {file.FileLength} bytes (file changed while reading?)");
            for (int r = 0; r < n; r++)
            {
                int at = r * record;
                long offset = (done + r) * record;
                int label;
                if (cifar100)
                {
                    CheckLabel(file, chunk[at], 20, offset, "coarse label");
                    label = CheckLabel(file, chunk[at + 1], 100, offset + 1, "fine label");
                }
                else
                {
                    label = CheckLabel(file, chunk[at], 10, offset, "label");
                }
                labels[index] = label;
                Buffer.BlockCopy(chunk, at + record - ImageBytes, pixels, index * ImageBytes, ImageBytes);
                index++;
            }
            done += n;
        }
        return index;
    }

    private static int CheckLabel(DataFile file, byte value, int classes, long offset, string field)
    {
        if (value >= classes)
            throw new InvalidFileException(file.Path, $"bad {field} {value} at offset {offset}; expected 0..{classes - 1}");
        return value;
    }

    // Finds the folder (dir itself or its standard subfolder) holding all the files; otherwise says which are missing.
    private static string[] Locate(string dir, string subfolder, IReadOnlyList<string> files, string dataset, string archive)
    {
        string expected = $"{string.Join(", ", files)} (from {archive}, {DatasetSources.ArchiveUrl(archive)})";
        if (!Directory.Exists(dir))
            throw new InvalidFileException(dir, $"dataset folder not found; expected a folder holding the {dataset} binary files {expected}");
        string[] candidates = [dir, Path.Combine(dir, subfolder)];
        foreach (string folder in candidates)
        {
            var paths = new string[files.Count];
            bool all = true;
            for (int i = 0; i < files.Count; i++)
            {
                paths[i] = Path.Combine(folder, files[i]);
                all &= File.Exists(paths[i]);
            }
            if (all) return paths;
        }
        var missing = new List<string>();
        foreach (string f in files)
        {
            if (!File.Exists(Path.Combine(dir, f)) && !File.Exists(Path.Combine(dir, subfolder, f))) missing.Add(f);
        }
        if (missing.Count == 0)
        {
            throw new InvalidFileException(dir,
                $"{dataset} binary files are split between {dir} and {Path.Combine(dir, subfolder)}; expected {expected} in one of them");
        }
        throw new InvalidFileException(dir,
            $"{dataset} binary files missing: {string.Join(", ", missing)}; looked in {dir} and {Path.Combine(dir, subfolder)}; " +
            $"expected {expected}");
    }
}
