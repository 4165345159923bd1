#!/usr/bin/env python3
"""Generate the scanner's own test cases: one file per bypass family, plus benign controls.

Python standard library only (pickle, zipfile, tarfile, zlib, struct, json); nothing here is ever
unpickled. Run from this directory: python3 gen.py. Writes gen/ and cases.json, which
TestGeneratedCases reads. Output is deterministic.
"""
import io
import json
import os
import pickle
import struct
import tarfile
import zipfile
import zlib
from collections import OrderedDict

OUT = "gen"
cases = []


def case(name, data, family, outcome, rule="", severity="", title=""):
    with open(os.path.join(OUT, name), "wb") as f:
        f.write(data)
    cases.append(dict(file=name, family=family, outcome=outcome, rule=rule, severity=severity, title=title))


def crit(name):
    return dict(outcome="findings", rule="modelscan.pickle.dangerous-import", severity="critical",
                title="dangerous import " + name)


class Reduce:
    """Pickles as a call of fn(*args) without ever being called here."""

    def __init__(self, fn, args):
        self.fn, self.args = fn, args

    def __reduce__(self):
        return (self.fn, self.args)


# Raw opcode helpers.
def su(s):  # SHORT_BINUNICODE
    b = s.encode()
    return b"\x8c" + bytes([len(b)]) + b


def bu(s):  # BINUNICODE
    b = s.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def glob(mod, name):  # GLOBAL (protocol 0)
    return b"c" + mod.encode() + b"\n" + name.encode() + b"\n"


P4 = b"\x80\x04"
P2 = b"\x80\x02"
MEMO = b"\x94"
STACK_GLOBAL = b"\x93"
TUPLE1 = b"\x85"
TUPLE2 = b"\x86"
REDUCE = b"R"
STOP = b"."


def zip_bytes(members, compression=zipfile.ZIP_STORED):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression) as z:
        for name, data in members:
            zi = zipfile.ZipInfo(name, date_time=(2024, 1, 1, 0, 0, 0))
            zi.compress_type = compression
            z.writestr(zi, data)
    return buf.getvalue()


def tar_bytes(members):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data in members:
            ti = tarfile.TarInfo(name)
            ti.size, ti.mtime = len(data), 0
            t.addfile(ti, io.BytesIO(data))
    return buf.getvalue()


def main():
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        os.remove(os.path.join(OUT, f))

    # Every protocol, benign and malicious, written by the real pickler.
    benign = {"weights": [1.0, 2.5, -3.0], "shape": (3,), "name": "layer1", "meta": OrderedDict(a=1), "raw": b"\x00\x01"}
    for p in range(0, 6):
        case(f"benign_proto{p}.pkl", pickle.dumps(benign, protocol=p), "protocol coverage", "clean")
        case(f"system_proto{p}.pkl", pickle.dumps(Reduce(os.system, ("id",)), protocol=p), "protocol coverage",
             **crit("posix.system"))
    # Stacked pickles: a benign one first, the payload second.
    case("stacked.pkl", pickle.dumps([1, 2], protocol=4) + pickle.dumps(Reduce(eval, ("1",)), protocol=4),
         "stacked pickles", **crit("builtins.eval"))

    # Builtins-only chains: getattr(__import__('os'), 'system')('id').
    chain = (P4 + su("builtins") + su("getattr") + STACK_GLOBAL +
             su("builtins") + su("__import__") + STACK_GLOBAL + su("os") + TUPLE1 + REDUCE +
             su("system") + TUPLE2 + REDUCE + su("id") + TUPLE1 + REDUCE + STOP)
    case("builtins_chain.pkl", chain, "builtins-only chains (__import__, getattr)", **crit("os.system"))
    # vars(module)['x'] = ... is a sys-module override through a namespace.
    vars_override = (P4 + su("builtins") + su("vars") + STACK_GLOBAL + su("collections") + su("OrderedDict") +
                     STACK_GLOBAL + TUPLE1 + REDUCE + su("clear") + su("x") + b"s" + STOP)
    case("vars_override.pkl", vars_override, "sys-module override", outcome="findings",
         rule="modelscan.pickle.global-mutation", severity="critical", title="mutation of an imported object")
    # BUILD on a class object sets class attributes (slot state).
    build_class = (P2 + glob("collections", "OrderedDict") + b"N}" + su("__reduce__") + su("x") + b"s" + TUPLE2 + b"b" + STOP)
    case("build_class.pkl", build_class, "sys-module override", outcome="findings",
         rule="modelscan.pickle.global-mutation", severity="critical", title="state set on an imported module or class")

    # Nested loaders.
    inner = pickle.dumps(Reduce(os.system, ("id",)), protocol=2)
    case("nested_pickle_loads.pkl", pickle.dumps(Reduce(pickle.loads, (inner,)), protocol=3), "nested loaders",
         **crit("_pickle.loads"))
    case("nested_torch_load.pkl", P4 + su("torch") + su("load") + STACK_GLOBAL + su("x.pt") + TUPLE1 + REDUCE + STOP,
         "nested loaders", **crit("torch.load"))
    case("nested_numpy_load.pkl", P2 + glob("numpy", "load") + bu("x.npy") + TUPLE1 + REDUCE + STOP,
         "nested loaders", **crit("numpy.load"))

    # Memo tricks: the name a scanner sees first is overwritten before use.
    memo_overwrite = (b"Vtorch\np0\n0VFloatStorage\np1\n0Vos\np0\n0Vsystem\np1\n0g0\ng1\n\x93(Vid\ntR.")
    case("memo_overwrite.pkl", memo_overwrite, "memo confusion", **crit("os.system"))
    # MEMOIZE numbering after sparse BINPUT keys: MEMOIZE uses len(memo), not the last key.
    memo_len = (P4 + su("torch") + b"q\x05" + su("os") + MEMO + su("system") + MEMO +
                b"h\x01h\x02" + STACK_GLOBAL + su("id") + TUPLE1 + REDUCE + STOP)
    case("memo_len.pkl", memo_len, "memo confusion", **crit("os.system"))
    # Python int() syntax in protocol-0 memo keys.
    memo_syntax = (b"Vos\np 1_0\n0Vsystem\np+11\n0g0010\ng 11 \n\x93(Vid\ntR.")
    case("memo_int_syntax.pkl", memo_syntax, "memo confusion", **crit("os.system"))
    # DUP and POP shuffle the stack around the names.
    dup = (P4 + su("os") + b"2" + b"0" + su("system") + STACK_GLOBAL + su("id") + TUPLE1 + REDUCE + STOP)
    case("dup_pop.pkl", dup, "memo confusion", **crit("os.system"))

    # Exact-module matching: dotted attribute paths and py2 names.
    case("attr_path.pkl", P4 + su("posixpath") + su("os.system") + STACK_GLOBAL + su("id") + TUPLE1 + REDUCE + STOP,
         "exact-module matching", **crit("posixpath.os.system"))
    case("attr_path_allowed_module.pkl",
         P4 + su("torch.serialization") + su("os.system") + STACK_GLOBAL + su("id") + TUPLE1 + REDUCE + STOP,
         "exact-module matching", **crit("torch.serialization.os.system"))
    case("py2_builtin.pkl", b"c__builtin__\neval\n(S'1'\ntR.", "exact-module matching", **crit("builtins.eval"))
    case("submodule.pkl", P4 + su("asyncio.subprocess") + su("create_subprocess_shell") + STACK_GLOBAL + su("id") +
         TUPLE1 + REDUCE + STOP, "exact-module matching", **crit("asyncio.subprocess.create_subprocess_shell"))
    case("dunder_globals.pkl", P4 + su("collections") + su("OrderedDict.__init__.__globals__") + STACK_GLOBAL + STOP,
         "exact-module matching", **crit("collections.OrderedDict.__init__.__globals__"))

    # Names built from string opcodes other than the plain ones.
    case("string_escape.pkl", b"cbuiltins\ngetattr\n(c__builtin__\n__import__\n(S'o\\x73'\ntRS'sy\\163tem'\ntR(S'id'\ntR.",
         "names from escaped strings", **crit("os.system"))
    case("unicode_escape.pkl", b"V\\u006fs\nV\\u0073ystem\n\x93(Vid\ntR.", "names from escaped strings", **crit("os.system"))
    case("binstring_names.pkl", P2 + b"U\x02osU\x06system\x93U\x02id\x85R.", "names from escaped strings",
         **crit("os.system"))
    # A module constant used as a name: the scanner cannot know its value.
    case("computed_name.pkl", P4 + su("string") + su("digits") + STACK_GLOBAL + su("x") + STACK_GLOBAL + STOP,
         "computed names", outcome="findings", rule="modelscan.pickle.unresolved-import", severity="critical",
         title="unresolved import")
    case("ext_opcode.pkl", P2 + b"\x82\x01)R.", "computed names", outcome="findings",
         rule="modelscan.pickle.unresolved-import", severity="critical", title="copyreg extension")
    case("inst_obj.pkl", b"(S'id'\nios\nsystem\n.", "INST/OBJ forms", **crit("os.system"))
    case("obj_opcode.pkl", P2 + b"(" + glob("os", "system") + b"S'id'\no.", "INST/OBJ forms", **crit("os.system"))
    case("newobj_ex.pkl", P4 + su("subprocess") + su("Popen") + STACK_GLOBAL + su("id") + TUPLE1 + b"}\x92" + STOP,
         "INST/OBJ forms", **crit("subprocess.Popen"))

    # Default deny: an import nobody listed is high, not clean.
    case("unverified.pkl", P4 + su("mylib.models") + su("Net") + STACK_GLOBAL + b")\x81" + STOP, "default deny",
         outcome="findings", rule="modelscan.pickle.unverified-import", severity="high", title="mylib.models.Net")

    # Limits and malformed streams: never clean, never a big allocation.
    case("huge_frame.pkl", P4 + b"\x95" + struct.pack("<Q", 1 << 32) + b"N.", "limits (frame size)",
         outcome="inconclusive", rule="modelscan.inconclusive", severity="high")
    case("huge_string.pkl", P4 + b"\x8d" + struct.pack("<Q", 1 << 40) + b"xx", "limits (string length)",
         outcome="inconclusive", rule="modelscan.inconclusive", severity="high")
    case("truncated.pkl", P4 + su("collections") + su("OrderedDict") + STACK_GLOBAL, "truncated pickle",
         outcome="inconclusive", rule="modelscan.inconclusive", severity="high")

    # PyTorch ZIP: every member sniffed, not only data.pkl.
    torch_pkl = (P2 + glob("torch._utils", "_rebuild_tensor_v2") + b"((X\x07\x00\x00\x00storage" +
                 glob("torch", "FloatStorage") + bu("0") + bu("cpu") + b"K\x02tQK\x00K\x02\x85K\x01\x85\x89" +
                 glob("collections", "OrderedDict") + b")Rtq\x00R.")
    case("torch_zip_benign.pt", zip_bytes([("m/data.pkl", torch_pkl), ("m/data/0", b"\x00" * 8), ("m/version", b"3\n")]),
         "PyTorch zip control", "clean")
    case("torch_zip_extra_member.pt", zip_bytes([("m/data.pkl", torch_pkl), ("m/data/0", b"\x00" * 8),
                                                 ("m/version", b"3\n"), ("m/extra/config.txt", pickle.dumps(Reduce(eval, ("1",)), protocol=2))]),
         "every ZIP member sniffed", **crit("builtins.eval"))
    case("torch_zip_short_storage.pt", zip_bytes([("m/data.pkl", torch_pkl), ("m/data/0", b"\x00" * 4)]),
         "tensor bounds", outcome="findings", rule="modelscan.torch.storage-bounds", severity="high",
         title="smaller than declared")
    case("torch_zip_deflated.pt", zip_bytes([("m/data.pkl", pickle.dumps(Reduce(os.system, ("id",)), protocol=2))],
                                            zipfile.ZIP_DEFLATED), "deflated members", **crit("posix.system"))
    # Bad CRC: Python's zipfile refuses the member, PyTorch's reader may not.
    z = bytearray(zip_bytes([("archive/data.pkl", pickle.dumps(Reduce(eval, ("1",)), protocol=2))]))
    for sig, at in ((b"PK\x03\x04", 14), (b"PK\x01\x02", 16)):
        i = bytes(z).index(sig)
        z[i + at:i + at + 4] = b"\xde\xad\xbe\xef"
    case("zip_bad_crc.pt", bytes(z), "ZIP bad CRC", outcome="findings", rule="modelscan.zip.bad-crc", severity="high",
         title="CRC")
    case("zip_bad_crc_payload.pt", bytes(z), "ZIP bad CRC", **crit("builtins.eval"))
    # A local entry the central directory does not list.
    good = zip_bytes([("archive/data.pkl", pickle.dumps([1], protocol=2))])
    hidden = zip_bytes([("archive/evil.pkl", pickle.dumps(Reduce(eval, ("1",)), protocol=2))])
    hidden_local = hidden[:hidden.index(b"PK\x01\x02")]
    cd = good.index(b"PK\x01\x02")
    body = good[:cd] + hidden_local
    tail = bytearray(good[cd:])
    eocd = bytes(tail).index(b"PK\x05\x06")
    tail[eocd + 16:eocd + 20] = struct.pack("<I", len(body))
    case("zip_hidden_local.zip", body + bytes(tail), "ZIP local-only entries", outcome="findings",
         rule="modelscan.zip.hidden-entry", severity="high", title="missing from the central directory")
    case("zip_hidden_local_payload.zip", body + bytes(tail), "ZIP local-only entries", **crit("builtins.eval"))
    # Duplicate names: readers disagree on which copy they load.
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for data in (pickle.dumps([1], protocol=2), pickle.dumps(Reduce(eval, ("1",)), protocol=2)):
            zi = zipfile.ZipInfo("archive/data.pkl", date_time=(2024, 1, 1, 0, 0, 0))
            with_warn = zf.writestr
            import warnings
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                with_warn(zi, data)
    case("zip_duplicate.zip", buf.getvalue(), "ZIP duplicate names", outcome="findings",
         rule="modelscan.zip.duplicate-name", severity="high", title="duplicate")
    # Polyglot: a benign pickle with a ZIP appended; zipfile finds the ZIP from the end.
    case("polyglot.pkl", pickle.dumps([1], protocol=2) + zip_bytes([("a/data.pkl", pickle.dumps(Reduce(eval, ("1",)), protocol=2))]),
         "faked magic / polyglot", **crit("builtins.eval"))
    # ZIP inside ZIP.
    case("zip_in_zip.zip", zip_bytes([("inner.zip", zip_bytes([("x/data.pkl", pickle.dumps(Reduce(eval, ("1",)), protocol=2))]))]),
         "archives in archives", **crit("builtins.eval"))
    # Extension-based dispatch: a pickle named .txt inside, a pickle named .safetensors outside.
    case("pickle_as.safetensors", pickle.dumps(Reduce(eval, ("1",)), protocol=4), "extension-based dispatch",
         **crit("builtins.eval"))

    # Legacy PyTorch, tar variant: storages and tensors interleave pickles and raw records.
    storages = pickle.dumps(1, protocol=2) + (P2 + b"(" + bu("0") + bu("cpu") + glob("torch", "FloatStorage") + b"t.") + \
        struct.pack("<q", 2) + b"\x00" * 8
    tensors = pickle.dumps(1, protocol=2) + (P2 + b"(" + bu("t0") + bu("0") + glob("torch", "FloatTensor") + b"t.") + \
        struct.pack("<ii", 1, 0) + struct.pack("<qqq", 2, 1, 0)
    sys_info = pickle.dumps({"protocol_version": 1001, "little_endian": True}, protocol=2)
    case("torch_tar_benign.pt", tar_bytes([("sys_info", sys_info), ("pickle", pickle.dumps([1], protocol=2)),
                                           ("storages", storages), ("tensors", tensors)]), "tar legacy control", "clean")
    case("torch_tar_malicious.pt", tar_bytes([("sys_info", sys_info), ("pickle", pickle.dumps(Reduce(os.system, ("id",)), protocol=2)),
                                              ("storages", storages), ("tensors", tensors)]), "tar-format legacy PyTorch",
         **crit("posix.system"))
    evil_storages = pickle.dumps(1, protocol=2) + pickle.dumps(Reduce(eval, ("1",)), protocol=2)
    case("torch_tar_storages.pt", tar_bytes([("sys_info", sys_info), ("pickle", pickle.dumps([1], protocol=2)),
                                             ("storages", evil_storages)]), "tar-format legacy PyTorch", **crit("builtins.eval"))
    # Legacy stacked format with a payload after the storages.
    magic = P2 + b"\x8a\x0a" + (0x1950A86A20F9469CFC6C).to_bytes(10, "little") + STOP
    legacy = (magic + pickle.dumps(1001, protocol=2) + sys_info + torch_pkl.replace(bu("0"), bu("k0")) +
              pickle.dumps(["k0"], protocol=2) + struct.pack("<q", 2) + b"\x00" * 8)
    case("torch_legacy_benign.pt", legacy, "legacy control", "clean")
    case("torch_legacy_trailing.pt", legacy + pickle.dumps(Reduce(eval, ("1",)), protocol=2), "legacy trailing payload",
         **crit("builtins.eval"))

    # NumPy: object arrays are pickles; plain arrays are size-checked.
    def npy(descr, shape, data):
        h = "{'descr': %r, 'fortran_order': False, 'shape': %r, }" % (descr, shape)
        h = h + " " * (63 - (10 + len(h)) % 64) + "\n"
        return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(h)) + h.encode() + data

    case("object_array.npy", npy("|O", (1,), pickle.dumps(Reduce(os.system, ("id",)), protocol=3)), ".npy object arrays",
         **crit("posix.system"))
    case("float_array.npy", npy("<f8", (2, 2), b"\x00" * 32), ".npy control", "clean")
    case("short_array.npy", npy("<f8", (2, 2), b"\x00" * 16), ".npy bounds", outcome="findings",
         rule="modelscan.numpy.malformed", severity="high", title="shorter")
    case("arrays.npz", zip_bytes([("a.npy", npy("<i4", (3,), b"\x00" * 12)),
                                  ("b.npy", npy("|O", (1,), pickle.dumps(Reduce(eval, ("1",)), protocol=3)))]),
         ".npz", **crit("builtins.eval"))

    # joblib: raw array bytes follow each NumpyArrayWrapper; a payload after them must be found.
    wrapper = (P4 + su("joblib.numpy_pickle") + su("NumpyArrayWrapper") + STACK_GLOBAL + b")\x81" + b"}(" +
               su("subclass") + su("numpy") + su("ndarray") + STACK_GLOBAL + su("shape") + b"K\x03" + TUPLE1 +
               su("order") + su("C") + su("dtype") + su("numpy") + su("dtype") + STACK_GLOBAL + su("f8") + b"\x89\x88" +
               b"\x87R" + b"(K\x03" + su("<") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb" +
               su("allow_mmap") + b"\x88" + su("numpy_array_alignment_bytes") + b"K\x10" + b"ub")
    array = b"\x03" + b"\xff" * 3 + b"\x80\x02" * 12  # padding byte, padding, 24 bytes of float data
    joblib_benign = wrapper + array + STOP
    joblib_evil = wrapper + array + b"0" + su("posix") + su("system") + STACK_GLOBAL + su("id") + TUPLE1 + REDUCE + STOP
    case("joblib_benign.joblib", joblib_benign, "joblib control", "clean")
    case("joblib_after_array.joblib", joblib_evil, "joblib (payload after raw array bytes)", **crit("posix.system"))
    case("joblib_zlib.joblib", zlib.compress(joblib_evil), "joblib compressed", **crit("posix.system"))

    # Keras.
    def keras_zip(layers):
        cfg = {"module": "keras", "class_name": "Sequential", "config": {"name": "seq", "layers": layers}}
        return zip_bytes([("metadata.json", json.dumps({"keras_version": "3.3.3"}).encode()),
                          ("config.json", json.dumps(cfg).encode()), ("model.weights.h5", b"\x89HDF\r\n\x1a\n" + b"\x00" * 64)])

    dense = {"module": "keras.layers", "class_name": "Dense", "config": {"name": "d", "units": 2}}
    lam = {"module": "keras.layers", "class_name": "Lambda", "config": {"name": "l", "function": {
        "class_name": "__lambda__", "config": {"code": "4wEAAAAAAAAA", "defaults": None, "closure": None}}}}
    custom = {"module": "evil.layers", "class_name": "Backdoor", "registered_name": "Backdoor", "config": {"name": "b"}}
    nested = {"module": "keras", "class_name": "Sequential", "config": {"name": "inner", "layers": [lam]}}
    case("keras_benign.keras", keras_zip([dense]), "Keras control", "clean")
    case("keras_lambda.keras", keras_zip([dense, lam]), "Keras Lambda", outcome="findings",
         rule="modelscan.keras.lambda-layer", severity="critical", title="Lambda")
    case("keras_custom.keras", keras_zip([custom]), "Keras custom module", outcome="findings",
         rule="modelscan.keras.custom-object", severity="high", title="evil.layers")
    case("keras_nested.keras", keras_zip([nested]), "Keras nested models", outcome="findings",
         rule="modelscan.keras.lambda-layer", severity="critical", title="Lambda")
    model_config = json.dumps({"class_name": "Sequential", "config": {"name": "s", "layers": [lam]}}).encode()
    case("keras_lambda.h5", b"\x89HDF\r\n\x1a\n" + b"\x00" * 56 + b"model_config\x00" + model_config + b"\x00" * 32,
         "Keras HDF5 Lambda", outcome="findings", rule="modelscan.keras.lambda-layer", severity="critical", title="Lambda")

    # safetensors.
    def st(header, data):
        h = json.dumps(header, separators=(",", ":")).encode()
        return struct.pack("<Q", len(h)) + h + data

    t = {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}
    case("benign.safetensors", st({"w": t, "__metadata__": {"format": "pt"}}, b"\x00" * 8), "safetensors control", "clean")
    case("overlap.safetensors", st({"a": t, "b": t}, b"\x00" * 8), "safetensors overlapping offsets",
         outcome="findings", rule="modelscan.safetensors.malformed", severity="high", title="overlap")
    case("oob.safetensors", st({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, b"\x00" * 8),
         "safetensors out-of-bounds offsets", outcome="findings", rule="modelscan.safetensors.malformed", severity="high",
         title="past the end")
    case("shape_mismatch.safetensors", st({"w": {"dtype": "F64", "shape": [2], "data_offsets": [0, 8]}}, b"\x00" * 8),
         "safetensors dtype/shape vs bytes", outcome="findings", rule="modelscan.safetensors.malformed", severity="high",
         title="do not match")
    case("header_len.safetensors", struct.pack("<Q", 1 << 40) + b"{}", "safetensors declared length",
         outcome="findings", rule="modelscan.safetensors.malformed", severity="high", title="header length")
    dup = b'{"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"w":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}'
    case("duplicate_key.safetensors", struct.pack("<Q", len(dup)) + dup + b"\x00" * 8, "safetensors JSON strictness",
         outcome="findings", rule="modelscan.safetensors.malformed", severity="high", title="strict JSON")
    case("metadata.safetensors", st({"w": t, "__metadata__": {"note": "__import__('os').system('id')"}}, b"\x00" * 8),
         "safetensors suspicious metadata", outcome="findings", rule="modelscan.safetensors.suspicious-metadata",
         severity="medium", title="looks like code")

    # GGUF.
    def gs(s):
        b = s.encode()
        return struct.pack("<Q", len(b)) + b

    def gguf(template, tensor_bytes=32):
        kv = [gs("general.architecture") + struct.pack("<I", 8) + gs("llama"),
              gs("tokenizer.chat_template") + struct.pack("<I", 8) + gs(template)]
        hdr = b"GGUF" + struct.pack("<IQQ", 3, 1, len(kv)) + b"".join(kv)
        hdr += gs("w") + struct.pack("<I", 1) + struct.pack("<Q", 8) + struct.pack("<I", 0) + struct.pack("<Q", 0)
        hdr += b"\x00" * ((32 - len(hdr) % 32) % 32)
        return hdr + b"\x00" * tensor_bytes

    case("benign.gguf", gguf("{% for m in messages %}{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"), "GGUF control", "clean")
    case("template_injection.gguf", gguf("{{ ''.__class__.__mro__[1].__subclasses__() }}"), "GGUF chat template injection",
         outcome="findings", rule="modelscan.gguf.template-injection", severity="critical", title="template-injection")
    case("truncated.gguf", gguf("{{ x }}", tensor_bytes=8), "GGUF header sanity", outcome="findings",
         rule="modelscan.gguf.malformed", severity="high", title="past the end")

    # Protobuf: TensorFlow SavedModel and ONNX, written field by field.
    def varint(n):
        out = b""
        while True:
            b = n & 0x7F
            n >>= 7
            out += bytes([b | (0x80 if n else 0)])
            if not n:
                return out

    def fld(num, payload):
        return varint(num << 3 | 2) + varint(len(payload)) + payload

    def fint(num, v):
        return varint(num << 3) + varint(v)

    def saved_model(op):
        node = fld(1, b"n1") + fld(2, op.encode())
        graph = fld(1, node)
        return fint(1, 1) + fld(2, fld(1, fld(1, b"serve")) + fld(2, graph))

    case("saved_model_benign.pb", saved_model("MatMul"), "SavedModel control", "clean")
    case("saved_model_readfile.pb", saved_model("ReadFile"), "SavedModel risky ops", outcome="findings",
         rule="modelscan.savedmodel.risky-op", severity="high", title="ReadFile")

    def onnx(domain, location):
        tensor = fld(8, b"w") + fint(14, 1) + fld(13, fld(1, b"location") + fld(2, location.encode()))
        node = fld(1, b"x") + fld(2, b"y") + fld(4, b"Relu") + fld(7, domain.encode())
        graph = fld(1, node) + fld(2, b"g") + fld(5, tensor)
        return fint(1, 8) + fld(2, b"test") + fld(7, graph) + fld(8, fld(1, domain.encode()) + fint(2, 1))

    case("onnx_benign.onnx", onnx("", "weights.bin"), "ONNX control", "clean")
    case("onnx_external_escape.onnx", onnx("", "../../../etc/passwd"), "ONNX external data escape",
         outcome="findings", rule="modelscan.onnx.external-data-path", severity="high", title="leaves the model directory")
    case("onnx_custom_domain.onnx", onnx("com.evil", "weights.bin"), "ONNX custom domains", outcome="findings",
         rule="modelscan.onnx.custom-domain", severity="medium", title="com.evil")

    with open("cases.json", "w") as f:
        json.dump(cases, f, indent=1, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    main()
