using System.Globalization;
using System.Net;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using SpikeSharp.Interop;

namespace SpikeSharp.Reporting;

/// <summary>
/// Writes a report folder: <c>report.json</c> (the data; stable names), and <c>report.md</c> and a self-contained
/// <c>report.html</c> (inline SVG charts) rendered from it, so <see cref="Rebuild"/> can regenerate both from the JSON.
/// </summary>
public static class ReportWriter
{
    public const string JsonFile = "report.json", MarkdownFile = "report.md", HtmlFile = "report.html";
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    public static void Write(string dir, JsonObject report)
    {
        Directory.CreateDirectory(dir);
        AtomicFile.WriteAllText(Path.Combine(dir, JsonFile), report.ToJsonString(new JsonSerializerOptions { WriteIndented = true }) + "\n");
        AtomicFile.WriteAllText(Path.Combine(dir, MarkdownFile), Markdown(report));
        AtomicFile.WriteAllText(Path.Combine(dir, HtmlFile), Html(report));
    }

    /// <summary>Re-renders report.md and report.html from an existing report.json.</summary>
    public static void Rebuild(string dir)
    {
        string path = Path.Combine(dir, JsonFile);
        if (!File.Exists(path)) throw new SpikeSharpException($"no {JsonFile} in '{dir}': pass the folder a demo or evaluate run wrote");
        JsonObject report;
        try { report = JsonNode.Parse(File.ReadAllText(path)) as JsonObject ?? throw new InvalidFileException(path, "expected a JSON object"); }
        catch (JsonException e) { throw new InvalidFileException(path, $"invalid JSON: {e.Message}"); }
        if (report["snn"] is not JsonArray || report["ann_accuracy"] is null)
            throw new InvalidFileException(path, "missing 'snn' or 'ann_accuracy': not a SpikeSharp report");
        Write(dir, report);
    }

    private static IEnumerable<JsonObject> Methods(JsonObject r) => r["snn"]!.AsArray().Select(n => n!.AsObject());

    private static IEnumerable<(int T, double V)> ByT(JsonNode? node) =>
        node is JsonObject o ? o.Select(kv => (int.Parse(kv.Key, Inv), kv.Value!.GetValue<double>())).OrderBy(p => p.Item1) : [];

    private static string Pct(double v) => (v * 100).ToString("0.00", Inv) + " %";

    public static string Markdown(JsonObject r)
    {
        var sb = new StringBuilder();
        double ann = r["ann_accuracy"]!.GetValue<double>();
        double annEnergy = r["ann_energy_pj_per_image"]?.GetValue<double>() ?? 0;
        sb.AppendLine($"# {r["title"]?.GetValue<string>() ?? "SpikeSharp report"}").AppendLine();
        sb.AppendLine($"- model: `{r["model"]}` · dataset: `{r["dataset"]}` · test images: {r["test_images"]}");
        sb.AppendLine($"- ANN accuracy: **{Pct(ann)}** · {r["macs_per_image"]!.GetValue<long>() / 1e6:0.##} M MACs per image · {annEnergy / 1e6:0.###} µJ per image");
        if (r["command"] is { } cmd) sb.AppendLine($"- command: `{cmd}`");
        if (r["training"] is JsonObject tr) sb.AppendLine($"- training: {tr["epochs"]!.AsArray().Count} epochs in {tr["seconds"]!.GetValue<double>():0} s (checkpoint `{tr["checkpoint"]}`)");
        if (r["seconds_total"] is { } st) sb.AppendLine($"- total time: {st.GetValue<double>():0} s");
        sb.AppendLine().AppendLine("## SNN accuracy per time step").AppendLine();
        var ts = Methods(r).SelectMany(m => ByT(m["accuracy_by_t"]).Select(p => p.T)).Distinct().OrderBy(t => t).ToList();
        sb.AppendLine("| method | extra steps | calibration | " + string.Join(" | ", ts.Select(t => $"t={t}")) + " |");
        sb.AppendLine("|---|---|---|" + string.Concat(ts.Select(_ => "---|")));
        foreach (var m in Methods(r))
        {
            var acc = ByT(m["accuracy_by_t"]).ToDictionary(p => p.T, p => p.V);
            sb.AppendLine($"| {m["method"]} | {m["extra_steps"]} | {m["calibration_images"]} ({m["calibration_data"]}) | " +
                string.Join(" | ", ts.Select(t => acc.TryGetValue(t, out var a) ? Pct(a) : "")) + " |");
        }
        sb.AppendLine().AppendLine("Extra steps run before the counted steps t (total latency = extra + t). Calibration never uses the test set.").AppendLine();
        foreach (var m in Methods(r))
            if (m["calibration_summary"] is { } summary) sb.AppendLine($"- {m["method"]}: {summary}");
        if (Methods(r).Any(m => m["calibration_summary"] != null)) sb.AppendLine();
        sb.AppendLine("## Spikes and energy per image").AppendLine();
        sb.AppendLine("| method | t | firing rate | SOPs | energy | vs ANN |").AppendLine("|---|---|---|---|---|---|");
        foreach (var m in Methods(r))
        {
            var rate = ByT(m["firing_rate_by_t"]).ToDictionary(p => p.T, p => p.V);
            var sops = ByT(m["sops_per_image"]).ToDictionary(p => p.T, p => p.V);
            foreach (var (t, e) in ByT(m["energy_pj_per_image"]))
                sb.AppendLine($"| {m["method"]} | {t} | {rate.GetValueOrDefault(t):0.0000} | {sops.GetValueOrDefault(t) / 1e6:0.00} M | {e / 1e6:0.###} µJ | {(annEnergy > 0 ? e / annEnergy : 0):0.00}× |");
        }
        sb.AppendLine().AppendLine($"Energy model: {r["energy_formula"]}").AppendLine();
        sb.AppendLine("## Firing rate per layer (full horizon)").AppendLine();
        var first = Methods(r).FirstOrDefault();
        if (first != null)
        {
            sb.AppendLine("| layer | " + string.Join(" | ", Methods(r).Select(m => m["method"]!.GetValue<string>())) + " |");
            sb.AppendLine("|---|" + string.Concat(Methods(r).Select(_ => "---|")));
            var layers = first["firing_rate_by_layer"]!.AsArray().Select(l => l!["layer"]!.GetValue<string>()).ToList();
            for (int i = 0; i < layers.Count; i++)
                sb.AppendLine($"| {layers[i]} | " + string.Join(" | ", Methods(r).Select(m => m["firing_rate_by_layer"]!.AsArray()[i]!["rate"]!.GetValue<double>().ToString("0.0000", Inv))) + " |");
        }
        return sb.ToString();
    }

    public static string Html(JsonObject r)
    {
        string E(string s) => WebUtility.HtmlEncode(s);
        var charts = new List<string>();
        var methods = Methods(r).ToList();
        double ann = r["ann_accuracy"]!.GetValue<double>();
        var accSeries = methods.Select(m => (m["method"]!.GetValue<string>() + (m["extra_steps"]!.GetValue<int>() > 0 ? $" (+{m["extra_steps"]} extra)" : ""),
            (IReadOnlyList<(double, double)>)ByT(m["accuracy_by_t"]).Select(p => ((double)p.T, p.V)).ToList())).ToList();
        var tsAll = methods.SelectMany(m => ByT(m["accuracy_by_t"]).Select(p => (double)p.T)).Distinct().OrderBy(t => t).ToList();
        if (tsAll.Count > 0) accSeries.Add(("ANN", tsAll.Select(t => (t, ann)).ToList()));
        double yMin = Math.Max(0, Math.Floor(accSeries.SelectMany(s => s.Item2).Select(p => p.Item2).DefaultIfEmpty(0).Min() * 10) / 10);
        charts.Add(SvgCharts.Line("Accuracy vs time steps t", "time step t (log scale)", "accuracy", accSeries, logX: true, yMin, 1, v => Pct(v),
            (v, decimals) => (v * 100).ToString("F" + Math.Max(0, decimals - 2), Inv) + " %"));
        if (methods.Count > 0)
        {
            var layers = methods[0]["firing_rate_by_layer"]!.AsArray().Select(l => l!["layer"]!.GetValue<string>()).ToList();
            charts.Add(SvgCharts.Bars("Firing rate per layer (spikes per neuron per step)", "firing rate", layers,
                methods.Select(m => (m["method"]!.GetValue<string>(), (IReadOnlyList<double>)m["firing_rate_by_layer"]!.AsArray().Select(l => l!["rate"]!.GetValue<double>()).ToList())).ToList(),
                v => v.ToString("0.000", Inv), rotateLabels: true));
            var ts = ByT(methods[0]["energy_pj_per_image"]).Select(p => p.T).ToList();
            var energySeries = methods.Select(m => (m["method"]!.GetValue<string>(), (IReadOnlyList<double>)ByT(m["energy_pj_per_image"]).Select(p => p.V / 1e6).ToList())).ToList();
            energySeries.Add(("ANN", ts.Select(_ => (r["ann_energy_pj_per_image"]?.GetValue<double>() ?? 0) / 1e6).ToList()));
            charts.Add(SvgCharts.Bars("Energy per image, ANN vs SNN (µJ)", "µJ per image", ts.Select(t => $"t={t}").ToList(), energySeries, v => v.ToString("0.##", Inv)));
        }
        if (r["raster"] is JsonObject raster)
        {
            var rows = raster["neurons"]!.AsArray().Select(n => (IReadOnlyList<int>)n!.AsArray().Select(t => t!.GetValue<int>()).ToList()).ToList();
            charts.Add(SvgCharts.Raster($"Spike raster: {rows.Count} neurons of {raster["layer"]}, one image", raster["steps"]!.GetValue<int>(), rows));
        }
        var md = Markdown(r);
        var sb = new StringBuilder();
        sb.Append("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>").Append(E(r["title"]?.GetValue<string>() ?? "SpikeSharp report"))
          .Append("</title><style>body{font-family:sans-serif;max-width:1000px;margin:2em auto;color:#222}table{border-collapse:collapse;margin:1em 0}" +
                  "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}th{background:#f4f4f4}svg{margin:0.5em 0;border:1px solid #eee}" +
                  "code{background:#f4f4f4;padding:1px 4px}</style></head><body>");
        sb.Append(MarkdownToHtml(md));
        sb.Append("<h2>Charts</h2>");
        foreach (var c in charts) sb.Append("<div class='chart'>").Append(c).Append("</div>");
        sb.Append("</body></html>\n");
        return sb.ToString();
    }

    /// <summary>Renders the subset of Markdown the report uses: headings, bullet lists, tables, code spans, bold.</summary>
    private static string MarkdownToHtml(string md)
    {
        var sb = new StringBuilder();
        bool inList = false, inTable = false, header = false;
        foreach (var raw in md.Split('\n'))
        {
            string line = raw.TrimEnd();
            if (inList && !line.StartsWith("- ")) { sb.Append("</ul>"); inList = false; }
            if (inTable && !line.StartsWith('|')) { sb.Append("</table>"); inTable = false; }
            if (line.StartsWith("# ")) sb.Append("<h1>").Append(Inline(line[2..])).Append("</h1>");
            else if (line.StartsWith("## ")) sb.Append("<h2>").Append(Inline(line[3..])).Append("</h2>");
            else if (line.StartsWith("- ")) { if (!inList) { sb.Append("<ul>"); inList = true; } sb.Append("<li>").Append(Inline(line[2..])).Append("</li>"); }
            else if (line.StartsWith('|'))
            {
                var cells = line.Trim('|').Split('|').Select(c => c.Trim()).ToList();
                if (cells.All(c => c.Length > 0 && c.All(ch => ch == '-'))) continue;
                if (!inTable) { sb.Append("<table>"); inTable = true; header = true; }
                string tag = header ? "th" : "td";
                sb.Append("<tr>").Append(string.Concat(cells.Select(c => $"<{tag}>{Inline(c)}</{tag}>"))).Append("</tr>");
                header = false;
            }
            else if (line.Length > 0) sb.Append("<p>").Append(Inline(line)).Append("</p>");
        }
        if (inList) sb.Append("</ul>");
        if (inTable) sb.Append("</table>");
        return sb.ToString();
    }

    private static string Inline(string s)
    {
        s = WebUtility.HtmlEncode(s);
        s = System.Text.RegularExpressions.Regex.Replace(s, "`([^`]*)`", "<code>$1</code>");
        return System.Text.RegularExpressions.Regex.Replace(s, @"\*\*([^*]*)\*\*", "<b>$1</b>");
    }
}
