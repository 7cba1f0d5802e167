// The report's axis ticks: round numbers that cover the data, with as many decimals as the step needs.
using SpikeSharp.Reporting;
using Xunit;

namespace SpikeSharp.Tests.Reporting;

public class SvgChartsTests
{
    [Theory]
    [InlineData(0, 0.059, new[] { 0, 0.02, 0.04, 0.06 }, 2)] // a firing-rate axis: the top bar stays inside
    [InlineData(0.6, 1, new[] { 0.6, 0.7, 0.8, 0.9, 1.0 }, 1)]
    [InlineData(0.1, 1, new[] { 0, 0.2, 0.4, 0.6, 0.8, 1.0 }, 1)]
    [InlineData(0, 49, new[] { 0.0, 10, 20, 30, 40, 50 }, 0)]
    [InlineData(0, 12, new[] { 0, 2.5, 5, 7.5, 10, 12.5 }, 1)]
    [InlineData(3, 3, new[] { 3, 3.1, 3.2, 3.3 }, 1)] // a flat series still gets an axis
    public void NiceTicks_AreRoundAndCoverTheRange(double lo, double hi, double[] expected, int decimals)
    {
        var (ticks, d) = SvgCharts.NiceTicks(lo, hi);
        Assert.Equal(expected, ticks);
        Assert.Equal(decimals, d);
    }

    [Fact]
    public void Bars_LabelTheAxisWithNiceTicks_AndKeepExactValuesForHover()
    {
        string svg = SvgCharts.Bars("t", "y", ["a", "b"], [("s", [0.0591, 0.0312])], v => v.ToString("0.0000", System.Globalization.CultureInfo.InvariantCulture));
        Assert.Contains(">0.06</text>", svg);
        Assert.Contains(">0.04</text>", svg);
        Assert.Contains("a s: 0.0591", svg);
        Assert.DoesNotContain(">0.0591</text>", svg); // no axis label at the data maximum any more
    }
}
