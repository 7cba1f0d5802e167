using System.Globalization;
using System.Net;
using System.Text;

namespace SpikeSharp.Reporting;

/// <summary>Small, dependency-free SVG charts for the HTML report: line chart (optionally log-x), bar chart and spike
/// raster. Every chart is a standalone &lt;svg&gt; element with a title, axes and a legend.</summary>
public static class SvgCharts
{
    private static readonly string[] Palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b"];
    private const int W = 640, H = 320, Left = 60, Right = 150, Top = 30, Bottom = 45;

    private static string F(double v) => v.ToString("0.##", CultureInfo.InvariantCulture);
    private static string E(string s) => WebUtility.HtmlEncode(s);

    /// <summary>Axis ticks at 1, 2, 2.5 or 5 × 10^k, about <paramref name="target"/> intervals, covering [lo, hi]
    /// (the first and last tick are the axis ends), and the decimals their labels need.</summary>
    internal static (double[] Ticks, int Decimals) NiceTicks(double lo, double hi, int target = 5)
    {
        if (!(hi > lo)) hi = lo + (lo == 0 ? 1 : Math.Abs(lo) * 0.1);
        double raw = (hi - lo) / target, magnitude = Math.Pow(10, Math.Floor(Math.Log10(raw)));
        double step = new[] { 1, 2, 2.5, 5, 10 }.Select(m => m * magnitude).First(s => s >= raw * 0.999);
        double first = Math.Floor(lo / step + 1e-9) * step, last = Math.Ceiling(hi / step - 1e-9) * step;
        int n = (int)Math.Round((last - first) / step);
        var ticks = Enumerable.Range(0, n + 1).Select(i => Math.Round(first + i * step, 12)).ToArray();
        int decimals = Math.Max(0, -(int)Math.Floor(Math.Log10(step) + 1e-9) + (step / Math.Pow(10, Math.Floor(Math.Log10(step) + 1e-9)) == 2.5 ? 1 : 0));
        return (ticks, decimals);
    }

    private static string TickLabel(double v, int decimals) => v.ToString("F" + decimals, CultureInfo.InvariantCulture);

    /// <summary>One line per series over shared x values; the y axis spans nice ticks around [yMin, yMax], labelled by
    /// <paramref name="tickLabel"/> (value, decimals), and points show <paramref name="yFormat"/> on hover.</summary>
    public static string Line(string title, string xLabel, string yLabel, IReadOnlyList<(string Name, IReadOnlyList<(double X, double Y)> Points)> series,
        bool logX, double yMin, double yMax, Func<double, string> yFormat, Func<double, int, string>? tickLabel = null)
    {
        var xs = series.SelectMany(s => s.Points.Select(p => p.X)).Distinct().OrderBy(x => x).ToList();
        if (xs.Count == 0) return "";
        var (ticks, decimals) = NiceTicks(yMin, yMax);
        (yMin, yMax) = (ticks[0], ticks[^1]);
        tickLabel ??= TickLabel;
        double Tx(double x) => logX ? Math.Log2(x) : x;
        double x0 = Tx(xs[0]), x1 = Math.Max(Tx(xs[^1]), x0 + 1e-9);
        double Px(double x) => Left + (Tx(x) - x0) / (x1 - x0) * (W - Left - Right);
        double Py(double y) => Top + (1 - (Math.Clamp(y, yMin, yMax) - yMin) / (yMax - yMin)) * (H - Top - Bottom);
        var sb = Begin(title);
        foreach (double y in ticks)
        {
            sb.Append($"<line x1='{Left}' x2='{W - Right}' y1='{F(Py(y))}' y2='{F(Py(y))}' stroke='#ddd'/>");
            sb.Append($"<text x='{Left - 6}' y='{F(Py(y) + 4)}' text-anchor='end'>{E(tickLabel(y, decimals))}</text>");
        }
        foreach (var x in xs)
            sb.Append($"<text x='{F(Px(x))}' y='{H - Bottom + 16}' text-anchor='middle'>{F(x)}</text>");
        Axes(sb, xLabel, yLabel);
        for (int s = 0; s < series.Count; s++)
        {
            string color = Palette[s % Palette.Length];
            var pts = series[s].Points.OrderBy(p => p.X).ToList();
            sb.Append($"<polyline fill='none' stroke='{color}' stroke-width='2' points='{string.Join(" ", pts.Select(p => $"{F(Px(p.X))},{F(Py(p.Y))}"))}'/>");
            foreach (var p in pts) sb.Append($"<circle cx='{F(Px(p.X))}' cy='{F(Py(p.Y))}' r='3' fill='{color}'><title>{E(series[s].Name)} {F(p.X)}: {E(yFormat(p.Y))}</title></circle>");
            Legend(sb, s, series[s].Name, color);
        }
        return End(sb);
    }

    /// <summary>Grouped bars: one group per category, one bar per series; the y axis runs from 0 to a nice tick at or
    /// above the largest value, and bars show <paramref name="yFormat"/> on hover.</summary>
    public static string Bars(string title, string yLabel, IReadOnlyList<string> categories, IReadOnlyList<(string Name, IReadOnlyList<double> Values)> series,
        Func<double, string> yFormat, bool rotateLabels = false)
    {
        var (ticks, decimals) = NiceTicks(0, Math.Max(1e-12, series.SelectMany(s => s.Values).DefaultIfEmpty(0).Max()));
        double max = ticks[^1];
        int bottom = rotateLabels ? Bottom + 60 : Bottom;
        int height = H + (rotateLabels ? 60 : 0);
        double groupW = (W - Left - Right) / (double)Math.Max(1, categories.Count);
        double barW = groupW * 0.8 / Math.Max(1, series.Count);
        double Py(double y) => Top + (1 - y / max) * (height - Top - bottom);
        var sb = Begin(title, height);
        foreach (double y in ticks)
        {
            sb.Append($"<line x1='{Left}' x2='{W - Right}' y1='{F(Py(y))}' y2='{F(Py(y))}' stroke='#ddd'/>");
            sb.Append($"<text x='{Left - 6}' y='{F(Py(y) + 4)}' text-anchor='end'>{E(TickLabel(y, decimals))}</text>");
        }
        for (int c = 0; c < categories.Count; c++)
        {
            double gx = Left + c * groupW + groupW * 0.1;
            for (int s = 0; s < series.Count; s++)
            {
                double v = c < series[s].Values.Count ? series[s].Values[c] : 0;
                sb.Append($"<rect x='{F(gx + s * barW)}' y='{F(Py(v))}' width='{F(Math.Max(1, barW - 1))}' height='{F(height - bottom - Py(v))}' fill='{Palette[s % Palette.Length]}'><title>{E(categories[c])} {E(series[s].Name)}: {E(yFormat(v))}</title></rect>");
            }
            double lx = gx + groupW * 0.4, ly = height - bottom + 14;
            sb.Append(rotateLabels
                ? $"<text x='{F(lx)}' y='{F(ly)}' text-anchor='end' transform='rotate(-45 {F(lx)} {F(ly)})'>{E(categories[c])}</text>"
                : $"<text x='{F(lx)}' y='{F(ly)}' text-anchor='middle'>{E(categories[c])}</text>");
        }
        sb.Append($"<line x1='{Left}' y1='{Top}' x2='{Left}' y2='{height - bottom}' stroke='#333'/><line x1='{Left}' y1='{height - bottom}' x2='{W - Right}' y2='{height - bottom}' stroke='#333'/>");
        sb.Append($"<text x='14' y='{(height - bottom + Top) / 2}' transform='rotate(-90 14 {(height - bottom + Top) / 2})' text-anchor='middle'>{E(yLabel)}</text>");
        for (int s = 0; s < series.Count; s++) Legend(sb, s, series[s].Name, Palette[s % Palette.Length]);
        return End(sb);
    }

    /// <summary>Spike raster: one row per neuron, a tick at each step it fired.</summary>
    public static string Raster(string title, int steps, IReadOnlyList<IReadOnlyList<int>> spikeSteps)
    {
        int rows = Math.Max(1, spikeSteps.Count);
        double cw = (W - Left - Right) / (double)steps, rh = (H - Top - Bottom) / (double)rows;
        var sb = Begin(title);
        for (int r = 0; r < spikeSteps.Count; r++)
            foreach (int t in spikeSteps[r])
                sb.Append($"<rect x='{F(Left + (t - 1) * cw + cw * 0.15)}' y='{F(Top + r * rh + rh * 0.1)}' width='{F(Math.Max(1, cw * 0.7))}' height='{F(Math.Max(1, rh * 0.8))}' fill='#222'/>");
        for (int t = 1; t <= steps; t += Math.Max(1, steps / 8))
            sb.Append($"<text x='{F(Left + (t - 0.5) * cw)}' y='{H - Bottom + 16}' text-anchor='middle'>{t}</text>");
        Axes(sb, "time step t", "neuron");
        return End(sb);
    }

    private static StringBuilder Begin(string title, int height = H)
    {
        var sb = new StringBuilder();
        sb.Append($"<svg xmlns='http://www.w3.org/2000/svg' width='{W}' height='{height}' viewBox='0 0 {W} {height}' font-family='sans-serif' font-size='11' role='img'><title>{E(title)}</title>");
        sb.Append($"<rect width='{W}' height='{height}' fill='white'/><text x='{W / 2}' y='16' text-anchor='middle' font-size='13' font-weight='bold'>{E(title)}</text>");
        return sb;
    }

    private static void Axes(StringBuilder sb, string xLabel, string yLabel)
    {
        sb.Append($"<line x1='{Left}' y1='{Top}' x2='{Left}' y2='{H - Bottom}' stroke='#333'/><line x1='{Left}' y1='{H - Bottom}' x2='{W - Right}' y2='{H - Bottom}' stroke='#333'/>");
        sb.Append($"<text x='{(Left + W - Right) / 2}' y='{H - 8}' text-anchor='middle'>{E(xLabel)}</text>");
        sb.Append($"<text x='14' y='{(H - Bottom + Top) / 2}' transform='rotate(-90 14 {(H - Bottom + Top) / 2})' text-anchor='middle'>{E(yLabel)}</text>");
    }

    private static void Legend(StringBuilder sb, int i, string name, string color)
    {
        int y = Top + 10 + i * 18;
        sb.Append($"<rect x='{W - Right + 12}' y='{y - 8}' width='12' height='10' fill='{color}'/><text x='{W - Right + 30}' y='{y + 1}'>{E(name)}</text>");
    }

    private static string End(StringBuilder sb) => sb.Append("</svg>").ToString();
}
