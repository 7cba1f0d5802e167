using SpikeSharp.Tensors;

namespace SpikeSharp.Autograd;

/// <summary>
/// Finite-difference gradient check. The scalar probe loss is L = Σ y·r for a fixed random r, summed in
/// float64; numeric derivatives are central differences (L(x+h) − L(x−h))/2h on sampled elements of each input,
/// compared with the tape's gradients. Float32 forward passes bound the attainable agreement to ~1e-3 relative.
/// NOTE: near a kink (ReLU at 0, a max-pool tie, a clip bound) a central difference is meaningless; an element
/// whose differences at h and h/2 disagree is counted as a kink and skipped. A wrong backward rule still shows
/// up, because there the numeric derivative is stable and differs from the analytic one.
/// The error of an element is |numeric − analytic| / max(|numeric| + |analytic|, a tenth of the largest |numeric|
/// found): relative to the problem's own gradient scale, not an absolute 1 that would pass any small gradient.
/// </summary>
public static class GradCheck
{
    /// <param name="ErrorsPerInput">relative errors of the checked elements, per input</param>
    /// <param name="SampledPerInput">elements sampled per input (checked or skipped at a kink)</param>
    public sealed record Result(double MaxRelativeError, string Worst, int Checked, int SkippedAtKinks, IReadOnlyList<double[]> ErrorsPerInput,
        IReadOnlyList<int> SampledPerInput)
    {
        /// <summary>The smallest, over inputs, fraction of sampled elements that were checked (not skipped at a kink).</summary>
        public double WorstInputFractionChecked =>
            ErrorsPerInput.Select((e, i) => SampledPerInput[i] == 0 ? 1 : e.Length / (double)SampledPerInput[i]).DefaultIfEmpty(0).Min();

        /// <summary>The smallest, over inputs, fraction of checked elements with error below tol.</summary>
        public double WorstInputFractionWithin(double tol) =>
            ErrorsPerInput.Where(e => e.Length > 0).Select(e => e.Count(x => x < tol) / (double)e.Length).DefaultIfEmpty(1).Min();
    }

    public static Result Check(Func<Variable> forward, IReadOnlyList<Variable> inputs, double step = 1e-2,
        int samplesPerInput = 24, int seed = 0)
    {
        var rng = new Random(seed);
        var probe = forward().Value;
        var r = new float[probe.Length];
        for (int i = 0; i < r.Length; i++) r[i] = (float)(rng.NextDouble() * 2 - 1);

        foreach (var v in inputs) v.ZeroGrad();
        using (var tape = Tape.Start())
        {
            var y = forward();
            var loss = new Variable(new Tensor(new[] { 0f }, 1), true);
            // Seed ∂L/∂y = r directly instead of building a dot-product op.
            y.AccumulateGrad(r);
            tape.Backward(loss);
        }

        var found = new List<(int Index, double Numeric)>[inputs.Count];
        var sampled = new int[inputs.Count];
        int kinks = 0;
        for (int vi = 0; vi < inputs.Count; vi++)
        {
            var data = inputs[vi].Value.Data;
            int samples = sampled[vi] = Math.Min(samplesPerInput, data.Length);
            found[vi] = new();
            for (int s = 0; s < samples; s++)
            {
                int i = samples == data.Length ? s : rng.Next(data.Length);
                float orig = data[i];
                double numeric = Central(forward, r, data, i, step);
                double half = Central(forward, r, data, i, step / 2);
                data[i] = orig;
                if (Math.Abs(numeric - half) > 1e-3 * Math.Max(1.0, Math.Abs(numeric))) { kinks++; continue; }
                found[vi].Add((i, numeric));
            }
        }
        // Errors are relative to each element, with a floor of a tenth of the largest derivative found: scaling the
        // probe scales every tolerance with it, and float32 noise in a near-zero derivative does not count as an error.
        double floor = Math.Max(1e-30, 0.1 * found.SelectMany(f => f).Select(f => Math.Abs(f.Numeric)).DefaultIfEmpty(0).Max());
        double worst = 0;
        string where = "";
        int checkedCount = 0;
        var errors = new List<double[]>();
        for (int vi = 0; vi < inputs.Count; vi++)
        {
            var analytic = inputs[vi].Grad?.Data ?? new float[inputs[vi].Value.Data.Length];
            var inputErrors = new List<double>();
            foreach (var (i, numeric) in found[vi])
            {
                checkedCount++;
                double err = Math.Abs(numeric - analytic[i]) / Math.Max(floor, Math.Abs(numeric) + Math.Abs(analytic[i]));
                inputErrors.Add(err);
                if (err > worst) { worst = err; where = $"input {vi} element {i}: numeric {numeric:G6}, analytic {analytic[i]:G6}"; }
            }
            errors.Add(inputErrors.ToArray());
        }
        return new Result(worst, where, checkedCount, kinks, errors, sampled);
    }

    private static double Central(Func<Variable> forward, float[] r, float[] data, int i, double h)
    {
        float orig = data[i];
        data[i] = (float)(orig + h);
        double plus = Probe(forward, r);
        data[i] = (float)(orig - h);
        double minus = Probe(forward, r);
        data[i] = orig;
        return (plus - minus) / (2 * h);
    }

    private static double Probe(Func<Variable> forward, float[] r)
    {
        var y = forward().Value.Data;
        double sum = 0;
        for (int i = 0; i < y.Length; i++) sum += (double)y[i] * r[i];
        return sum;
    }
}
