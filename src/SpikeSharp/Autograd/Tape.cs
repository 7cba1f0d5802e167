namespace SpikeSharp.Autograd;

/// <summary>
/// Records backward rules while a forward pass runs and replays them in reverse. Ops call
/// <see cref="Record"/> only when <see cref="IsRecording(Variable)"/> says some input needs a gradient; without an
/// active tape (inference) nothing is saved for backward. One tape is active per thread.
/// </summary>
public sealed class Tape : IDisposable
{
    [ThreadStatic] private static Tape? t_current;

    private readonly List<Action> _backward = new();
    private readonly Tape? _previous;
    private bool _disposed;

    private Tape(Tape? previous) => _previous = previous;

    /// <summary>Starts recording on this thread until the returned tape is disposed.</summary>
    public static Tape Start() => t_current = new Tape(t_current);

    public static Tape? Current => t_current;

    /// <summary>True if a tape is active and at least one input requires a gradient.</summary>
    public static bool IsRecording(Variable a) => t_current != null && a.RequiresGrad;

    public static bool IsRecording(Variable a, Variable? b, Variable? c = null) =>
        t_current != null && (a.RequiresGrad || (b?.RequiresGrad ?? false) || (c?.RequiresGrad ?? false));

    /// <summary>Adds a backward rule; it runs after every rule recorded later.</summary>
    public static void Record(Action backward) =>
        (t_current ?? throw new InvalidOperationException("no tape is recording")).
            _backward.Add(backward);

    /// <summary>Seeds ∂loss/∂loss = 1 (loss must be a scalar) and runs the recorded rules in reverse.</summary>
    public void Backward(Variable loss)
    {
        if (loss.Value.Length != 1) throw new ArgumentException($"backward needs a scalar loss, got {loss.Value.ShapeString}");
        loss.GradBuffer().Data[0] += 1f;
        for (int i = _backward.Count - 1; i >= 0; i--) _backward[i]();
        _backward.Clear();
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        if (t_current == this) t_current = _previous;
    }
}
