using SpikeSharp.Autograd;
using SpikeSharp.Tensors;

namespace SpikeSharp.Nn;

/// <summary>Updates parameters from their gradients. State (momentum, Adam moments) is keyed by parameter name
/// so it can be saved with a checkpoint and restored on resume.</summary>
public abstract class Optimizer
{
    protected readonly IReadOnlyList<KeyValuePair<string, Parameter>> Params;
    protected readonly Dictionary<string, Tensor> State = new();

    protected Optimizer(IEnumerable<KeyValuePair<string, Parameter>> parameters) => Params = parameters.ToList();

    /// <summary>Applies one update with learning rate lr; parameters without a gradient are skipped.</summary>
    public abstract void Step(float lr);

    public IEnumerable<KeyValuePair<string, Tensor>> StateDict() => State.OrderBy(kv => kv.Key, StringComparer.Ordinal);

    public void LoadStateDict(IReadOnlyDictionary<string, Tensor> state)
    {
        State.Clear();
        foreach (var (k, v) in state) State[k] = v.Clone();
    }

    protected Tensor Buffer(string key, Tensor like) => State.TryGetValue(key, out var t) ? t : State[key] = new Tensor(like.Shape);
}

/// <summary>SGD with momentum and L2 weight decay, PyTorch semantics: g ← ∇ + wd·p (if the parameter takes
/// decay); b ← μ·b + g (b = g on the first step); p ← p − lr·b.</summary>
public sealed class Sgd(IEnumerable<KeyValuePair<string, Parameter>> parameters, float momentum = 0.9f, float weightDecay = 5e-4f)
    : Optimizer(parameters)
{
    public override void Step(float lr)
    {
        foreach (var (name, p) in Params)
        {
            if (p.Grad == null) continue;
            var w = p.Value.Data;
            var g = p.Grad.Data;
            float wd = p.WeightDecay ? weightDecay : 0f;
            if (wd != 0) TensorPrimitives.MultiplyAdd(w, wd, g, g);
            if (momentum != 0)
            {
                bool first = !State.ContainsKey(name + ".momentum");
                var b = Buffer(name + ".momentum", p.Value).Data;
                if (first) g.AsSpan().CopyTo(b);
                else TensorPrimitives.MultiplyAdd(b, momentum, g, b);
                g = b;
            }
            TensorPrimitives.MultiplyAdd(g, -lr, w, w);
        }
    }
}

/// <summary>Adam (PyTorch semantics, L2 decay added to the gradient): m ← β1·m + (1−β1)·g, v ← β2·v + (1−β2)·g²,
/// p ← p − lr·m̂/(√v̂ + ε) with bias-corrected m̂, v̂.</summary>
public sealed class Adam(IEnumerable<KeyValuePair<string, Parameter>> parameters, float beta1 = 0.9f, float beta2 = 0.999f,
    float eps = 1e-8f, float weightDecay = 0f) : Optimizer(parameters)
{
    public override void Step(float lr)
    {
        foreach (var (name, p) in Params)
        {
            if (p.Grad == null) continue;
            var w = p.Value.Data;
            var g = p.Grad.Data;
            if (weightDecay != 0 && p.WeightDecay) TensorPrimitives.MultiplyAdd(w, weightDecay, g, g);
            var m = Buffer(name + ".exp_avg", p.Value).Data;
            var v = Buffer(name + ".exp_avg_sq", p.Value).Data;
            var stepT = State.TryGetValue(name + ".step", out var st) ? st : State[name + ".step"] = new Tensor(1);
            float t = ++stepT.Data[0];
            float c1 = 1 - MathF.Pow(beta1, t), c2 = 1 - MathF.Pow(beta2, t);
            for (int i = 0; i < w.Length; i++)
            {
                m[i] = beta1 * m[i] + (1 - beta1) * g[i];
                v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
                w[i] -= lr * (m[i] / c1) / (MathF.Sqrt(v[i] / c2) + eps);
            }
        }
    }
}

/// <summary>Learning rate per epoch: cosine annealing to 0 over all epochs (PyTorch CosineAnnealingLR stepped per
/// epoch) or step decay by γ every k epochs.</summary>
public sealed record LrSchedule(string Kind = "cosine", int StepSize = 30, float Gamma = 0.1f)
{
    public static readonly string[] Kinds = ["cosine", "step", "constant"];

    public float At(float baseLr, int epoch, int epochs) => Kind switch
    {
        "cosine" => baseLr * 0.5f * (1 + MathF.Cos(MathF.PI * epoch / Math.Max(1, epochs))),
        "step" => baseLr * MathF.Pow(Gamma, epoch / Math.Max(1, StepSize)),
        "constant" => baseLr,
        _ => throw new SpikeSharpException($"unknown LR schedule '{Kind}'; expected one of {string.Join(", ", Kinds)}"),
    };
}
