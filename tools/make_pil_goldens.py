#!/usr/bin/env python3
"""Writes tests/SpikeSharp.Tests/Fixtures/pil_ops.txt: the expected output of every AutoAugment operation as
torchvision applies it to PIL images (nearest interpolation, fill 0), computed with Pillow itself.

Run from the repository root with Debian's Pillow (torchvision is not needed; its calls are spelled out below):
    apt-get install python3-pil python3-numpy && /usr/bin/python3 tools/make_pil_goldens.py

Format, one record per line, pixels as hex in [C,H,W] order:
    image NAME MODE WIDTH HEIGHT HEX
    case IMAGE OP BIN SIGN MAGNITUDE HEX        (BIN = -1 for ops without magnitude; SIGN = +1 or -1)
"""
import math
import random

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

BINS = 10


def linspace32(start, end, i):
    """torch.linspace(start, end, 10)[i] in float32 (torch's two-sided CPU kernel)."""
    start, end = np.float32(start), np.float32(end)
    step = (end - start) / np.float32(BINS - 1)
    return float(start + step * np.float32(i) if i < BINS // 2 else end - step * np.float32(BINS - i - 1))


def magnitude(op, b, h, w):
    """torchvision AutoAugment._augmentation_space(10, (h, w))[op][0][b]."""
    if op in ("ShearX", "ShearY"):
        return linspace32(0.0, 0.3, b)
    if op == "TranslateX":
        return linspace32(0.0, 150.0 / 331.0 * w, b)
    if op == "TranslateY":
        return linspace32(0.0, 150.0 / 331.0 * h, b)
    if op == "Rotate":
        return linspace32(0.0, 30.0, b)
    if op in ("Brightness", "Color", "Contrast", "Sharpness"):
        return linspace32(0.0, 0.9, b)
    if op == "Posterize":
        return float(8 - int(np.round(b / ((BINS - 1) / 4))))
    if op == "Solarize":
        return linspace32(255.0, 0.0, b)
    return 0.0


def inverse_affine_matrix(center, angle, translate, scale, shear):
    """torchvision.transforms.functional._get_inverse_affine_matrix (inverted=True)."""
    rot = math.radians(angle)
    sx = math.radians(shear[0])
    sy = math.radians(shear[1])
    cx, cy = center
    tx, ty = translate
    a = math.cos(rot - sy) / math.cos(sy)
    b = -math.cos(rot - sy) * math.tan(sx) / math.cos(sy) - math.sin(rot)
    c = math.sin(rot - sy) / math.cos(sy)
    d = -math.sin(rot - sy) * math.tan(sx) / math.cos(sy) + math.cos(rot)
    matrix = [d, -b, 0.0, -c, a, 0.0]
    matrix = [x / scale for x in matrix]
    matrix[2] += matrix[0] * (-cx - tx) + matrix[1] * (-cy - ty)
    matrix[5] += matrix[3] * (-cx - tx) + matrix[4] * (-cy - ty)
    matrix[2] += cx
    matrix[5] += cy
    return matrix


def fill_for(img):
    return tuple([0] * len(img.getbands())) if len(img.getbands()) > 1 else 0


def affine(img, angle, translate, shear, center=None):
    """torchvision F.affine on a PIL image (scale 1, NEAREST, fill None -> 0)."""
    w, h = img.size
    if center is None:
        center = [w * 0.5, h * 0.5]
    matrix = inverse_affine_matrix(center, angle, translate, 1.0, shear)
    return img.transform((w, h), Image.AFFINE, matrix, Image.NEAREST, fillcolor=fill_for(img))


def apply_op(img, op, m):
    """torchvision.transforms.autoaugment._apply_op for PIL images."""
    if op == "ShearX":
        return affine(img, 0.0, [0, 0], [math.degrees(math.atan(m)), 0.0], center=[0, 0])
    if op == "ShearY":
        return affine(img, 0.0, [0, 0], [0.0, math.degrees(math.atan(m))], center=[0, 0])
    if op == "TranslateX":
        return affine(img, 0.0, [int(m), 0], [0.0, 0.0])
    if op == "TranslateY":
        return affine(img, 0.0, [0, int(m)], [0.0, 0.0])
    if op == "Rotate":
        return img.rotate(m, Image.NEAREST, False, None, fillcolor=fill_for(img))
    if op == "Brightness":
        return ImageEnhance.Brightness(img).enhance(1.0 + m)
    if op == "Color":
        return ImageEnhance.Color(img).enhance(1.0 + m)
    if op == "Contrast":
        return ImageEnhance.Contrast(img).enhance(1.0 + m)
    if op == "Sharpness":
        return ImageEnhance.Sharpness(img).enhance(1.0 + m)
    if op == "Posterize":
        return ImageOps.posterize(img, int(m))
    if op == "Solarize":
        return ImageOps.solarize(img, m)
    if op == "AutoContrast":
        return ImageOps.autocontrast(img)
    if op == "Equalize":
        return ImageOps.equalize(img)
    if op == "Invert":
        return ImageOps.invert(img)
    raise ValueError(op)


def chw_hex(img):
    a = np.asarray(img, dtype=np.uint8)
    if a.ndim == 2:
        a = a[None, :, :]
    else:
        a = a.transpose(2, 0, 1)
    return a.tobytes().hex()


def make_images():
    rnd = random.Random(20240611)
    noise = Image.new("RGB", (12, 10))
    noise.putdata([tuple(rnd.randrange(256) for _ in range(3)) for _ in range(12 * 10)])
    # A smooth, low-contrast colour image: exercises autocontrast, equalize and interpolation boundaries.
    smooth = Image.new("RGB", (16, 16))
    smooth.putdata([(60 + (x * 7 + y * 3) % 97, 80 + (x * y) % 61, 100 + (2 * x + 5 * y) % 73)
                    for y in range(16) for x in range(16)])
    gray = Image.new("L", (9, 7))
    gray.putdata([rnd.randrange(40, 200) for _ in range(9 * 7)])
    return {"noise": noise, "smooth": smooth, "gray": gray}


SIGNED = ["ShearX", "ShearY", "TranslateX", "TranslateY", "Rotate", "Brightness", "Color", "Contrast", "Sharpness"]
UNSIGNED = ["Posterize", "Solarize"]
NO_MAGNITUDE = ["AutoContrast", "Equalize", "Invert"]


def main():
    images = make_images()
    lines = []
    for name, img in images.items():
        lines.append(f"image {name} {img.mode} {img.size[0]} {img.size[1]} {chw_hex(img)}")
    for name, img in images.items():
        w, h = img.size
        bins = {"noise": (1, 5, 9), "smooth": (6, 9), "gray": (3, 8)}[name]
        for op in SIGNED:
            for b in bins:
                for sign in (1, -1):
                    m = sign * magnitude(op, b, h, w)
                    lines.append(f"case {name} {op} {b} {sign} {m!r} {chw_hex(apply_op(img, op, m))}")
        for op in UNSIGNED:
            for b in (range(BINS) if name == "noise" else (2, 5, 8)):
                m = magnitude(op, b, h, w)
                lines.append(f"case {name} {op} {b} 1 {m!r} {chw_hex(apply_op(img, op, m))}")
        for op in NO_MAGNITUDE:
            lines.append(f"case {name} {op} -1 1 0.0 {chw_hex(apply_op(img, op, 0.0))}")
    path = "tests/SpikeSharp.Tests/Fixtures/pil_ops.txt"
    with open(path, "w") as f:
        f.write("# Generated by tools/make_pil_goldens.py with Pillow " + Image.__version__ + "; do not edit.\n")
        f.write("\n".join(lines) + "\n")
    print(f"wrote {len(lines)} records to {path}")


if __name__ == "__main__":
    main()
