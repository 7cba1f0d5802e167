// ONNX Runtime running SpikeSharp's own inference networks, exported by `export --format onnx`: the ort_ann_* rows of
// `spikesharp bench --compare-ort`. Prints nothing but progress; writes {"rows": [...]} to --json.
using System.Globalization;
using System.Text.Json.Nodes;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using SpikeSharp.Bench;
using SpikeSharp.Interop.Onnx;

var args0 = args.ToList();
string Arg(string name, string fallback) => args0.IndexOf(name) is int i and >= 0 && i + 1 < args0.Count ? args0[i + 1] : fallback;
int batch = int.Parse(Arg("--batch", "128"), CultureInfo.InvariantCulture);
int reps = int.Parse(Arg("--reps", "9"), CultureInfo.InvariantCulture);
int threads = int.Parse(Arg("--threads", "2"), CultureInfo.InvariantCulture);
string json = Arg("--json", "ort.json");
var models = Arg("--models", "resnet20,vgg16").Split(',', StringSplitOptions.RemoveEmptyEntries);
var rows = new JsonArray();
foreach (var model in models)
{
    var (net, x) = BenchSuite.InferenceNetwork(model, batch);
    var spec = new SpikeSharp.Models.ModelSpec(model, 3, 32, 32, 10, 1f, SpikeSharp.Nn.ActivationSpec.Qcfs(4, 1f));
    string path = Path.Combine(Path.GetTempPath(), $"spikesharp-ort-{model}-{Environment.ProcessId}.onnx");
    OnnxExporter.Export(net, spec, path);
    using var options = new SessionOptions { IntraOpNumThreads = threads, InterOpNumThreads = 1, GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL };
    using var session = new InferenceSession(path, options);
    var input = new DenseTensor<float>(x.Data, [batch, 3, 32, 32]);
    var (median, min) = BenchSuite.Time(() => { using var r = session.Run([NamedOnnxValue.CreateFromTensor("input", input)]); }, reps, warmup: 2);
    File.Delete(path);
    Console.Error.WriteLine($"ort_ann_{model}: median {median * 1000:0.0} ms, min {min * 1000:0.0} ms");
    rows.Add(new JsonObject { ["bench"] = $"ort_ann_{model}", ["seconds"] = median, ["seconds_min"] = min, ["images_per_s"] = batch / median });
}
File.WriteAllText(json, new JsonObject { ["onnxruntime"] = typeof(InferenceSession).Assembly.GetName().Version?.ToString(), ["threads"] = threads, ["rows"] = rows }.ToJsonString());
