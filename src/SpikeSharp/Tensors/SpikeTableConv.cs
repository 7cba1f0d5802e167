using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace SpikeSharp.Tensors;

/// <summary>
/// Convolution of spikes by table lookup. After an IF layer every input is 0 or one amplitude a (the threshold θ), so
/// the b input channels of a group (4 to 8) can only add one of 2^b sums of a·w to a 16-channel block of outputs. A
/// table holds those sums for every (output block, tap, group j): T[pattern] = Σ_{bit i of pattern} a·w[·, b·j + i,
/// tap]. Each output pixel then takes one 16-float row per (tap, group), one vector add, where the dense kernels do b
/// FMAs per 16 outputs; the work does not depend on the firing rate (but see <see cref="Pays"/>).
/// <para>Per image, the input's b-bit patterns are packed once into a zero-bordered grid of byte offsets into the
/// table, one plane per group (checking that every value is 0 or a); 16 output pixels of one block accumulate in 16
/// vectors with the output channels in lanes, and a 16×16 transpose writes them to the NCHW output.</para>
/// <para>Sums are taken in another order than the dense kernels', and a·w is rounded before it is added: results agree
/// to rounding (a few ulp), not bit for bit. Shapes as <see cref="Conv2dKernels"/>.</para>
/// </summary>
public static unsafe class SpikeTableConv
{
    private const int Block = 16; // output channels per table row: one vector
    private const int RowBytes = Block * sizeof(float);
    private const long TargetBlockTableBytes = 512 << 10; // half of a Zen 4 core's L2, the rest for the grid and output
    private const long MaxBlockTableBytes = 1 << 20;

    /// <summary>Output channels in blocks of 16; output rows of 8 or a multiple (16 output pixels per tile, from one
    /// or two rows); equal strides of 1 or 2; one output block's table within 1 MiB with groups of 4 channels.</summary>
    public static bool Supports(Conv2dGeometry g) =>
        Vector512.IsHardwareAccelerated && g.OutChannels % Block == 0 && g.OutW % 8 == 0 && g.OutPlane % 16 == 0
        && g.StrideH == g.StrideW && g.StrideW is 1 or 2 && BlockTableBytes(g, 4) <= MaxBlockTableBytes;

    /// <summary>Whether the table beats the dense kernels on this input. They skip every input channel that is silent in
    /// an image, while the table pays for every group. Per output pixel and 16 output channels, in units of one dense
    /// FMA: the dense kernels cost (firing share of channel planes)·C·K², the table 2 per lookup (K²·groups) plus 43 for
    /// packing and transposing. The constants are fitted to the measured full-density times of ResNet-20's 16→16 (table
    /// 0.55 of dense) and 64→64 (0.42) layers and predict VGG-16's 64→64 on 32×32 (0.37 measured). The share is sampled
    /// on up to 32 images. VGG-16 with random weights leaves most of its deeper channels silent: those layers stay
    /// dense. A 1×1 convolution has no direct kernel: im2col and a GEMM with K = C cost ≈ 50 + 3.4 per firing channel
    /// (fitted to ResNet-20's stride-2 shortcuts 16→32 and 32→64 with every channel firing, where the table took 2.13
    /// and 1.24 ms against 3.88 and 2.97 ms dense for 512 images).</summary>
    public static bool Pays(Conv2dGeometry g, float[] x)
    {
        int stride = Math.Max(1, g.N / 32), sampled = 0;
        long active = 0;
        for (int n = 0; n < g.N; n += stride, sampled++)
            for (int c = 0; c < g.InChannels; c++)
                if (x.AsSpan((n * g.InChannels + c) * g.InPlane, g.InPlane).IndexOfAnyExcept(0f) >= 0) active++;
        int kk = g.KH * g.KW;
        double firing = (double)active / sampled;
        double dense = kk == 1 ? 50 + 3.4 * firing : firing * kk, table = 2.0 * kk * Groups(g, GroupBits(g)) + 43;
        return table < dense;
    }

    /// <summary>Input channels per lookup: the widest group (at most 8) whose table for one output block stays within
    /// <see cref="TargetBlockTableBytes"/>. A wider group doubles the table and cuts the lookups per tap from ⌈C/b⌉ to
    /// ⌈C/(b+1)⌉; ResNet-20's 3×3 layers get 8 (16 channels), 7 (32) and 6 (64).</summary>
    internal static int GroupBits(Conv2dGeometry g)
    {
        int bits = 8;
        while (bits > 4 && BlockTableBytes(g, bits) > TargetBlockTableBytes) bits--;
        return bits;
    }

    private static int Groups(Conv2dGeometry g, int bits) => (g.InChannels + bits - 1) / bits;

    private static long BlockTableBytes(Conv2dGeometry g, int bits) => (long)g.KH * g.KW * Groups(g, bits) * (RowBytes << bits);

    /// <summary>y = conv(x, w) + bias for x whose every element is 0 or <paramref name="amplitude"/> (&gt; 0); throws if
    /// another value is found. The epilogue runs on each output image right after it is written.</summary>
    public static void Forward(Conv2dGeometry g, float[] x, float[] w, float[]? bias, float[] y, float amplitude, WorkerPool pool,
        IConvEpilogue? epilogue = null)
    {
        if (!Supports(g)) throw new ArgumentException($"spike-table convolution: unsupported geometry {g}");
        if (!(amplitude > 0) || !float.IsFinite(amplitude)) throw new ArgumentException($"spike-table convolution: amplitude {amplitude} is not a positive number");
        int kk = g.KH * g.KW, bits = GroupBits(g), groups = Groups(g, bits), blocks = g.OutChannels / Block;
        long blockFloats = BlockTableBytes(g, bits) / sizeof(float);
        int ph = g.H + 2 * g.PadH, pw = g.W + 2 * g.PadW, gridPlane = (ph * pw + 1) & ~1; // even: AccumulateStride1 steps planes in pairs
        int inImage = g.InChannels * g.InPlane, outImage = g.OutChannels * g.OutPlane;
        float* table = (float*)NativeMemory.AlignedAlloc((nuint)(blocks * blockFloats * sizeof(float)), 64);
        try
        {
            BuildTable(g, w, amplitude, bits, table);
            var taps = new int[kk];
            for (int kh = 0; kh < g.KH; kh++)
                for (int kw = 0; kw < g.KW; kw++) taps[kh * g.KW + kw] = kh * pw + kw;
            var tablePtr = new IntPtr(table);
            ConvEpilogueLoop.ForImages(pool, g.N, y, outImage, epilogue, n =>
            {
                var gridBuffer = ThreadScratch.Get(3, groups * gridPlane);
                fixed (float* gb = gridBuffer, xp = x, yp = y)
                fixed (int* tp = taps)
                {
                    int* grid = (int*)gb;
                    if (!Pack(xp + (long)n * inImage, g, amplitude, bits, grid, pw, gridPlane))
                        throw new InvalidOperationException($"spike-table convolution: input image {n} ([{g.InChannels},{g.H},{g.W}]) holds a value other than 0 and its spike amplitude {amplitude}");
                    float* tile = stackalloc float[16 * Block];
                    float* outImagePtr = yp + (long)n * outImage;
                    // Block by block, so that one block's table (≤ 512 KiB) stays in L2 over the whole image.
                    for (int b = 0; b < blocks; b++)
                    {
                        float* blockTable = (float*)tablePtr + b * blockFloats;
                        var init = bias != null ? Vector512.Create(bias.AsSpan(b * Block, Block)) : Vector512<float>.Zero;
                        for (int p0 = 0; p0 < g.OutPlane; p0 += 16)
                        {
                            // Two runs of 8 output pixels: one 16-wide stretch of a row, or two rows of 8.
                            int baseA = InputBase(g, p0, pw), baseB = InputBase(g, p0 + 8, pw);
                            if (g.StrideW == 1) AccumulateStride1(blockTable, grid + baseA, grid + baseB, tp, kk, groups, RowBytes << bits, gridPlane, init, tile);
                            else AccumulateStride2(blockTable, grid + baseA, grid + baseB, tp, kk, groups, RowBytes << bits, gridPlane, init, tile);
                            Transpose16(tile, outImagePtr + (long)b * Block * g.OutPlane + p0, g.OutPlane);
                        }
                    }
                }
            });
        }
        finally { NativeMemory.AlignedFree(table); }
    }

    /// <summary>Grid index of the top-left tap of output pixel p.</summary>
    private static int InputBase(Conv2dGeometry g, int p, int pw) => p / g.OutW * g.StrideH * pw + p % g.OutW * g.StrideW;

    /// <summary>T[block][tap][group][pattern][16 outputs] = Σ over the pattern's bits i of a·w[o, bits·group + i, tap], built
    /// pattern by pattern from the one with its lowest bit cleared (one vector add per row).</summary>
    private static void BuildTable(Conv2dGeometry g, float[] w, float amplitude, int bits, float* table)
    {
        int kk = g.KH * g.KW, groups = Groups(g, bits), cin = g.InChannels, patterns = 1 << bits;
        Span<float> column = stackalloc float[Block];
        var terms = new Vector512<float>[bits]; // a·w[block's 16 outputs, channel bits·j + i, tap]
        for (int b = 0; b < g.OutChannels / Block; b++)
            for (int tap = 0; tap < kk; tap++)
                for (int j = 0; j < groups; j++)
                {
                    for (int i = 0; i < bits; i++)
                    {
                        int c = j * bits + i;
                        for (int o = 0; o < Block; o++) column[o] = c < cin ? amplitude * w[((b * Block + o) * cin + c) * kk + tap] : 0f;
                        terms[i] = Vector512.Create<float>(column);
                    }
                    float* e = table + (((long)b * kk + tap) * groups + j) * patterns * Block;
                    Vector512<float>.Zero.Store(e);
                    for (int p = 1; p < patterns; p++)
                        (Vector512.Load(e + (p & (p - 1)) * Block) + terms[BitOperations.TrailingZeroCount(p)]).Store(e + p * Block);
                }
    }

    /// <summary>One image's spikes as a grid [group][padded pixel] of byte offsets of its pattern's row (pattern · 64);
    /// the border is pattern 0. False if a value is neither 0 nor the amplitude.</summary>
    private static bool Pack(float* x, Conv2dGeometry g, float amplitude, int bits, int* grid, int pw, int gridPlane)
    {
        int groups = Groups(g, bits);
        new Span<int>(grid, groups * gridPlane).Clear();
        int h = g.H, width = g.W, plane = g.InPlane, cin = g.InChannels;
        var zero = Vector256<float>.Zero;
        var amp = Vector256.Create(amplitude);
        var bad = Vector256<int>.Zero;
        bool ok = true;
        for (int j = 0; j < groups; j++)
        {
            int channels = Math.Min(bits, cin - j * bits);
            float* src = x + (long)j * bits * plane;
            int* dst = grid + j * gridPlane + g.PadH * pw + g.PadW;
            for (int r = 0; r < h; r++, dst += pw)
            {
                int col = 0;
                for (; col + 8 <= width; col += 8)
                {
                    var offsets = Vector256<int>.Zero;
                    for (int b = 0; b < channels; b++)
                    {
                        var v = Vector256.Load(src + b * plane + r * width + col);
                        var spike = ~Vector256.Equals(v, zero).AsInt32();
                        bad |= spike & ~Vector256.Equals(v, amp).AsInt32();
                        offsets |= spike & Vector256.Create(RowBytes << b);
                    }
                    offsets.Store(dst + col);
                }
                for (; col < width; col++)
                {
                    int offset = 0;
                    for (int b = 0; b < channels; b++)
                    {
                        float v = src[b * plane + r * width + col];
                        if (v != 0f)
                        {
                            ok &= v == amplitude;
                            offset |= RowBytes << b;
                        }
                    }
                    dst[col] = offset;
                }
            }
        }
        return ok && bad == Vector256<int>.Zero;
    }

    /// <summary>16 output pixels × one 16-channel block at stride 1: pixels 0–7 read the grid from
    /// <paramref name="gridA"/>, 8–15 from <paramref name="gridB"/>; one table row added per (tap, group, pixel). Two
    /// neighbours' offsets come in one 64-bit load: the load ports, not the adds, bound this loop, and halving the offset
    /// loads took 10–20 % off it. Writes the accumulators to <paramref name="tile"/> [pixel][channel].</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AccumulateStride1(float* blockTable, int* gridA, int* gridB, int* taps, int kk, int groups, int groupBytes, int gridPlane,
        Vector512<float> init, float* tile)
    {
        Vector512<float> a0 = init, a1 = init, a2 = init, a3 = init, a4 = init, a5 = init, a6 = init, a7 = init,
            b0 = init, b1 = init, b2 = init, b3 = init, b4 = init, b5 = init, b6 = init, b7 = init;
        byte* t = (byte*)blockTable;
        int pairPlane = gridPlane / 2; // Forward keeps gridPlane even
        for (int tap = 0; tap < kk; tap++)
        {
            long* pa = (long*)(gridA + taps[tap]), pb = (long*)(gridB + taps[tap]);
            for (int j = 0; j < groups; j++, pa += pairPlane, pb += pairPlane, t += groupBytes)
            {
                long q = pa[0];
                a0 += Vector512.Load((float*)(t + (int)q)); a1 += Vector512.Load((float*)(t + (q >> 32)));
                q = pa[1];
                a2 += Vector512.Load((float*)(t + (int)q)); a3 += Vector512.Load((float*)(t + (q >> 32)));
                q = pa[2];
                a4 += Vector512.Load((float*)(t + (int)q)); a5 += Vector512.Load((float*)(t + (q >> 32)));
                q = pa[3];
                a6 += Vector512.Load((float*)(t + (int)q)); a7 += Vector512.Load((float*)(t + (q >> 32)));
                q = pb[0];
                b0 += Vector512.Load((float*)(t + (int)q)); b1 += Vector512.Load((float*)(t + (q >> 32)));
                q = pb[1];
                b2 += Vector512.Load((float*)(t + (int)q)); b3 += Vector512.Load((float*)(t + (q >> 32)));
                q = pb[2];
                b4 += Vector512.Load((float*)(t + (int)q)); b5 += Vector512.Load((float*)(t + (q >> 32)));
                q = pb[3];
                b6 += Vector512.Load((float*)(t + (int)q)); b7 += Vector512.Load((float*)(t + (q >> 32)));
            }
        }
        StoreTile(tile, a0, a1, a2, a3, a4, a5, a6, a7, b0, b1, b2, b3, b4, b5, b6, b7);
    }

    /// <summary><see cref="AccumulateStride1"/> at stride 2: a pixel's neighbour reads the grid two cells on, so each
    /// offset is its own load.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static void AccumulateStride2(float* blockTable, int* gridA, int* gridB, int* taps, int kk, int groups, int groupBytes, int gridPlane,
        Vector512<float> init, float* tile)
    {
        Vector512<float> a0 = init, a1 = init, a2 = init, a3 = init, a4 = init, a5 = init, a6 = init, a7 = init,
            b0 = init, b1 = init, b2 = init, b3 = init, b4 = init, b5 = init, b6 = init, b7 = init;
        byte* t = (byte*)blockTable;
        for (int tap = 0; tap < kk; tap++)
        {
            int* pa = gridA + taps[tap], pb = gridB + taps[tap];
            for (int j = 0; j < groups; j++, pa += gridPlane, pb += gridPlane, t += groupBytes)
            {
                a0 += Vector512.Load((float*)(t + pa[0]));
                a1 += Vector512.Load((float*)(t + pa[2]));
                a2 += Vector512.Load((float*)(t + pa[4]));
                a3 += Vector512.Load((float*)(t + pa[6]));
                a4 += Vector512.Load((float*)(t + pa[8]));
                a5 += Vector512.Load((float*)(t + pa[10]));
                a6 += Vector512.Load((float*)(t + pa[12]));
                a7 += Vector512.Load((float*)(t + pa[14]));
                b0 += Vector512.Load((float*)(t + pb[0]));
                b1 += Vector512.Load((float*)(t + pb[2]));
                b2 += Vector512.Load((float*)(t + pb[4]));
                b3 += Vector512.Load((float*)(t + pb[6]));
                b4 += Vector512.Load((float*)(t + pb[8]));
                b5 += Vector512.Load((float*)(t + pb[10]));
                b6 += Vector512.Load((float*)(t + pb[12]));
                b7 += Vector512.Load((float*)(t + pb[14]));
            }
        }
        StoreTile(tile, a0, a1, a2, a3, a4, a5, a6, a7, b0, b1, b2, b3, b4, b5, b6, b7);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static void StoreTile(float* tile, Vector512<float> a0, Vector512<float> a1, Vector512<float> a2, Vector512<float> a3,
        Vector512<float> a4, Vector512<float> a5, Vector512<float> a6, Vector512<float> a7, Vector512<float> b0, Vector512<float> b1,
        Vector512<float> b2, Vector512<float> b3, Vector512<float> b4, Vector512<float> b5, Vector512<float> b6, Vector512<float> b7)
    {
        a0.Store(tile); a1.Store(tile + 16); a2.Store(tile + 32); a3.Store(tile + 48);
        a4.Store(tile + 64); a5.Store(tile + 80); a6.Store(tile + 96); a7.Store(tile + 112);
        b0.Store(tile + 128); b1.Store(tile + 144); b2.Store(tile + 160); b3.Store(tile + 176);
        b4.Store(tile + 192); b5.Store(tile + 208); b6.Store(tile + 224); b7.Store(tile + 240);
    }

    /// <summary>dst[c·stride + i] = tile[i·16 + c] for a 16×16 tile (pixels × channels → channel planes). AVX-512 only,
    /// as <see cref="Supports"/> requires.</summary>
    private static void Transpose16(float* tile, float* dst, int stride)
    {
        Vector512<float> r0 = Vector512.Load(tile), r1 = Vector512.Load(tile + 16), r2 = Vector512.Load(tile + 32), r3 = Vector512.Load(tile + 48),
            r4 = Vector512.Load(tile + 64), r5 = Vector512.Load(tile + 80), r6 = Vector512.Load(tile + 96), r7 = Vector512.Load(tile + 112),
            r8 = Vector512.Load(tile + 128), r9 = Vector512.Load(tile + 144), r10 = Vector512.Load(tile + 160), r11 = Vector512.Load(tile + 176),
            r12 = Vector512.Load(tile + 192), r13 = Vector512.Load(tile + 208), r14 = Vector512.Load(tile + 224), r15 = Vector512.Load(tile + 240);
        // 32-bit interleave of row pairs, then 64-bit of pairs of those, then 128-bit lanes twice.
        var t0 = Avx512F.UnpackLow(r0, r1); var t1 = Avx512F.UnpackHigh(r0, r1);
        var t2 = Avx512F.UnpackLow(r2, r3); var t3 = Avx512F.UnpackHigh(r2, r3);
        var t4 = Avx512F.UnpackLow(r4, r5); var t5 = Avx512F.UnpackHigh(r4, r5);
        var t6 = Avx512F.UnpackLow(r6, r7); var t7 = Avx512F.UnpackHigh(r6, r7);
        var t8 = Avx512F.UnpackLow(r8, r9); var t9 = Avx512F.UnpackHigh(r8, r9);
        var t10 = Avx512F.UnpackLow(r10, r11); var t11 = Avx512F.UnpackHigh(r10, r11);
        var t12 = Avx512F.UnpackLow(r12, r13); var t13 = Avx512F.UnpackHigh(r12, r13);
        var t14 = Avx512F.UnpackLow(r14, r15); var t15 = Avx512F.UnpackHigh(r14, r15);
        r0 = Lo64(t0, t2); r1 = Hi64(t0, t2); r2 = Lo64(t1, t3); r3 = Hi64(t1, t3);
        r4 = Lo64(t4, t6); r5 = Hi64(t4, t6); r6 = Lo64(t5, t7); r7 = Hi64(t5, t7);
        r8 = Lo64(t8, t10); r9 = Hi64(t8, t10); r10 = Lo64(t9, t11); r11 = Hi64(t9, t11);
        r12 = Lo64(t12, t14); r13 = Hi64(t12, t14); r14 = Lo64(t13, t15); r15 = Hi64(t13, t15);
        t0 = Avx512F.Shuffle4x128(r0, r4, 0x88); t1 = Avx512F.Shuffle4x128(r1, r5, 0x88);
        t2 = Avx512F.Shuffle4x128(r2, r6, 0x88); t3 = Avx512F.Shuffle4x128(r3, r7, 0x88);
        t4 = Avx512F.Shuffle4x128(r0, r4, 0xDD); t5 = Avx512F.Shuffle4x128(r1, r5, 0xDD);
        t6 = Avx512F.Shuffle4x128(r2, r6, 0xDD); t7 = Avx512F.Shuffle4x128(r3, r7, 0xDD);
        t8 = Avx512F.Shuffle4x128(r8, r12, 0x88); t9 = Avx512F.Shuffle4x128(r9, r13, 0x88);
        t10 = Avx512F.Shuffle4x128(r10, r14, 0x88); t11 = Avx512F.Shuffle4x128(r11, r15, 0x88);
        t12 = Avx512F.Shuffle4x128(r8, r12, 0xDD); t13 = Avx512F.Shuffle4x128(r9, r13, 0xDD);
        t14 = Avx512F.Shuffle4x128(r10, r14, 0xDD); t15 = Avx512F.Shuffle4x128(r11, r15, 0xDD);
        Avx512F.Shuffle4x128(t0, t8, 0x88).Store(dst); Avx512F.Shuffle4x128(t1, t9, 0x88).Store(dst + stride);
        Avx512F.Shuffle4x128(t2, t10, 0x88).Store(dst + 2 * stride); Avx512F.Shuffle4x128(t3, t11, 0x88).Store(dst + 3 * stride);
        Avx512F.Shuffle4x128(t4, t12, 0x88).Store(dst + 4 * stride); Avx512F.Shuffle4x128(t5, t13, 0x88).Store(dst + 5 * stride);
        Avx512F.Shuffle4x128(t6, t14, 0x88).Store(dst + 6 * stride); Avx512F.Shuffle4x128(t7, t15, 0x88).Store(dst + 7 * stride);
        Avx512F.Shuffle4x128(t0, t8, 0xDD).Store(dst + 8 * stride); Avx512F.Shuffle4x128(t1, t9, 0xDD).Store(dst + 9 * stride);
        Avx512F.Shuffle4x128(t2, t10, 0xDD).Store(dst + 10 * stride); Avx512F.Shuffle4x128(t3, t11, 0xDD).Store(dst + 11 * stride);
        Avx512F.Shuffle4x128(t4, t12, 0xDD).Store(dst + 12 * stride); Avx512F.Shuffle4x128(t5, t13, 0xDD).Store(dst + 13 * stride);
        Avx512F.Shuffle4x128(t6, t14, 0xDD).Store(dst + 14 * stride); Avx512F.Shuffle4x128(t7, t15, 0xDD).Store(dst + 15 * stride);
    }

    private static Vector512<float> Lo64(Vector512<float> a, Vector512<float> b) => Avx512F.UnpackLow(a.AsDouble(), b.AsDouble()).AsSingle();
    private static Vector512<float> Hi64(Vector512<float> a, Vector512<float> b) => Avx512F.UnpackHigh(a.AsDouble(), b.AsDouble()).AsSingle();
}
