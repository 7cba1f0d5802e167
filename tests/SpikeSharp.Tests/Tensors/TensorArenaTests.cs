using SpikeSharp.Tensors;
using Xunit;

namespace SpikeSharp.Tests.Tensors;

public class TensorArenaTests
{
    [Fact]
    public void ScratchReusesArraysAfterTheScopeEnds()
    {
        var arena = new TensorArena();
        float[] first;
        using (arena.Activate()) first = Tensor.Scratch(4, 5).Data;
        Assert.Null(TensorArena.Active);
        using (arena.Activate())
        {
            Assert.Same(first, Tensor.Scratch(20).Data);
            Assert.NotSame(first, Tensor.Scratch(20).Data);
        }
        Assert.Equal(2 * 20 * 4, arena.Bytes);
    }

    [Fact]
    public void ClearedScratchIsZeroEvenWhenReused()
    {
        var arena = new TensorArena();
        using (arena.Activate()) Array.Fill(Tensor.Scratch(8).Data, 3f);
        using (arena.Activate()) Assert.All(Tensor.Scratch([8], clear: true).Data, v => Assert.Equal(0f, v));
    }

    [Fact]
    public void WithoutAnArenaScratchAllocates()
    {
        Assert.Null(TensorArena.Active);
        Assert.NotSame(Tensor.Scratch(3).Data, Tensor.Scratch(3).Data);
    }

    [Fact]
    public void NestedActivationIsRejected()
    {
        var a = new TensorArena();
        using (a.Activate()) Assert.Throws<InvalidOperationException>(() => new TensorArena().Activate());
    }
}
