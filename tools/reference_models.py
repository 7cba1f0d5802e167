"""PyTorch definitions of the QCFS reference models in the layout of the SRP/COS/QCFS codes (methods.md §9), so that
their state dicts and ONNX exports look like what users bring to `spikesharp import`.

    ResNet20(width, classes, act)  ResNet4Cifar: conv1.{0 conv,1 BN,2 act}, conv{2,3,4}_x.{b}.residual_function.{0..4},
                                   .shortcut.{0,1}, .relu; avg_pool (AdaptiveAvgPool2d(1)); view(size(0), -1); fc
    VGG16(width, classes, act)     layer1..layer5 = (conv with bias, BN, act, Dropout(0)) per conv + AvgPool2d(2);
                                   classifier = Flatten, Linear, act, Dropout, Linear, act, Dropout, Linear

`act` is a factory of QCFS modules: `qcfs_factory(levels, order, param)` with order "clip-first" (QCFS-new `IF`:
Div → Clip → Mul → Add → Floor → Div → Mul) or "floor-first" (QCFS-old/SRP/COS `MyFloor`: Div → Mul → Add → Floor →
Div → Clip → Mul), and param "up" (QCFS-old/SRP/COS) or "thresh" (QCFS-new). The reference codes' straight-through
floor is a custom autograd function; inference only needs torch.floor, which exports as a plain Floor node.

`scaled(c, width)` is SpikeSharp's ModelSpec.Scaled: max(1, round(c·width)), rounding half to even like .NET's
MathF.Round (Python's round does the same).
"""
import torch
import torch.nn as nn


class GradFloor(torch.autograd.Function):
    """floor with a straight-through gradient (d floor(u)/du := 1), as in the QCFS reference code; traced to a plain
    Floor node by torch.onnx."""

    @staticmethod
    def forward(ctx, u):
        return torch.floor(u)

    @staticmethod
    def backward(ctx, g):
        return g


def grid(g, shape, lo, hi, step):
    """Values lo, lo + step, …, hi drawn uniformly from generator g."""
    n = int(round((hi - lo) / step))
    return lo + step * torch.randint(0, n + 1, shape, generator=g).float()


def dyadic(model, g):
    """Small dyadic weights that keep every current exact in float32 whatever the summation order (and BN foldable
    exactly): conv/linear weights multiples of 1/8 in [-1, 1], linear biases and BN β, μ multiples of 1/16, BN γ
    multiples of 8 in [8, 48] with var 1024 (√(1024 + 1e-5) rounds to 32), λ ("up") in {1, 1.5, 2}."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.Conv2d):
                m.weight.copy_(grid(g, m.weight.shape, -1, 1, 1 / 8))
            elif isinstance(m, nn.BatchNorm2d):
                c = m.num_features
                m.weight.copy_(grid(g, (c,), 8, 48, 8))
                m.bias.copy_(grid(g, (c,), -0.5, 0.5, 1 / 16))
                m.running_mean.copy_(grid(g, (c,), -0.5, 0.5, 1 / 16))
                m.running_var.fill_(1024.0)
            elif isinstance(m, nn.Linear):
                m.weight.copy_(grid(g, m.weight.shape, -1, 1, 1 / 8))
                m.bias.copy_(grid(g, m.bias.shape, -0.5, 0.5, 1 / 16))
            elif isinstance(getattr(m, "up", None), nn.Parameter):
                m.up.copy_(torch.tensor([float(grid(g, (1,), 1, 2, 0.5))]))


def scaled(c, width):
    return max(1, int(round(c * width)))


class Qcfs(nn.Module):
    """h = λ·clip(floor(z/λ·L + ½)/L, 0, 1) (methods.md §1), with λ stored under `param` ("up" or "thresh")."""

    def __init__(self, levels=4, order="clip-first", param="up", init=8.0):
        super().__init__()
        assert order in ("clip-first", "floor-first") and param in ("up", "thresh")
        self.levels, self.order, self.param = levels, order, param
        self.register_parameter(param, nn.Parameter(torch.tensor([init])))

    def forward(self, x):
        lam = getattr(self, self.param)
        if self.order == "clip-first":
            x = x / lam
            x = torch.clamp(x, 0, 1)
            x = torch.floor(x * self.levels + 0.5) / self.levels
            return x * lam
        x = x / lam
        x = torch.floor(x * self.levels + 0.5) / self.levels
        x = torch.clamp(x, 0, 1)
        return x * lam


def qcfs_factory(levels=4, order="clip-first", param="up"):
    return lambda: Qcfs(levels, order, param)


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride, act):
        super().__init__()
        self.residual_function = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride, 1, bias=False), nn.BatchNorm2d(cout), act(),
            nn.Conv2d(cout, cout, 3, 1, 1, bias=False), nn.BatchNorm2d(cout))
        self.shortcut = nn.Sequential()
        if stride != 1 or cin != cout:
            self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))
        self.relu = act()

    def forward(self, x):
        return self.relu(self.residual_function(x) + self.shortcut(x))


class ResNet20(nn.Module):
    """SRP/COS ResNet4Cifar with 3 stages of 3 BasicBlocks (16/32/64 channels × width)."""

    def __init__(self, width=1.0, classes=10, act=qcfs_factory()):
        super().__init__()
        c = scaled(16, width)
        self.conv1 = nn.Sequential(nn.Conv2d(3, c, 3, padding=1, bias=False), nn.BatchNorm2d(c), act())
        stages = []
        for s, w in enumerate((16, 32, 64)):
            cout = scaled(w, width)
            blocks = []
            for b in range(3):
                blocks.append(BasicBlock(c, cout, 2 if (b == 0 and s > 0) else 1, act))
                c = cout
            stages.append(nn.Sequential(*blocks))
        self.conv2_x, self.conv3_x, self.conv4_x = stages
        self.avg_pool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(c, classes)

    def forward(self, x):
        out = self.conv4_x(self.conv3_x(self.conv2_x(self.conv1(x))))
        out = self.avg_pool(out)
        out = out.view(out.size(0), -1)
        return self.fc(out)


class VGG16(nn.Module):
    """QCFS-old/SRP/COS VGG-16 with average pooling, channels and hidden width × width (CIFAR head, 32×32 input)."""

    CFG = ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))

    def __init__(self, width=1.0, classes=10, act=qcfs_factory()):
        super().__init__()
        c = 3
        for i, block in enumerate(self.CFG):
            layers = []
            for w in block:
                cout = scaled(w, width)
                layers += [nn.Conv2d(c, cout, 3, padding=1), nn.BatchNorm2d(cout), act(), nn.Dropout(0.0)]
                c = cout
            layers.append(nn.AvgPool2d(2, 2))
            setattr(self, "layer%d" % (i + 1), nn.Sequential(*layers))
        hidden = scaled(4096, width)
        self.classifier = nn.Sequential(nn.Flatten(), nn.Linear(c, hidden), act(), nn.Dropout(0.0),
                                        nn.Linear(hidden, hidden), act(), nn.Dropout(0.0), nn.Linear(hidden, classes))

    def forward(self, x):
        for i in range(5):
            x = getattr(self, "layer%d" % (i + 1))(x)
        return self.classifier(x)
