using Xunit;

namespace SpikeSharp.Tests;

/// <summary>
/// Checks that need something beyond the .NET SDK (Debian's python3 and its packages, root-proof read-only
/// directories). Where it is missing the test is skipped with the reason, so a bare machine passes and the test report
/// says what was not checked; with SPIKESHARP_REQUIRE_TOOLS=1 (set by .ci/run, which installs them all) a missing one
/// fails instead.
/// </summary>
public static class OutsideTool
{
    /// <param name="requiredInCi">false for a tool CI tries to provide but may not (a skip stays a skip there)</param>
    public sealed class Tool(string name, string install, Func<bool> present, bool requiredInCi = true)
    {
        private readonly Lazy<bool> _present = new(present);
        public string Name { get; } = name;
        public string Install { get; } = install;
        public bool Present => _present.Value;
        public bool RequiredInCi { get; } = requiredInCi;
    }

    public static readonly Tool Python3 = new("/usr/bin/python3", "apt-get install python3", () => Runs("-c", "pass"));
    public static readonly Tool H5py = new("h5py", "apt-get install python3-h5py", () => Python3.Present && Runs("-c", "import h5py"));

    /// <summary>bench/SpikeSharp.OrtBench, built: ONNX Runtime in its own process (its package stays out of the solution).</summary>
    public static readonly Tool OnnxRuntime = new("bench/SpikeSharp.OrtBench (ONNX Runtime)", "dotnet build -c Release bench/SpikeSharp.OrtBench",
        () => OrtBenchDll != null, requiredInCi: false);

    /// <summary>The built ONNX Runtime runner, searched above the test binaries.</summary>
    public static string? OrtBenchDll
    {
        get
        {
            for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            {
                string candidate = Path.Combine(d.FullName, "bench", "SpikeSharp.OrtBench", "bin", "Release", "net10.0", "SpikeSharp.OrtBench.dll");
                if (File.Exists(candidate)) return candidate;
            }
            return null;
        }
    }

    private static bool Runs(params string[] pythonArgs)
    {
        try { return TestUtil.Python(pythonArgs).Code == 0; }
        catch (System.ComponentModel.Win32Exception) { return false; } // no /usr/bin/python3, or not executable
    }

    private static bool Required => Environment.GetEnvironmentVariable("SPIKESHARP_REQUIRE_TOOLS") == "1";

    /// <summary>Skips the calling test (or fails it under SPIKESHARP_REQUIRE_TOOLS=1) when <paramref name="tool"/> is missing.</summary>
    public static void Require(Tool tool)
    {
        if (tool.Present) return;
        string reason = $"{tool.Name} is not installed ({tool.Install})";
        if (!tool.RequiredInCi) throw new SkipException(reason);
        Unavailable(reason);
    }

    /// <summary>Skips (or, where tools are required, fails) with <paramref name="reason"/>.</summary>
    public static void Unavailable(string reason)
    {
        Assert.False(Required, $"SPIKESHARP_REQUIRE_TOOLS=1 but {reason}");
        throw new SkipException(reason);
    }

    /// <summary>
    /// Makes <paramref name="dir"/> unwritable until disposed: mode 0555, and where that is not enforced (root ignores
    /// permission bits) the immutable attribute (<c>chattr +i</c>), which binds root too.
    /// </summary>
    public static IDisposable ReadOnlyDirectory(string dir)
    {
        // Not an installable tool: where the machine cannot deny this process a directory, the test skips even in CI.
        if (OperatingSystem.IsWindows()) throw new SkipException("directory permissions are a Unix test");
        File.SetUnixFileMode(dir, UnixFileMode.UserRead | UnixFileMode.UserExecute | UnixFileMode.GroupRead | UnixFileMode.GroupExecute |
            UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
        var restore = new Restore(dir, immutable: false);
        if (!CanCreateFileIn(dir))
            return restore;
        restore.Immutable = Chattr("+i", dir);
        if (restore.Immutable && !CanCreateFileIn(dir)) return restore;
        restore.Dispose();
        throw new SkipException("running as root, and chattr +i is not supported on this file system: no directory is read-only to this process");
    }

    private sealed class Restore(string dir, bool immutable) : IDisposable
    {
        public bool Immutable { get; set; } = immutable;

        public void Dispose()
        {
            if (Immutable) Chattr("-i", dir);
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(dir, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
    }

    private static bool Chattr(string flag, string path)
    {
        try
        {
            var psi = new System.Diagnostics.ProcessStartInfo("chattr", [flag, path]) { RedirectStandardError = true, RedirectStandardOutput = true };
            using var p = System.Diagnostics.Process.Start(psi)!;
            p.WaitForExit();
            return p.ExitCode == 0;
        }
        catch (System.ComponentModel.Win32Exception) { return false; } // no chattr on this machine
    }

    private static bool CanCreateFileIn(string dir)
    {
        try
        {
            using var _ = new FileStream(Path.Combine(dir, ".probe"), FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose);
            return true;
        }
        catch (UnauthorizedAccessException) { return false; }
        catch (IOException) { return false; }
    }
}
