using System.CommandLine;
using System.Globalization;

namespace SpikeSharp.Cli.Commands;

/// <summary>Option builders and parsers shared by the commands, so flags read the same everywhere.</summary>
internal static class CliOptions
{
    public static Option<T> Make<T>(string name, string description, T? defaultValue = default, bool required = false)
    {
        var o = new Option<T>(name) { Description = description, Required = required };
        if (defaultValue is not null) o.DefaultValueFactory = _ => defaultValue;
        return o;
    }

    public static Option<string?> JsonOut() => Make<string?>("--json", "write machine-readable results to this file");

    public static Option<bool> Quiet() => Make<bool>("--quiet", "print only results and errors (no progress)");

    /// <summary>Parses "C" "CxHxW" (e.g. 3x32x32).</summary>
    public static (int C, int H, int W) ParseShape(string text, string flag)
    {
        var parts = text.Split('x', 'X');
        if (parts.Length == 3 && parts.All(p => int.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out int v) && v > 0))
            return (int.Parse(parts[0], CultureInfo.InvariantCulture), int.Parse(parts[1], CultureInfo.InvariantCulture), int.Parse(parts[2], CultureInfo.InvariantCulture));
        throw new SpikeSharpException($"{flag} '{text}' is not of the form CxHxW, e.g. 3x32x32");
    }

    /// <summary>Parses a comma-separated list of positive integers such as "1,2,4,8".</summary>
    public static int[] ParseIntList(string text, string flag)
    {
        var items = text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        var values = new int[items.Length];
        for (int i = 0; i < items.Length; i++)
            if (!int.TryParse(items[i], NumberStyles.None, CultureInfo.InvariantCulture, out values[i]) || values[i] <= 0)
                throw new SpikeSharpException($"{flag} '{text}': '{items[i]}' is not a positive integer");
        if (values.Length == 0) throw new SpikeSharpException($"{flag} is empty; give a list such as 1,2,4,8");
        return values;
    }

    public static void WriteJson(string? path, System.Text.Json.Nodes.JsonNode node)
    {
        if (string.IsNullOrEmpty(path)) return;
        Interop.AtomicFile.WriteAllText(path, node.ToJsonString(new System.Text.Json.JsonSerializerOptions { WriteIndented = true }) + "\n");
    }

    /// <summary>The flags that say how <c>--dataset imagefolder</c> files become images (the crop is the model's input).</summary>
    public sealed class ImageFolderFlags
    {
        public Option<int?> Resize { get; } = Make<int?>("--resize",
            "image folders: the shorter side before the center crop (default: 256 for a 224 crop, the crop × 256/224 otherwise)");
        public Option<bool> SkipBadImages { get; } = Make<bool>("--skip-bad-images",
            "image folders: decode every file first and leave out the unreadable ones (counted) instead of stopping at the first");

        public Data.ImageFolderOptions For(ParseResult r, int channels, int height, int width) =>
            new(channels, height, width, r.GetValue(Resize) ?? 0, r.GetValue(SkipBadImages));

        /// <summary>Adds both options to <paramref name="command"/>.</summary>
        public void AddTo(Command command)
        {
            command.Options.Add(Resize);
            command.Options.Add(SkipBadImages);
        }
    }

    /// <summary>Prints what loading an image folder left out, if anything.</summary>
    public static void ReportSkipped(Data.ImageSet set)
    {
        if (set is Data.ImageFolder { Skipped: > 0 } f)
            Console.Error.WriteLine($"note: {f.Directory}: left out {f.Skipped} unreadable image file(s) (--skip-bad-images); {f.Count} images remain");
    }

    /// <summary>True when stdout is a terminal (progress bars, colour); false for pipes, files and CI logs.</summary>
    public static bool Interactive => !Console.IsOutputRedirected && Environment.GetEnvironmentVariable("CI") == null;
}
