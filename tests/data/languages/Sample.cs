namespace Python.Runtime;

using System;

/// <summary>
/// Converts between Python and CLR objects.
/// </summary>
[SuppressUnmanagedCodeSecurity]
internal static class Converter
{
    /// <summary>Return a managed object for a Python one.</summary>
    internal static bool ToManaged(BorrowedReference value, Type type, out object? result)
    {
        int Local(int x) => x + 1;
        result = null;
        return Local(1) > 0;
    }

    private struct Pending { public int Count; }

    ~Converter() { }
}

public interface IPyDisposable { void Dispose(); }

public enum Mode { Strict, Lenient }

namespace Nested.Space
{
    public record Point(int X, int Y);
}
