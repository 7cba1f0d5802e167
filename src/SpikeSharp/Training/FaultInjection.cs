using System.Diagnostics;

namespace SpikeSharp.Training;

/// <summary>
/// Test hook for crash-safety tests: with <c>SPIKESHARP_TEST_KILL=point:epoch</c> (or <c>train-step:epoch.step</c>) set,
/// the process kills itself with SIGKILL (no cleanup, exactly like <c>kill -9</c>) when it reaches that point. Points:
/// <c>train-step</c> (after an optimizer step, mid-epoch), <c>checkpoint-write</c> (last.new/ holds the new model files
/// but not yet the optimizer state) and <c>checkpoint-swap</c> (last/ moved to last.old/, last.new/ not yet moved in).
/// Unset, it costs one cached field read per step. <c>SPIKESHARP_TEST_STEP_DELAY_MS=n</c> sleeps n ms after every
/// training step: it changes no result but gives an outside <c>kill -9</c> time to land mid-run.
/// </summary>
public static class FaultInjection
{
    public const string Variable = "SPIKESHARP_TEST_KILL", StepDelayVariable = "SPIKESHARP_TEST_STEP_DELAY_MS";

    private static readonly string? KillAt = Environment.GetEnvironmentVariable(Variable);
    private static readonly int StepDelayMs = int.TryParse(Environment.GetEnvironmentVariable(StepDelayVariable), out int ms) ? ms : 0;

    /// <summary>After optimizer step <paramref name="step"/> (1-based) of <paramref name="epoch"/> (1-based).</summary>
    public static void AfterStep(int epoch, int step)
    {
        if (StepDelayMs > 0) Thread.Sleep(StepDelayMs);
        if (KillAt != null && KillAt == $"train-step:{epoch}.{step}") Process.GetCurrentProcess().Kill();
    }

    public static void KillIf(string point, int epoch)
    {
        if (epoch > 0 && KillAt != null && KillAt == $"{point}:{epoch}") Process.GetCurrentProcess().Kill();
    }
}
