using System.Text.Json.Nodes;
using SpikeSharp.Tensors;

namespace SpikeSharp.Snn.Monitors;

/// <summary>Records, for one image, the steps at which a few neurons of one layer fired (for the report's raster).</summary>
public static class SpikeRaster
{
    /// <summary>Simulates one image (plain layer-major run) and returns up to <paramref name="neurons"/> neurons of the
    /// middle spiking layer that fired at least once, each as the list of steps (1-based) it fired at.</summary>
    public static JsonObject Record(SpikingNetwork snn, Tensor image, int steps, int neurons = 40)
    {
        var layer = snn.Neurons[snn.Neurons.Count / 2];
        float[]? output = null;
        using (layer.Attach((_, _, y) => output = (float[])y.Data.Clone()))
        {
            snn.Configure(1, steps);
            var arena = new TensorArena();
            using (arena.Activate()) snn.Run(image, steps);
        }
        int n = output!.Length / steps;
        var rows = new JsonArray();
        int stride = Math.Max(1, n / (neurons * 4));
        for (int i = 0; i < n && rows.Count < neurons; i += stride)
        {
            var fired = Enumerable.Range(0, steps).Where(t => output[t * n + i] != 0).Select(t => t + 1).ToList();
            if (fired.Count > 0) rows.Add(new JsonArray(fired.Select(t => (JsonNode)t).ToArray()));
        }
        return new JsonObject { ["layer"] = layer.LayerName, ["steps"] = steps, ["neurons"] = rows };
    }
}
