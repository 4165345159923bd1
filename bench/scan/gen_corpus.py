#!/usr/bin/env python3
"""Write the scan benchmark corpus into a directory (nothing here is committed output).

  tensors.pt       PyTorch ZIP (stored, ZIP64 past 2 GiB) of float32 storages, TENSOR_MB in total
  objects.pkl      protocol-4 pickle of many small dicts, PICKLE_MB in size
  fixtures/        copies of the shared picklescan, benign-torch and modelscan fixtures

Python standard library only; seeded and deterministic.
"""
import os
import pickle
import random
import shutil
import struct
import sys
import zipfile

out = sys.argv[1]
fixtures = sys.argv[2]
tensor_mb = int(os.environ.get("TENSOR_MB", "2048"))
pickle_mb = int(os.environ.get("PICKLE_MB", "500"))
os.makedirs(out, exist_ok=True)


def bu(s):
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def tensor_zip(path, total_mb, n=32):
    size = total_mb * (1 << 20) // n
    pkl = b"\x80\x02ccollections\nOrderedDict\nq\x00)R("
    for i in range(n):
        pkl += (bu("layer%d.weight" % i) + b"ctorch._utils\n_rebuild_tensor_v2\n((" + bu("storage") +
                b"ctorch\nFloatStorage\n" + bu(str(i)) + bu("cpu") + b"J" + struct.pack("<i", size // 4) +
                b"tQK\x00J" + struct.pack("<i", size // 4) + b"\x85K\x01\x85\x89h\x00)RtR")
    pkl += b"u."
    rng = random.Random(7)
    block = bytes(rng.getrandbits(8) for _ in range(1 << 16)) * 16  # 1 MiB
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as z:
        z.writestr("model/data.pkl", pkl)
        for i in range(n):
            with z.open(zipfile.ZipInfo("model/data/%d" % i), "w", force_zip64=True) as w:
                for _ in range(size // len(block)):
                    w.write(block)
        z.writestr("model/version", "3\n")


def objects_pickle(path, mb):
    rng = random.Random(11)
    labels = ["cat", "dog", "bird", "fish"]
    n = mb * (1 << 20) // 52
    objs = [{"id": i, "name": "item%07d" % i, "score": rng.random(), "label": labels[i % 4]} for i in range(n)]
    with open(path, "wb") as f:
        pickle.dump(objs, f, protocol=4)


if tensor_mb:
    tensor_zip(os.path.join(out, "tensors.pt"), tensor_mb)
if pickle_mb:
    objects_pickle(os.path.join(out, "objects.pkl"), pickle_mb)
for d in ("picklescan", "benign-torch", "modelscan"):
    shutil.copytree(os.path.join(fixtures, d), os.path.join(out, "fixtures", d), dirs_exist_ok=True)
