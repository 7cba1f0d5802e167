namespace SpikeSharp;

/// <summary>
/// A user-facing error: bad input file, bad option, shapes that do not fit. The CLI prints its message
/// without a stack trace and exits with code 2. The message names the file or flag, the problem and what was
/// expected.
/// </summary>
public class SpikeSharpException : Exception
{
    public SpikeSharpException(string message) : base(message) { }
    public SpikeSharpException(string message, Exception inner) : base(message, inner) { }
}

/// <summary>A malformed or unreadable input file; the message names the file (and offset where known).</summary>
public sealed class InvalidFileException : SpikeSharpException
{
    public string FilePath { get; }

    public InvalidFileException(string path, string problem) : base($"{path}: {problem}") => FilePath = path;

    public InvalidFileException(string path, string problem, Exception inner) : base($"{path}: {problem}", inner) => FilePath = path;
}
