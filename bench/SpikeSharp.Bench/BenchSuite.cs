using System.Diagnostics;
using SpikeSharp.Autograd;
using SpikeSharp.Autograd.Ops;
using SpikeSharp.Models;
using SpikeSharp.Conversion;
using SpikeSharp.Nn;
using SpikeSharp.Snn;
using SpikeSharp.Tensors;

namespace SpikeSharp.Bench;

/// <summary>One benchmark result; names match ../shared/bench/torch_baseline.py so rows compare one to one.</summary>
/// <param name="Note">what the number depends on beyond the shapes (e.g. the firing rate of an SNN run)</param>
/// <param name="Seconds">median over the timed repetitions</param>
public sealed record BenchRow(string Bench, double Seconds, double? Gflops = null, double? ImagesPerSecond = null, string? Note = null)
{
    /// <summary>Time per operation and shape in one extra repetition (bench --profile); null unless asked for.</summary>
    public IReadOnlyList<Profiler.Entry>? Profile { get; init; }

    /// <summary>The fastest timed repetition.</summary>
    public double? SecondsMin { get; init; }

    /// <summary>Percent of <paramref name="peakGflops"/> (measured in the same run), where the row has a FLOP count.</summary>
    public double? PercentOf(double peakGflops) => Gflops / peakGflops * 100;
}

/// <summary>
/// The benchmark suite behind <c>spikesharp bench</c>: kernels (GEMM, convolution forward and backward), a training
/// step of VGG-16 and ResNet-20, and SNN inference of both at T = 4 and 8. Timings are medians over repetitions after
/// warm-up; nothing here is asserted in tests.
/// </summary>
public static class BenchSuite
{
    public sealed record Entry(string Name, string Description, Func<BenchContext, BenchRow> Run);

    /// <param name="Profile">after timing, run one more repetition under the <see cref="Profiler"/></param>
    public sealed record BenchContext(int Batch, int Reps, int Warmup, bool Profile = false);

    private static readonly IReadOnlyList<Entry> Entries =
    [
        new("gemm_1024", "SGEMM 1024×1024×1024 on the worker pool", Gemm1024),
        new("conv3x3_128_32x32", "conv 3×3 128→128 on 32×32, forward", c => Conv(c, backward: false)),
        new("conv3x3_128_32x32_fwdbwd", "conv 3×3 128→128 on 32×32, forward + both backward passes", c => Conv(c, backward: true)),
        new("train_vgg16", "one SGD step of VGG-16 (QCFS, 3×32×32, 10 classes)", c => TrainStep(c, "vgg16")),
        new("train_resnet20", "one SGD step of ResNet-20 (QCFS, 3×32×32, 10 classes)", c => TrainStep(c, "resnet20")),
        new("ann_vgg16", "ANN inference of VGG-16 (QCFS, BN folded), the network ort_ann_vgg16 runs", c => AnnInference(c, "vgg16")),
        new("ann_resnet20", "ANN inference of ResNet-20 (QCFS, BN folded), the network ort_ann_resnet20 runs", c => AnnInference(c, "resnet20")),
        new("snn_vgg16_T4", "SNN inference of VGG-16, T = 4, layer-major", c => SnnInference(c, "vgg16", 4)),
        new("snn_vgg16_T8", "SNN inference of VGG-16, T = 8, layer-major", c => SnnInference(c, "vgg16", 8)),
        new("snn_resnet20_T4", "SNN inference of ResNet-20, T = 4, layer-major", c => SnnInference(c, "resnet20", 4)),
        new("snn_resnet20_T8", "SNN inference of ResNet-20, T = 8, layer-major", c => SnnInference(c, "resnet20", 8)),
        new("evaluate_resnet20", "the evaluate loop end to end: ResNet-20 (QCFS), method qcfs, T = 32, 256 Fashion-MNIST-shaped images, data loading included", EvaluateResNet20),
        new("decode_imagefolder", "image-folder loading: 500×375 JPEGs decoded, resized to 256 and center-cropped to 224", DecodeImageFolder),
    ];

    public static IReadOnlyList<Entry> All => Entries;

    public static IEnumerable<BenchRow> Run(IReadOnlyCollection<string>? only, BenchContext context, Action<string>? log = null)
    {
        if (only is { Count: > 0 })
        {
            var unknown = only.Where(n => Entries.All(e => e.Name != n)).ToList();
            if (unknown.Count > 0)
                throw new SpikeSharpException($"unknown benchmark '{unknown[0]}'; expected one of {string.Join(", ", Entries.Select(e => e.Name))}");
        }
        foreach (var e in Entries)
        {
            if (only is { Count: > 0 } && !only.Contains(e.Name)) continue;
            log?.Invoke($"running {e.Name}: {e.Description}");
            (_lastProfile, _lastMin) = (null, null);
            var row = e.Run(context);
            yield return row with { Profile = _lastProfile, SecondsMin = _lastMin };
        }
    }

    [ThreadStatic] private static List<Profiler.Entry>? _lastProfile;
    [ThreadStatic] private static double? _lastMin;

    /// <summary>Median wall time of reps calls after warm-up calls; with <paramref name="c"/>.Profile, one more call
    /// under the profiler, attached to the row being measured.</summary>
    public static double Median(Action body, BenchContext c)
    {
        double median = Median(body, c.Reps, c.Warmup);
        if (c.Profile)
        {
            Profiler.Start();
            body();
            _lastProfile = Profiler.Stop();
        }
        return median;
    }

    /// <summary>Median wall time of reps calls after warm-up calls (the fastest goes to the row being measured).</summary>
    public static double Median(Action body, int reps, int warmup)
    {
        var (median, min) = Time(body, reps, warmup);
        _lastMin = min;
        return median;
    }

    /// <summary>Median and fastest wall time of reps calls after warm-up calls.</summary>
    public static (double Median, double Min) Time(Action body, int reps, int warmup)
    {
        for (int i = 0; i < warmup; i++) body();
        var times = new double[reps];
        for (int i = 0; i < reps; i++)
        {
            var sw = Stopwatch.StartNew();
            body();
            times[i] = sw.Elapsed.TotalSeconds;
        }
        Array.Sort(times);
        return (times[reps / 2], times[0]);
    }

    private static BenchRow Gemm1024(BenchContext c)
    {
        const int n = 1024;
        var rng = new Random(0);
        float[] a = Fill(n * n, rng), b = Fill(n * n, rng), d = new float[n * n];
        double sec = Median(() => Gemm.MultiplyParallel(false, false, n, n, n, a, n, b, n, d, n), c);
        return new BenchRow("gemm_1024", sec, 2.0 * n * n * n / sec / 1e9);
    }

    private static BenchRow Conv(BenchContext c, bool backward)
    {
        var g = new Conv2dGeometry(c.Batch, 128, 32, 32, 128, 3, 3, 1, 1, 1, 1);
        var rng = new Random(0);
        float[] x = Fill(c.Batch * 128 * 1024, rng), w = Fill(128 * 128 * 9, rng), y = new float[x.Length];
        float[] gx = new float[x.Length], gw = new float[w.Length];
        double flop = 2.0 * c.Batch * 128 * 128 * 9 * 1024;
        double sec = Median(() =>
        {
            Conv2dKernels.Forward(g, x, w, null, y);
            if (backward)
            {
                Conv2dKernels.BackwardData(g, y, w, gx);
                Conv2dKernels.BackwardWeight(g, y, x, gw, null);
            }
        }, c);
        return new BenchRow(backward ? "conv3x3_128_32x32_fwdbwd" : "conv3x3_128_32x32", sec, (backward ? 3 : 1) * flop / sec / 1e9);
    }

    private static BenchRow TrainStep(BenchContext c, string model)
    {
        var spec = new ModelSpec(model, 3, 32, 32, 10, 1f, ActivationSpec.Qcfs());
        var net = ModelFactory.Create(spec);
        var opt = new Sgd(net.NamedParameters(), 0.9f, 5e-4f);
        var rng = new Random(0);
        var x = new Tensor(Fill(c.Batch * 3 * 32 * 32, rng), c.Batch, 3, 32, 32);
        var labels = Enumerable.Range(0, c.Batch).Select(i => rng.Next(10)).ToArray();
        long macs;
        using (var counter = OpCounter.Start())
        {
            net.Forward(new Variable(x));
            macs = counter.TotalMacs;
        }
        var arena = new TensorArena();
        double sec = Median(() =>
        {
            using var scope = arena.Activate();
            using var tape = Tape.Start();
            var loss = CrossEntropyOp.Forward(net.Forward(new Variable(x)), labels);
            tape.Backward(loss);
            using (Profiler.Measure("sgd step + zero grad", x))
            {
                opt.Step(0.01f);
                net.ZeroGrad();
            }
        }, c);
        // Forward + backward ≈ 3× the forward MACs, 2 FLOP per MAC.
        return new BenchRow($"train_{model}", sec, 3.0 * 2 * macs / sec / 1e9, c.Batch / sec);
    }

    /// <summary>The QCFS network of the inference rows (λ = 1, seeded weights, eval mode) and a batch of inputs; the
    /// ONNX Runtime comparison (bench/SpikeSharp.OrtBench) exports and runs this same network.</summary>
    public static (Module Net, Tensor Input) InferenceNetwork(string model, int batch)
    {
        var spec = new ModelSpec(model, 3, 32, 32, 10, 1f, ActivationSpec.Qcfs(4, 1f));
        var net = ModelFactory.Create(spec);
        net.Eval();
        var x = new Tensor(Fill(batch * 3 * 32 * 32, new Random(0)), batch, 3, 32, 32);
        return (net, x);
    }

    private static BenchRow AnnInference(BenchContext c, string model)
    {
        var (net, x) = InferenceNetwork(model, c.Batch);
        long macs;
        using (var counter = OpCounter.Start())
        {
            net.Forward(new Variable(Simulator.Rows(x, 0, 1)));
            macs = counter.TotalMacs;
        }
        BatchNormFolding.Fold(net); // as ONNX Runtime fuses BN into the convolutions
        var arena = new TensorArena { ReleaseIntermediates = true };
        double sec = Median(() =>
        {
            using var scope = arena.Activate();
            net.Forward(new Variable(x));
        }, c);
        return new BenchRow($"ann_{model}", sec, 2.0 * macs * c.Batch / sec / 1e9, c.Batch / sec,
            "random weights, λ = 1; GFLOP/s counts the dense work, but all-zero input channels (QCFS outputs) are skipped, so it can exceed the peak");
    }

    /// <summary>A converted QCFS network (θ = λ = 1 like the baseline's IfLayer) simulating a whole batch for T steps.
    /// GFLOP/s counts the dense work a non-spiking implementation would do (first layer once, the rest T times).</summary>
    private static BenchRow SnnInference(BenchContext c, string model, int steps)
    {
        var spec = new ModelSpec(model, 3, 32, 32, 10, 1f, ActivationSpec.Qcfs(4, 1f));
        var net = ModelFactory.Create(spec);
        var rng = new Random(0);
        var x = new Tensor(Fill(c.Batch * 3 * 32 * 32, rng), c.Batch, 3, 32, 32);
        long macs;
        using (var counter = OpCounter.Start())
        {
            net.Eval();
            net.Forward(new Variable(new Tensor(1, 3, 32, 32)));
            macs = counter.TotalMacs;
        }
        // BN folded into the convolutions: one pass less over every [T·B, C, H, W] tensor (the baseline applies BN per step).
        var snn = Converter.Convert(net, new ConversionOptions(FoldBatchNorm: true));
        long spikes = 0, neurons = 0;
        var monitors = snn.Neurons.Select(n => n.Attach((_, counts, y) => { spikes += counts.Sum(); neurons += y.Length; })).ToList();
        var arena = new TensorArena { ReleaseIntermediates = true };
        // As the simulator does: the batch in chunks of Simulator.DefaultMaxRows rows (T·images), one after another.
        int chunk = Math.Max(1, Simulator.DefaultMaxRows / steps);
        var chunks = Enumerable.Range(0, (c.Batch + chunk - 1) / chunk)
            .Select(i => Simulator.Rows(x, i * chunk, Math.Min(chunk, c.Batch - i * chunk))).ToList();
        void RunBatch()
        {
            foreach (var part in chunks)
            {
                using var scope = arena.Activate();
                snn.Configure(part.Shape[0], steps);
                snn.Run(part, steps);
            }
        }
        RunBatch();
        foreach (var m in monitors) m.Dispose();
        double sec = Median(RunBatch, c);
        // Silent input channels are skipped, so the time depends on the firing rate: say what it was.
        return new BenchRow($"snn_{model}_T{steps}", sec, 2.0 * macs * steps * c.Batch / sec / 1e9, c.Batch / sec,
            $"mean firing rate {(double)spikes / neurons:0.0000} (random weights, θ = 1, like the baseline; BN folded); GFLOP/s counts the dense work; " +
            $"activations and potentials: {arena.Bytes >> 20} MiB");
    }

    /// <summary>What <c>evaluate --method qcfs --timesteps 1,…,32</c> does per image, end to end (loading and padding
    /// 28×28 images, chunking, simulation, accuracy by t, spike and SOP counting), on a seeded random QCFS ResNet-20
    /// checkpoint and random images; seconds are per batch, the note says which share the network's simulation took.</summary>
    private static BenchRow EvaluateResNet20(BenchContext c)
    {
        const int images = 256;
        string dir = Path.Combine(Path.GetTempPath(), $"spikesharp-bench-eval-{Environment.ProcessId}");
        try
        {
            var spec = new ModelSpec("resnet20", 1, 32, 32, 10, 1f, ActivationSpec.Qcfs(4, 1f));
            var model = ModelFactory.Create(spec);
            var norm = Data.Datasets.DefaultNormalization("fashion-mnist");
            new Interop.Checkpoint(spec, new Interop.DataInfo("fashion-mnist", norm.Mean, norm.Std), model).Save(dir);
            var rng = new Random(1);
            var pixels = new byte[images * 28 * 28];
            rng.NextBytes(pixels);
            var test = new Data.ImageDataset("fashion-mnist", pixels, Enumerable.Range(0, images).Select(i => i % 10).ToArray(), 1, 28, 28, 10);
            var evaluator = new ConversionEvaluator { CheckpointDir = dir, Test = test, BatchSize = c.Batch };
            Reporting.SnnReport? last = null;
            var times = new List<double>();
            for (int i = 0; i < c.Warmup + c.Reps; i++)
            {
                last = evaluator.Run([new Conversion.Methods.QcfsConversion()], [1, 2, 4, 8, 16, 32]).Snn[0];
                if (i >= c.Warmup) times.Add(last.Time.WallSeconds);
            }
            times.Sort();
            _lastMin = times[0] / images * c.Batch;
            double sec = times[times.Count / 2];
            return new BenchRow("evaluate_resnet20", sec / images * c.Batch, ImagesPerSecond: images / sec,
                Note: $"{last!.Time.SimulateFraction * 100:0.0} % of the loop in the network's simulation; mean firing rate {last.FiringRateByT[32]:0.0000} (random weights, λ = 1); seconds are per batch of {c.Batch}");
        }
        finally
        {
            try { Directory.Delete(dir, true); } catch (IOException) { }
        }
    }

    /// <summary>One epoch of a DataLoader over JPEGs of ImageNet's typical size (written once into a temporary
    /// folder with Skia's encoder, quality 90), evaluation transform at 224: the loader's images/s on its decode threads.</summary>
    private static BenchRow DecodeImageFolder(BenchContext c)
    {
        const int images = 256;
        string root = Path.Combine(Path.GetTempPath(), "spikesharp-bench-jpeg-500x375");
        string classDir = Path.Combine(root, "val", "a");
        if (!Directory.Exists(classDir) || Directory.GetFiles(classDir).Length != images)
        {
            Directory.CreateDirectory(classDir);
            var rng = new Random(3);
            using var bitmap = new SkiaSharp.SKBitmap(500, 375);
            for (int i = 0; i < images; i++)
            {
                for (int y = 0; y < 375; y++)
                    for (int x = 0; x < 500; x++)
                        bitmap.SetPixel(x, y, new SkiaSharp.SKColor((byte)(x / 2 + rng.Next(24)), (byte)(y / 2 + i), (byte)((x ^ y) & 255)));
                using var data = SkiaSharp.SKImage.FromBitmap(bitmap).Encode(SkiaSharp.SKEncodedImageFormat.Jpeg, 90);
                File.WriteAllBytes(Path.Combine(classDir, $"{i:D4}.jpg"), data.ToArray());
            }
        }
        var set = Data.Datasets.Load(Data.Datasets.ImageFolderName, root, train: false);
        var transform = Data.TransformSpec.ForEval(3, 224, 224, Data.Datasets.DefaultNormalization(Data.Datasets.ImageFolderName));
        using var loader = new Data.DataLoader(set, Math.Min(c.Batch, images), transform, shuffle: false, train: false, seed: 0);
        double sec = Median(() => { foreach (var _ in loader.Epoch(0)) { } }, c with { Profile = false });
        return new BenchRow("decode_imagefolder", sec / images * c.Batch, ImagesPerSecond: images / sec,
            Note: $"{set.ReadWorkers} decode threads; seconds are per batch of {c.Batch}");
    }

    private static float[] Fill(int n, Random rng)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = rng.NextSingle() - 0.5f;
        return a;
    }
}
