// A restricted pickle virtual machine: the subset of protocols 2-5 that torch.save emits for state dicts. It is not a
// general unpickler: it never imports or runs anything; globals and calls go to an IPickleHost that allows a short list.
using System.Buffers.Binary;
using System.Numerics;
using System.Text;

namespace SpikeSharp.Interop.Pth;

/// <summary>A global (<c>module.name</c>) the host allowed; the VM passes it back to the host to call.</summary>
internal sealed record PyGlobal(string Module, string Name)
{
    public override string ToString() => $"{Module}.{Name}";
}

/// <summary>A problem the host reports; the VM rethrows it with the file and the opcode's offset.</summary>
internal sealed class PickleError(string message) : Exception(message);

/// <summary>What a pickle may do beyond building plain values: every entry point may refuse with <see cref="PickleError"/>.</summary>
internal interface IPickleHost
{
    /// <summary>Resolves GLOBAL/STACK_GLOBAL; anything not allow-listed must throw.</summary>
    PyGlobal Global(string module, string name);

    /// <summary>REDUCE and NEWOBJ: calls an allowed global with a tuple of arguments.</summary>
    object Reduce(PyGlobal callable, object?[] args);

    /// <summary>BINPERSID: torch's storage references.</summary>
    object PersistentLoad(object? pid);

    /// <summary>BUILD: sets state on an object the host created.</summary>
    void Build(object? target, object? state);
}

/// <summary>
/// Runs a pickle over plain .NET values: None → null, bool, int → long, float → double, str → string,
/// tuple → <c>object?[]</c>, list → <c>List&lt;object?&gt;</c>, dict → <c>OrderedDictionary&lt;object, object?&gt;</c>.
/// Every length, index and depth is checked against the bytes that remain, so a forged file cannot make it allocate
/// more than a small multiple of the pickle's size; every failure is an <see cref="InvalidFileException"/> naming the
/// byte offset and the opcode.
/// </summary>
internal sealed class Unpickler
{
    /// <summary>The most values a pickle may push or memoize. A state dict pushes about 25 per tensor, so this allows
    /// ~150 000 tensors while bounding what a forged pickle of 1-byte opcodes can make us allocate (~100 MB).</summary>
    public const int MaxValues = 1 << 22;

    private readonly string _path;
    private readonly byte[] _data;
    private readonly IPickleHost _host;
    private readonly List<object?> _stack = [];
    private readonly List<int> _marks = [];
    private readonly Dictionary<long, object?> _memo = [];
    private readonly string _label;
    private int _pos, _pushes;
    private int _opOffset;
    private byte _op;

    private static readonly object BoxedTrue = true, BoxedFalse = false;
    private static readonly UTF8Encoding StrictUtf8 = new(false, throwOnInvalidBytes: true);

    private Unpickler(string path, byte[] data, IPickleHost host, int start, string label) =>
        (_path, _data, _host, _pos, _label) = (path, data, host, start, label);

    /// <summary>Runs <paramref name="data"/> to its STOP opcode and returns the value it leaves.</summary>
    public static object? Load(string path, byte[] data, IPickleHost host)
    {
        int position = 0;
        return Load(path, data, host, ref position, "data.pkl");
    }

    /// <summary>Runs one pickle starting at <paramref name="position"/> (legacy files hold several in a row) and leaves
    /// <paramref name="position"/> just after its STOP; <paramref name="label"/> names the bytes in messages.</summary>
    public static object? Load(string path, byte[] data, IPickleHost host, ref int position, string label)
    {
        var vm = new Unpickler(path, data, host, position, label);
        var value = vm.Run();
        position = vm._pos;
        return value;
    }

    private object? Run()
    {
        while (true)
        {
            if (_pos >= _data.Length) throw Fail($"pickle ends at byte {_data.Length} without a STOP opcode (truncated {_label}?)", atEnd: true);
            _opOffset = _pos;
            _op = _data[_pos++];
            try
            {
                if (Step()) break;
            }
            catch (PickleError e)
            {
                throw Fail(e.Message);
            }
        }
        if (_stack.Count != 1 || _marks.Count != 0)
            throw Fail($"STOP leaves {_stack.Count} values and {_marks.Count} open marks; expected exactly one value");
        return _stack[0];
    }

    /// <summary>Executes the opcode at <see cref="_opOffset"/>; true on STOP.</summary>
    private bool Step()
    {
        switch (_op)
        {
            case 0x80: // PROTO
                int proto = ReadByte();
                if (proto is < 2 or > 5) throw Fail($"pickle protocol {proto}; expected 2 to 5");
                break;
            case 0x95: // FRAME: a length hint for buffered readers; the whole pickle is in memory already
                long frame = (long)ReadU64();
                if (frame > _data.Length - _pos) throw Fail($"frame of {frame} bytes but only {_data.Length - _pos} remain");
                break;
            case (byte)'}': Push(new OrderedDictionary<object, object?>()); break;          // EMPTY_DICT
            case (byte)']': Push(new List<object?>()); break;                               // EMPTY_LIST
            case (byte)')': Push(Array.Empty<object?>()); break;                            // EMPTY_TUPLE
            case (byte)'(': CountValue(); _marks.Add(_stack.Count); break;                  // MARK
            case (byte)'X': Push(ReadString(ReadU32())); break;                             // BINUNICODE
            case 0x8c: Push(ReadString(ReadByte())); break;                                 // SHORT_BINUNICODE
            case 0x8d: Push(ReadString(ReadU64())); break;                                  // BINUNICODE8
            case (byte)'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(Take(4))); break; // BININT
            case (byte)'K': Push((long)ReadByte()); break;                                  // BININT1
            case (byte)'M': Push((long)BinaryPrimitives.ReadUInt16LittleEndian(Take(2))); break; // BININT2
            case 0x8a: Push(ReadLong1()); break;                                            // LONG1
            case (byte)'G': Push(BinaryPrimitives.ReadDoubleBigEndian(Take(8))); break;     // BINFLOAT
            case 0x88: Push(BoxedTrue); break;                                              // NEWTRUE
            case 0x89: Push(BoxedFalse); break;                                             // NEWFALSE
            case (byte)'N': Push(null); break;                                              // NONE
            case (byte)'t': Push(PopMark().ToArray()); break;                               // TUPLE
            case 0x85: Push(PopN(1)); break;                                                // TUPLE1
            case 0x86: Push(PopN(2)); break;                                                // TUPLE2
            case 0x87: Push(PopN(3)); break;                                                // TUPLE3
            case (byte)'s': // SETITEM
            {
                var kv = PopN(2);
                SetItems(Peek(), kv);
                break;
            }
            case (byte)'u': // SETITEMS
            {
                var items = PopMark();
                if (items.Count % 2 != 0) throw Fail($"SETITEMS has {items.Count} values after MARK; expected key/value pairs");
                SetItems(Peek(), items);
                break;
            }
            case (byte)'a': // APPEND
            {
                var value = Pop();
                AsList(Peek()).Add(value);
                break;
            }
            case (byte)'e': // APPENDS
            {
                var items = PopMark();
                AsList(Peek()).AddRange(items);
                break;
            }
            case (byte)'q': Memoize(ReadByte()); break;               // BINPUT
            case (byte)'r': Memoize(ReadU32()); break;                // LONG_BINPUT
            case 0x94: Memoize(_memo.Count); break;                   // MEMOIZE
            case (byte)'h': Push(Recall(ReadByte())); break;          // BINGET
            case (byte)'j': Push(Recall(ReadU32())); break;           // LONG_BINGET
            case (byte)'c': // GLOBAL: "module\nname\n"
            {
                string module = ReadLine(), name = ReadLine();
                Push(_host.Global(module, name));
                break;
            }
            case 0x93: // STACK_GLOBAL
            {
                var mn = PopN(2);
                if (mn[0] is not string module || mn[1] is not string name)
                    throw Fail($"STACK_GLOBAL needs two strings; got {Describe(mn[0])} and {Describe(mn[1])}");
                Push(_host.Global(module, name));
                break;
            }
            case (byte)'R': // REDUCE
            case 0x81: // NEWOBJ: cls.__new__(cls, *args); for the allowed classes the same as calling them
            {
                var fa = PopN(2);
                if (fa[0] is not PyGlobal f) throw Fail($"{OpName(_op)} calls {Describe(fa[0])}; expected an allowed global");
                if (fa[1] is not object?[] args) throw Fail($"{OpName(_op)} arguments are {Describe(fa[1])}; expected a tuple");
                Push(_host.Reduce(f, args));
                break;
            }
            case (byte)'b': // BUILD
            {
                var state = Pop();
                _host.Build(Peek(), state);
                break;
            }
            case (byte)'Q': Push(_host.PersistentLoad(Pop())); break; // BINPERSID
            case (byte)'.': return true;                             // STOP
            default:
                throw Fail($"opcode 0x{_op:X2} ({OpName(_op)}) is not supported; only state dicts saved with torch.save(model.state_dict(), path) can be read");
        }
        return false;
    }

    // ---------------------------------------------------------------- stack and memo

    private void Push(object? value)
    {
        CountValue();
        _stack.Add(value);
    }

    /// <summary>Counts a pushed value or mark against <see cref="MaxValues"/>.</summary>
    private void CountValue()
    {
        if (++_pushes > MaxValues) throw Fail($"pickle pushes more than {MaxValues} values; a state dict needs far fewer");
    }

    private void Memoize(long index)
    {
        var value = Peek();
        if (_memo.Count >= MaxValues && !_memo.ContainsKey(index)) throw Fail($"pickle memoizes more than {MaxValues} values; a state dict needs far fewer");
        _memo[index] = value;
    }

    private object? Peek() => _stack.Count > Floor ? _stack[^1] : throw Fail(EmptyStack(1));

    private object? Pop()
    {
        if (_stack.Count <= Floor) throw Fail(EmptyStack(1));
        var v = _stack[^1];
        _stack.RemoveAt(_stack.Count - 1);
        return v;
    }

    /// <summary>Pops the top <paramref name="n"/> values (oldest first), never reaching below the innermost MARK.</summary>
    private object?[] PopN(int n)
    {
        if (_stack.Count - Floor < n) throw Fail(EmptyStack(n));
        var items = _stack.GetRange(_stack.Count - n, n).ToArray();
        _stack.RemoveRange(_stack.Count - n, n);
        return items;
    }

    /// <summary>Pops everything above the innermost MARK, and the mark.</summary>
    private List<object?> PopMark()
    {
        if (_marks.Count == 0) throw Fail($"{OpName(_op)} without a preceding MARK");
        int mark = _marks[^1];
        _marks.RemoveAt(_marks.Count - 1);
        var items = _stack.GetRange(mark, _stack.Count - mark);
        _stack.RemoveRange(mark, _stack.Count - mark);
        return items;
    }

    private int Floor => _marks.Count > 0 ? _marks[^1] : 0;

    private string EmptyStack(int n) => $"{OpName(_op)} needs {n} value(s) on the stack above the last MARK but finds {_stack.Count - Floor}";

    private object? Recall(long index) =>
        _memo.TryGetValue(index, out var v) ? v : throw Fail($"memo index {index} was never stored (BINPUT/MEMOIZE)");

    private void SetItems(object? target, IReadOnlyList<object?> kv)
    {
        if (target is not OrderedDictionary<object, object?> dict) throw Fail($"{OpName(_op)} on {Describe(target)}; expected a dict");
        for (int i = 0; i < kv.Count; i += 2)
        {
            object key = kv[i] switch
            {
                string or long or bool or double => kv[i]!,
                var k => throw Fail($"dict key {Describe(k)} is not supported; expected a string or number"),
            };
            dict[key] = kv[i + 1];
        }
    }

    private List<object?> AsList(object? target) =>
        target as List<object?> ?? throw Fail($"{OpName(_op)} on {Describe(target)}; expected a list");

    // ---------------------------------------------------------------- reading

    private ReadOnlySpan<byte> Take(long n)
    {
        if (n > _data.Length - _pos) throw Fail($"{OpName(_op)} needs {n} more bytes but only {_data.Length - _pos} remain (truncated data.pkl?)");
        var span = _data.AsSpan(_pos, (int)n);
        _pos += (int)n;
        return span;
    }

    private byte ReadByte() => Take(1)[0];
    private uint ReadU32() => BinaryPrimitives.ReadUInt32LittleEndian(Take(4));
    private ulong ReadU64() => BinaryPrimitives.ReadUInt64LittleEndian(Take(8));

    private string ReadString(ulong length)
    {
        if (length > (ulong)(_data.Length - _pos))
            throw Fail($"{OpName(_op)} string length {length} exceeds the {_data.Length - _pos} bytes that remain");
        var bytes = Take((long)length);
        try { return StrictUtf8.GetString(bytes); }
        catch (DecoderFallbackException) { throw Fail($"{OpName(_op)} string of {length} bytes is not valid UTF-8"); }
    }

    /// <summary>LONG1: a little-endian two's-complement integer; n ≤ 8 bytes gives a long, up to 16 a BigInteger (the
    /// legacy format's magic number is 10 bytes).</summary>
    private object ReadLong1()
    {
        int n = ReadByte();
        if (n > 16) throw Fail($"LONG1 integer of {n} bytes; expected at most 16");
        var bytes = Take(n);
        if (n > 8) return new BigInteger(bytes, isUnsigned: false, isBigEndian: false);
        long v = 0;
        for (int i = n - 1; i >= 0; i--) v = (v << 8) | bytes[i];
        if (n is > 0 and < 8 && (bytes[n - 1] & 0x80) != 0) v -= 1L << (8 * n); // sign-extend
        return v;
    }

    /// <summary>One GLOBAL operand line: printable ASCII up to '\n', at most 256 bytes.</summary>
    private string ReadLine()
    {
        int end = Array.IndexOf(_data, (byte)'\n', _pos, Math.Min(257, _data.Length - _pos));
        if (end < 0) throw Fail("GLOBAL operand has no newline within 256 bytes");
        for (int i = _pos; i < end; i++)
            if (_data[i] is < 0x20 or > 0x7E) throw Fail($"GLOBAL operand holds byte 0x{_data[i]:X2}; expected printable ASCII");
        string s = Encoding.ASCII.GetString(_data, _pos, end - _pos);
        _pos = end + 1;
        return s;
    }

    // ---------------------------------------------------------------- errors

    private InvalidFileException Fail(string problem, bool atEnd = false) =>
        new(_path, $"{_label} offset {(atEnd ? _data.Length : _opOffset)}: {problem}");

    /// <summary>A short, non-recursive description of a value for error messages.</summary>
    internal static string Describe(object? v) => v switch
    {
        null => "None",
        string s => s.Length <= 40 ? $"'{s}'" : $"'{s[..37]}…'",
        long or double or bool => $"{v}",
        object?[] t => $"a tuple of {t.Length}",
        List<object?> l => $"a list of {l.Count}",
        OrderedDictionary<object, object?> d => $"a dict of {d.Count}",
        PyGlobal g => g.ToString(),
        _ => v.GetType().Name,
    };

    /// <summary>The pickletools name of an opcode byte, for messages.</summary>
    internal static string OpName(byte op) => op switch
    {
        0x80 => "PROTO", 0x95 => "FRAME", (byte)'}' => "EMPTY_DICT", (byte)']' => "EMPTY_LIST", (byte)')' => "EMPTY_TUPLE",
        (byte)'(' => "MARK", (byte)'X' => "BINUNICODE", 0x8c => "SHORT_BINUNICODE", 0x8d => "BINUNICODE8",
        (byte)'J' => "BININT", (byte)'K' => "BININT1", (byte)'M' => "BININT2", 0x8a => "LONG1", (byte)'G' => "BINFLOAT",
        0x88 => "NEWTRUE", 0x89 => "NEWFALSE", (byte)'N' => "NONE", (byte)'t' => "TUPLE", 0x85 => "TUPLE1", 0x86 => "TUPLE2",
        0x87 => "TUPLE3", (byte)'s' => "SETITEM", (byte)'u' => "SETITEMS", (byte)'a' => "APPEND", (byte)'e' => "APPENDS",
        (byte)'q' => "BINPUT", (byte)'r' => "LONG_BINPUT", 0x94 => "MEMOIZE", (byte)'h' => "BINGET", (byte)'j' => "LONG_BINGET",
        (byte)'c' => "GLOBAL", 0x93 => "STACK_GLOBAL", (byte)'R' => "REDUCE", 0x81 => "NEWOBJ", (byte)'b' => "BUILD",
        (byte)'Q' => "BINPERSID", (byte)'.' => "STOP",
        // Known but refused: named so the user sees what the file tried.
        (byte)'i' => "INST", (byte)'o' => "OBJ", 0x82 => "EXT1", 0x83 => "EXT2", 0x84 => "EXT4", (byte)'P' => "PERSID",
        (byte)'I' => "INT", (byte)'L' => "LONG", 0x8b => "LONG4", (byte)'F' => "FLOAT", (byte)'S' => "STRING",
        (byte)'T' => "BINSTRING", (byte)'U' => "SHORT_BINSTRING", (byte)'V' => "UNICODE", (byte)'B' => "BINBYTES",
        (byte)'C' => "SHORT_BINBYTES", 0x8e => "BINBYTES8", 0x8f => "EMPTY_SET", 0x90 => "ADDITEMS", 0x91 => "FROZENSET",
        0x92 => "NEWOBJ_EX", 0x96 => "BYTEARRAY8", 0x97 => "NEXT_BUFFER", 0x98 => "READONLY_BUFFER", (byte)'0' => "POP",
        (byte)'1' => "POP_MARK", (byte)'2' => "DUP", (byte)'d' => "DICT", (byte)'l' => "LIST", (byte)'g' => "GET",
        (byte)'p' => "PUT",
        _ => "unknown opcode",
    };
}
