// Where the original dataset distributions can be downloaded and their MD5 checksums; documentation, it downloads nothing.
using System.Security.Cryptography;

namespace SpikeSharp.Data;

/// <summary>One file of an original dataset distribution.</summary>
/// <param name="Dataset">Dataset name as accepted by <see cref="Datasets.Load"/>.</param>
/// <param name="FileName">File name as published (and as <see cref="Datasets.Load"/> expects it, or the archive to extract).</param>
/// <param name="Url">Download address.</param>
/// <param name="Md5">MD5 of the published file, lower-case hex.</param>
public sealed record DatasetSource(string Dataset, string FileName, string Url, string Md5);

/// <summary>
/// The download addresses and MD5 checksums of the original distributions (the same ones torchvision checks).
/// SpikeSharp never downloads: these are for users fetching the files themselves, e.g.
/// <c>curl -O URL &amp;&amp; md5sum FILE</c>, then <c>spikesharp … --data DIR</c>.
/// </summary>
public static class DatasetSources
{
    /// <summary>MNIST mirror used by torchvision (yann.lecun.com often refuses downloads).</summary>
    public const string MnistBaseUrl = "https://ossci-datasets.s3.amazonaws.com/mnist/";

    /// <summary>The original MNIST page and file location.</summary>
    public const string MnistOriginalBaseUrl = "http://yann.lecun.com/exdb/mnist/";

    /// <summary>Zalando Research's Fashion-MNIST bucket.</summary>
    public const string FashionMnistBaseUrl = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/";

    /// <summary>Alex Krizhevsky's CIFAR page, which hosts both archives.</summary>
    public const string CifarBaseUrl = "https://www.cs.toronto.edu/~kriz/";

    public const string MnistTrainImagesMd5 = "f68b3c2dcbeaaa9fbdd348bbdeb94873";
    public const string MnistTrainLabelsMd5 = "d53e105ee54ea40749a09fcbcd1e9432";
    public const string MnistTestImagesMd5 = "9fb629c4189551a2d022fa330f9573f3";
    public const string MnistTestLabelsMd5 = "ec29112dd5afa0611ce80d1b7f02629c";

    public const string FashionMnistTrainImagesMd5 = "8d4fb7e6c68d591d4c3dfef9ec88bf0d";
    public const string FashionMnistTrainLabelsMd5 = "25c81989df183df01b3e8a0aad5dffbe";
    public const string FashionMnistTestImagesMd5 = "bef4ecab320f06d8554ea6380940ec79";
    public const string FashionMnistTestLabelsMd5 = "bb300cfdad3c16e7a12a480ee83cd310";

    /// <summary>MD5 of <c>cifar-10-binary.tar.gz</c> (162 MB; extracts to <c>cifar-10-batches-bin/</c>).</summary>
    public const string Cifar10BinaryMd5 = "c32a1d4ab5d03f1284b67883e8d87530";

    /// <summary>MD5 of <c>cifar-100-binary.tar.gz</c> (161 MB; extracts to <c>cifar-100-binary/</c>).</summary>
    public const string Cifar100BinaryMd5 = "03b5dce01913d631647c71ecec9e9cb8";

    /// <summary>Every known source file, grouped by dataset.</summary>
    public static readonly IReadOnlyList<DatasetSource> All =
    [
        new("mnist", "train-images-idx3-ubyte.gz", MnistBaseUrl + "train-images-idx3-ubyte.gz", MnistTrainImagesMd5),
        new("mnist", "train-labels-idx1-ubyte.gz", MnistBaseUrl + "train-labels-idx1-ubyte.gz", MnistTrainLabelsMd5),
        new("mnist", "t10k-images-idx3-ubyte.gz", MnistBaseUrl + "t10k-images-idx3-ubyte.gz", MnistTestImagesMd5),
        new("mnist", "t10k-labels-idx1-ubyte.gz", MnistBaseUrl + "t10k-labels-idx1-ubyte.gz", MnistTestLabelsMd5),
        new("fashion-mnist", "train-images-idx3-ubyte.gz", FashionMnistBaseUrl + "train-images-idx3-ubyte.gz", FashionMnistTrainImagesMd5),
        new("fashion-mnist", "train-labels-idx1-ubyte.gz", FashionMnistBaseUrl + "train-labels-idx1-ubyte.gz", FashionMnistTrainLabelsMd5),
        new("fashion-mnist", "t10k-images-idx3-ubyte.gz", FashionMnistBaseUrl + "t10k-images-idx3-ubyte.gz", FashionMnistTestImagesMd5),
        new("fashion-mnist", "t10k-labels-idx1-ubyte.gz", FashionMnistBaseUrl + "t10k-labels-idx1-ubyte.gz", FashionMnistTestLabelsMd5),
        new("cifar10", "cifar-10-binary.tar.gz", CifarBaseUrl + "cifar-10-binary.tar.gz", Cifar10BinaryMd5),
        new("cifar100", "cifar-100-binary.tar.gz", CifarBaseUrl + "cifar-100-binary.tar.gz", Cifar100BinaryMd5),
    ];

    /// <summary>The source files of one dataset (empty for an unknown name).</summary>
    public static IReadOnlyList<DatasetSource> For(string dataset)
    {
        var list = new List<DatasetSource>();
        foreach (var s in All)
        {
            if (string.Equals(s.Dataset, dataset, StringComparison.OrdinalIgnoreCase)) list.Add(s);
        }
        return list;
    }

    /// <summary>MD5 of a file as lower-case hex, to compare with <see cref="DatasetSource.Md5"/>.</summary>
    public static string ComputeMd5(string path)
    {
        using var stream = File.OpenRead(path);
        return Convert.ToHexStringLower(MD5.HashData(stream));
    }

    internal static string ArchiveUrl(string archive) => CifarBaseUrl + archive;
}
