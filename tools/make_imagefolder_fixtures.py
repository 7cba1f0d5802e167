#!/usr/bin/env python3
"""Writes tests/SpikeSharp.Tests/Fixtures/imagefolder/: a small ImageNet-style folder (train/ and val/, class
sub-folders, JPEG and PNG files of several sizes, RGB, grayscale, RGBA and palette, one corrupt file, one non-image
file) and what torchvision + Pillow make of it, for ImageFolderTests:

    expected.json           class lists and sample lists of torchvision.datasets.ImageFolder for both splits (the
                            corrupt file included, as torchvision lists it), and per image the files below
    expected/NAME.rgb       Pillow's decode, convert("RGB"), as uint8 [3,H,W]
    expected/NAME.eval      transforms.Resize(36) + CenterCrop(32) (bilinear, Pillow) as uint8 [3,32,32]
    expected/NAME.eval224   the ImageNet default Resize(256) + CenterCrop(224), as uint8 [3,224,224] (one PNG: an upscale)
    expected/NAME.gray      convert("L") + Resize(36) + CenterCrop(32) as uint8 [1,32,32]

Run from the repository root with Debian's Pillow and torchvision:
    apt-get install python3-pil python3-torchvision && /usr/bin/python3 tools/make_imagefolder_fixtures.py
"""
import json
import os
import shutil

import numpy as np
import PIL
from PIL import Image
import torchvision
from torchvision import datasets, transforms

ROOT = os.path.join("tests", "SpikeSharp.Tests", "Fixtures", "imagefolder")


def picture(w, h, seed):
    """A smooth image with edges (gradients, a disc, a bar) and mild noise: realistic for JPEG, exact for PNG."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    r = 128 + 100 * np.sin(x / max(w, 1) * 3.1 + seed)
    g = 255 * y / max(h - 1, 1)
    b = 255 * ((x - w / 2) ** 2 + (y - h / 2) ** 2 < (min(w, h) / 3) ** 2)
    img = np.stack([r, g, b], axis=-1)
    img[h // 3: h // 3 + 3, :, :] = [250, 20, 90]
    img += rng.normal(0, 6, img.shape)
    return np.clip(np.round(img), 0, 255).astype(np.uint8)


# (split, class, relative file, width, height, PIL mode, save options)
IMAGES = [
    ("train", "cat", "c1.jpg", 45, 37, "RGB", {"quality": 90}),
    ("train", "cat", "c2.png", 40, 40, "RGB", {}),
    ("train", "dog", "d1.jpeg", 64, 48, "L", {"quality": 85}),
    ("train", "dog", "d2.png", 33, 50, "RGBA", {}),
    ("train", "Zebra", "z1.JPG", 50, 30, "RGB", {"quality": 95, "subsampling": 0}),
    ("train", "Zebra", "z2.png", 36, 36, "P", {}),
    ("val", "cat", "v_c1.jpg", 60, 44, "RGB", {"quality": 90}),
    ("val", "cat", "v_c2.png", 23, 71, "L", {}),
    ("val", "dog", "v_d1.png", 100, 30, "RGB", {}),
    ("val", "dog", os.path.join("sub", "v_d2.jpg"), 37, 53, "RGB", {"quality": 80, "progressive": True}),
    ("val", "dog", "v_d3.jpg", 17, 17, "L", {"quality": 90}),
    ("val", "Zebra", "v_z1.png", 48, 64, "RGBA", {}),
    ("val", "Zebra", "v_z2.jpg", 150, 112, "RGB", {"quality": 92}),
]
CORRUPT = os.path.join("val", "dog", "broken.jpg")
NOT_AN_IMAGE = os.path.join("val", "cat", "notes.txt")


def save(split, cls, rel, w, h, mode, options, seed):
    arr = picture(w, h, seed)
    img = Image.fromarray(arr, "RGB")
    if mode == "L":
        img = img.convert("L")
    elif mode == "RGBA":
        alpha = Image.fromarray(np.tile(np.linspace(0, 255, w, dtype=np.uint8), (h, 1)), "L")
        img.putalpha(alpha)
    elif mode == "P":
        img = img.convert("P", palette=Image.ADAPTIVE, colors=16)
    path = os.path.join(ROOT, split, cls, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    img.save(path, **options)
    return path


def planes(img):
    a = np.asarray(img, dtype=np.uint8)
    return (a[None] if a.ndim == 2 else a.transpose(2, 0, 1)).copy()


def main():
    shutil.rmtree(ROOT, ignore_errors=True)
    os.makedirs(os.path.join(ROOT, "expected"))
    images = []
    for seed, (split, cls, rel, w, h, mode, options) in enumerate(IMAGES):
        path = save(split, cls, rel, w, h, mode, options, seed)
        name = f"{split}_{cls}_{os.path.basename(rel).split('.')[0]}"
        images.append({"file": os.path.relpath(path, ROOT).replace(os.sep, "/"), "name": name, "mode": mode,
                       "format": "png" if rel.lower().endswith(".png") else "jpeg"})
    # A JPEG cut off after its header: the header reads, the pixel data does not.
    with open(os.path.join(ROOT, images[6]["file"]), "rb") as f:
        whole = f.read()
    with open(os.path.join(ROOT, CORRUPT), "wb") as f:
        f.write(whole[: len(whole) // 3])
    with open(os.path.join(ROOT, NOT_AN_IMAGE), "w") as f:
        f.write("not an image: ImageFolder ignores files without an image extension\n")

    def loader(path):  # torchvision's pil_loader
        with open(path, "rb") as f:
            return Image.open(f).convert("RGB")

    evaluate = transforms.Compose([transforms.Resize(36), transforms.CenterCrop(32)])
    imagenet = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(224)])
    for entry in images:
        img = loader(os.path.join(ROOT, entry["file"]))
        entry["height"], entry["width"] = img.height, img.width
        planes(img).tofile(os.path.join(ROOT, "expected", entry["name"] + ".rgb"))
        planes(evaluate(img)).tofile(os.path.join(ROOT, "expected", entry["name"] + ".eval"))
        planes(evaluate(img.convert("L"))).tofile(os.path.join(ROOT, "expected", entry["name"] + ".gray"))
        if entry["name"] == "val_cat_v_c2":
            planes(imagenet(img)).tofile(os.path.join(ROOT, "expected", entry["name"] + ".eval224"))
            entry["eval224"] = True

    splits = {}
    for split in ("train", "val"):
        ds = datasets.ImageFolder(os.path.join(ROOT, split))
        splits[split] = {"classes": ds.classes,
                         "samples": [[os.path.relpath(p, ROOT).replace(os.sep, "/"), label] for p, label in ds.samples]}
    doc = {"pillow": PIL.__version__, "torchvision": torchvision.__version__, "corrupt": CORRUPT.replace(os.sep, "/"),
           "not_an_image": NOT_AN_IMAGE.replace(os.sep, "/"), "images": images, "splits": splits}
    with open(os.path.join(ROOT, "expected.json"), "w") as f:
        json.dump(doc, f, indent=1)
    print(f"wrote {len(images)} images + 1 corrupt + 1 non-image under {ROOT} (Pillow {PIL.__version__}, torchvision {torchvision.__version__})")


if __name__ == "__main__":
    main()
