// ONNX Runtime beside SpikeSharp, in its own process:
//   timing (spikesharp bench --compare-ort): the ann_* networks exported with OnnxExporter, {"rows": [...]} to --json;
//   --logits MODEL.onnx INPUT.f32 NxCxHxW OUTPUT.f32: runs one batch and writes the raw float32 output (OnnxExportTests).
using System.Globalization;
using System.Text.Json.Nodes;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using SpikeSharp.Bench;
using SpikeSharp.Interop.Onnx;

var args0 = args.ToList();
if (args0.IndexOf("--logits") is int at and >= 0)
{
    var dims = args0[at + 3].Split('x').Select(d => int.Parse(d, CultureInfo.InvariantCulture)).ToArray();
    var data = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(File.ReadAllBytes(args0[at + 2])).ToArray();
    using var logitsSession = new InferenceSession(args0[at + 1]);
    using var output = logitsSession.Run([NamedOnnxValue.CreateFromTensor("input", new DenseTensor<float>(data, dims))]);
    File.WriteAllBytes(args0[at + 4], System.Runtime.InteropServices.MemoryMarshal.AsBytes(output.First().AsEnumerable<float>().ToArray().AsSpan()).ToArray());
    return;
}
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
