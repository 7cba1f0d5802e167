#!/usr/bin/env python3
"""Writes the parser regression corpus: tests/SpikeSharp.Tests/Fixtures/corpus/<parser>/<case>.bin and, per parser,
expected.tsv (file, then a fragment the error message must contain; empty = the file must parse).
Each case is a tricky input: forged sizes, truncation, overflow, odd JSON. Run from the repository root."""
import gzip, json, os, struct

ROOT = "tests/SpikeSharp.Tests/Fixtures/corpus"
cases = {}

def add(parser, name, data, expect=""):
    cases.setdefault(parser, []).append((name, data, expect))

# ---- IDX images: big-endian magic 0x803, N, H, W, then N*H*W bytes
def idx_images(n, h, w, payload=None, magic=0x803):
    body = bytes((i * 37) & 0xFF for i in range(n * h * w)) if payload is None else payload
    return struct.pack(">IIII", magic, n, h, w) + body

add("idx-images", "valid", idx_images(2, 3, 4))
add("idx-images", "count-2-31", idx_images(0x7FFFFFFF, 28, 28, b""), "bad image count 2147483647 at offset 4")
add("idx-images", "product-over-2gib", idx_images(10_000_000, 4096, 4096, b""), "expected at most")
add("idx-images", "zero-height", idx_images(1, 0, 4, b""), "bad image height (rows) 0 at offset 8")
add("idx-images", "truncated-payload", idx_images(2, 3, 4)[:-5], "truncated")
add("idx-images", "trailing-byte", idx_images(2, 3, 4) + b"\0", "trailing data: 1 bytes")
add("idx-images", "header-3-bytes", b"\0\0\x08", "truncated header")
add("idx-images", "empty", b"", "truncated header")
add("idx-images", "labels-file", struct.pack(">II", 0x801, 2) + b"\1\2", "looks like an IDX labels file")
add("idx-images", "gzip-forged-count", gzip.compress(idx_images(1_000_000, 28, 28, b"\0" * 10)), "truncated")
add("idx-images", "gzip-cut-stream", gzip.compress(idx_images(2, 3, 4))[:-14], "truncated")
add("idx-images", "gzip-magic-only", b"\x1f\x8b", "truncated header")
add("idx-images", "gzip-then-garbage", gzip.compress(idx_images(2, 3, 4)) + b"garbage!", "")

# ---- IDX labels
def idx_labels(labels, n=None, magic=0x801):
    return struct.pack(">II", magic, len(labels) if n is None else n) + bytes(labels)

add("idx-labels", "valid", idx_labels([0, 9, 3]))
add("idx-labels", "label-10", idx_labels([0, 10]), "label 10 at offset 9; expected 0..9")
add("idx-labels", "count-ffffffff", idx_labels([1], n=0xFFFFFFFF), "bad label count 4294967295")
add("idx-labels", "count-short", idx_labels([1, 2, 3], n=5), "truncated")
add("idx-labels", "gzip-count-10m", gzip.compress(idx_labels([1], n=10_000_000)), "truncated")
add("idx-labels", "magic-little-endian", struct.pack("<II", 0x801, 1) + b"\1", "bad magic")

# ---- CIFAR
REC = 3072
def cifar(labels):
    return b"".join(bytes(l) + bytes((i * 7) & 0xFF for i in range(REC)) for l in labels)

add("cifar10", "valid", cifar([[3], [9]]))
add("cifar10", "label-10", cifar([[10]]), "bad label 10 at offset 0")
add("cifar10", "partial-record", cifar([[1]]) + b"\0" * 5, "not a positive multiple")
add("cifar10", "empty", b"", "length 0 is not a positive multiple")
add("cifar10", "gzip", gzip.compress(cifar([[1]])), "gzip-compressed")
add("cifar10", "cifar100-record", cifar([[1, 50]]), "not a positive multiple")
add("cifar100", "valid", cifar([[19, 99], [0, 0]]))
add("cifar100", "fine-100", cifar([[1, 100]]), "bad fine label 100 at offset 1")
add("cifar100", "coarse-20", cifar([[20, 1]]), "bad coarse label 20 at offset 0")

# ---- safetensors
def st(header, data=b"", raw_len=None, pad=True):
    h = header.encode("utf-8") if isinstance(header, str) else header
    if pad:
        h += b" " * ((8 - len(h) % 8) % 8)
    return struct.pack("<Q", len(h) if raw_len is None else raw_len) + h + data

def ent(dtype, shape, begin, end):
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end]}

add("safetensors", "valid", st(json.dumps({"w": ent("F32", [2], 0, 8)}), b"\0" * 8))
add("safetensors", "empty-huge-dims", st(json.dumps({"w": ent("F32", [0, 2147483647, 2147483647], 0, 0)})))
add("safetensors", "header-len-u64-max", st("{}", raw_len=2**64 - 1), "expected at most 100000000")
add("safetensors", "header-len-past-end", st("{}", raw_len=4096), "only 8 bytes follow")
add("safetensors", "shape-overflow", st(json.dumps({"w": ent("F32", [4294967296, 4294967296, 4294967296], 0, 8)}), b"\0" * 8), "shape[0] is 4294967296")
add("safetensors", "shape-product-overflow", st(json.dumps({"w": ent("F32", [2147483647] * 3, 0, 8)}), b"\0" * 8), "overflows a 64-bit element count")
add("safetensors", "elements-over-2gib", st(json.dumps({"w": ent("U8", [65536, 65536], 0, 4294967296)})), "elements; expected at most")
add("safetensors", "offsets-reach-past-data", st(json.dumps({"w": ent("F32", [4], 0, 16)}), b"\0" * 8), "reach past the data region")
add("safetensors", "negative-offset", st(json.dumps({"w": ent("F32", [2], -8, 0)}), b"\0" * 8), "data_offsets[0] is -8")
add("safetensors", "float-offset", st('{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8.0]}}', b"\0" * 8), "expected a non-negative integer")
add("safetensors", "overlap", st(json.dumps({"a": ent("F32", [2], 0, 8), "b": ent("F32", [2], 4, 12)}), b"\0" * 12), "overlap")
add("safetensors", "duplicate-name", st('{"a":{"dtype":"F32","shape":[1],"data_offsets":[0,4]},"a":{"dtype":"F32","shape":[1],"data_offsets":[4,8]}}', b"\0" * 8), "appears twice")
add("safetensors", "unknown-dtype", st(json.dumps({"w": ent("F8_E4M3", [2], 0, 2)}), b"\0" * 2), "is not supported")
add("safetensors", "deep-nesting", st('{"w":' + "[" * 200 + "]" * 200 + "}"), "not valid JSON")
add("safetensors", "lone-surrogate-name", st('{"\\ud800":{"dtype":"F32","shape":[1],"data_offsets":[0,4]}}', b"\0" * 4), "not valid UTF-16")
add("safetensors", "invalid-utf8", st(b'{"\xff":1}'), "not valid UTF-8")
add("safetensors", "root-array", st("[]"), "expected '{'")
add("safetensors", "metadata-number", st('{"__metadata__":{"a":1}}'), "expected a string")
add("safetensors", "file-7-bytes", b"\0" * 7, "8-byte header length")

# ---- model.json
def model_json(**over):
    doc = {
        "format": "spikesharp-checkpoint", "version": 1,
        "model": {"name": "cnn-small", "input_shape": [1, 28, 28], "classes": 10, "width": 0.5},
        "activation": {"kind": "qcfs", "levels": 4, "lambda_init": 8.0, "lambda_weight_decay": True, "lambda": {}},
        "data": {"dataset": "mnist", "mean": [0.1307], "std": [0.3081]},
        "extra": {},
    }
    for path, value in over.items():
        node = doc
        keys = path.split("__")
        for k in keys[:-1]:
            node = node[k]
        node[keys[-1]] = value
    return json.dumps(doc).encode()

add("model-json", "valid", model_json())
add("model-json", "width-string", model_json(model__width="x"), "field 'model.width' has the wrong type")
add("model-json", "width-huge", model_json(model__width=1e6), "--width must be in (0, 16]")
add("model-json", "input-1e9", model_json(model__input_shape=[3, 1000000000, 1000000000]), "invalid input shape")
add("model-json", "weights-over-limit", model_json(model__name="vgg16", model__input_shape=[3, 32, 32], model__width=16), "weight tensor of")
add("model-json", "cnn-small-4096", model_json(model__input_shape=[64, 4096, 4096], model__width=16), "weight tensor of")
add("model-json", "levels-0", model_json(activation__levels=0), "--levels must be in 1..")
add("model-json", "levels-2-31", model_json(activation__levels=2147483647), "--levels must be in 1..")
add("model-json", "levels-2-32", model_json(activation__levels=4294967296), "field 'activation.levels' has the wrong type")
add("model-json", "lambda-negative", model_json(activation__lambda_init=-1), "λ init must be positive")
add("model-json", "lambda-init-1e39", model_json(activation__lambda_init=1e39), "λ init must be positive and finite")
add("model-json", "lambda-wd-string", model_json(activation__lambda_weight_decay="yes"), "activation.lambda_weight_decay")
add("model-json", "classes-1", model_json(model__classes=1), "2..100000 classes")
add("model-json", "std-zero", model_json(data__std=[0]), "std > 0")
add("model-json", "version-99", model_json(version=99), "format version 99 is newer")
add("model-json", "root-array", b"[1,2]", "expected a JSON object")
add("model-json", "duplicate-key", model_json().replace(b'"version": 1', b'"version": 1, "version": 1'), "malformed model description")
add("model-json", "not-utf8", b'{"format":"\xc3\x28"}', "not valid UTF-8")
add("model-json", "empty", b"", "invalid JSON")
add("model-json", "deep-nesting", b"[" * 5000, "invalid JSON")
add("model-json", "unknown-model", model_json(model__name="lenet"), "unknown model 'lenet'")
add("model-json", "input-shape-2d", model_json(model__input_shape=[28, 28]), "must be [C, H, W]")

for parser, items in cases.items():
    d = os.path.join(ROOT, parser)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "expected.tsv"), "w") as f:
        for name, data, expect in items:
            with open(os.path.join(d, name + ".bin"), "wb") as b:
                b.write(data)
            f.write(f"{name}.bin\t{expect}\n")
print(sum(len(v) for v in cases.values()), "corpus files")
