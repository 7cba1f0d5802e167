// Regression corpus: tricky files committed under Fixtures/corpus/<parser>/ (written by tools/make_fuzz_corpus.py).
using Xunit;

namespace SpikeSharp.Tests.Reliability;

/// <summary>Every corpus file parses, or is rejected with a message that names the file and contains the fragment in
/// its folder's expected.tsv — within the fuzzer's memory bound. Add a file here whenever the fuzzer finds a bug.</summary>
public sealed class CorpusTests
{
    private static readonly string Root = Path.Combine(AppContext.BaseDirectory, "Fixtures", "corpus");

    public static TheoryData<string, string, string> Files()
    {
        var data = new TheoryData<string, string, string>();
        foreach (string dir in Directory.GetDirectories(Root).Order(StringComparer.Ordinal))
            foreach (string line in File.ReadAllLines(Path.Combine(dir, "expected.tsv")))
            {
                var parts = line.Split('\t');
                data.Add(Path.GetFileName(dir), parts[0], parts.Length > 1 ? parts[1] : "");
            }
        return data;
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void CorpusFile(string parser, string file, string expected)
    {
        string path = Path.Combine(Root, parser, file);
        var (failure, rejection) = Fuzzer.Check(FuzzTargets.For(parser), File.ReadAllBytes(path), path);
        Assert.True(failure == null, failure);
        if (expected == "") Assert.True(rejection == null, $"expected {file} to parse, got: {rejection}");
        else
        {
            Assert.True(rejection != null, $"expected {file} to be rejected with '{expected}', but it parsed");
            Assert.True(rejection.Contains(expected, StringComparison.Ordinal), $"expected '{expected}' in: {rejection}");
        }
    }

    [Fact]
    public void EveryParserHasACorpus() =>
        Assert.Equal(["cifar10", "cifar100", "idx-images", "idx-labels", "model-json", "safetensors"],
            Directory.GetDirectories(Root).Select(Path.GetFileName).Order(StringComparer.Ordinal));
}
