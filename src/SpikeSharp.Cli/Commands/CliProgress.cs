using Spectre.Console;

namespace SpikeSharp.Cli.Commands;

/// <summary>Progress display for long work: Spectre.Console bars (with ETA) on a terminal; plain lines when output is
/// redirected (logs, CI, pipes: no colour, no control codes); nothing but results with --quiet.</summary>
internal sealed class CliProgress
{
    public enum Mode { Bars, Lines, Quiet }

    public Mode Kind { get; }

    public CliProgress(bool quiet) => Kind = quiet ? Mode.Quiet : CliOptions.Interactive ? Mode.Bars : Mode.Lines;

    /// <summary>Runs work that reports through a <see cref="Tracker"/>; with bars, each task stays on screen with its
    /// final description as the log line.</summary>
    public T Run<T>(Func<Tracker, T> work)
    {
        if (Kind != Mode.Bars) return work(new Tracker(this, null));
        T result = default!;
        AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .Start(ctx => result = work(new Tracker(this, ctx)));
        return result;
    }

    /// <summary>Starts tasks and reports progress and completion.</summary>
    public sealed class Tracker(CliProgress owner, ProgressContext? ctx)
    {
        private ProgressTask? _task;

        public void Begin(string description)
        {
            if (ctx != null) _task = ctx.AddTask(Markup.Escape(description), maxValue: 1);
        }

        public void Update(double fraction, string description)
        {
            if (_task == null) return;
            _task.Value = Math.Clamp(fraction, 0, 1);
            _task.Description = Markup.Escape(description);
        }

        /// <summary>Marks the task done with its summary line (printed as a plain line without bars).</summary>
        public void Done(string summary)
        {
            if (_task != null)
            {
                _task.Value = 1;
                _task.Description = Markup.Escape(summary);
                _task.StopTask();
            }
            else if (owner.Kind == Mode.Lines) Console.WriteLine(summary);
        }

        public void Note(string line)
        {
            if (owner.Kind == Mode.Lines) Console.Error.WriteLine(line);
            else if (owner.Kind == Mode.Bars && ctx?.AddTask(Markup.Escape(line), maxValue: 1) is { } task) { task.Value = 1; task.StopTask(); }
        }
    }
}
