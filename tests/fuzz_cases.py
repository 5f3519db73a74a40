"""Fuzz cases for every reader: seeds, deterministic mutations, and the read a user runs.

Case `i` of format `f` is fully determined by (f, i): `random.Random(f"{f}:{i}")` picks a
seed and its mutations (string seeds are hashed with SHA-512, not `hash()`). Seeds are the
genuine files of the shared folder (`SEED_FILES`) plus files made from them here: a V0
prototxt of the tiny net, ASCII re-encodings of binary `.t7` files, an `.onnx` export and
a converted folder. `Format.read` does what the CLI does with a model (open it, print its
layer table) or what the zoo and the dreamer do with a mean file or an image; it may raise
only the format's own error (`Format.error`), whose message must be one line. `CHECKS`
holds a format that checks the fuzzer itself (cases that crash, hang or raise).
"""

from __future__ import annotations

import math
import os
import re
import signal
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from random import Random
from typing import Any

SHARED = Path(os.environ.get("DREAMZOO_SHARED", Path(__file__).resolve().parents[2] / "shared")
              ).resolve()
T7_LAYERS = "reference/torch7/layers"
T7_SMALL = ["models/torch7/torchfile_tests", T7_LAYERS]
SEED_FILES = {  # per format, the shared files (or folders of them) its seeds come from
    "caffemodel": ["models/tiny", "models/tiny_inception", "models/cifar10_quick_v1",
                   "models/lenet_mnist"],
    "prototxt": ["models/tiny", "models/tiny_inception", "models/cifar10_quick_v1"],
    "mean": ["models/places205_alexnet/places205CNN_mean.binaryproto",
             "models/alexnet_places365/places365CNN_mean.binaryproto",
             "models/vgg_cnn_s/VGG_mean.binaryproto"],
    "t7-binary": [*T7_SMALL, "reference/torch7/tiny_caffe_v1.t7"],
    "t7-ascii": [*T7_SMALL, "models/torch7/face-detector_model.ascii.net"],
    "onnx": ["models/tiny", "models/tiny_inception"],
    "folder": ["models/tiny", "models/tiny_inception"],
    "png": ["models/cifar10_quick_v1", "models/lenet_mnist/samples"],
    "jpeg": ["models/_common/fish-bike.jpg", "models/_common/cat.jpg"],
}
CAFFE_NETS = {  # shared folder -> (prototxt, caffemodel)
    "tiny": ("deploy.prototxt", "tiny.caffemodel"),
    "tiny_inception": ("deploy.prototxt", "tiny_inception.caffemodel"),
    "cifar10_quick_v1": ("deploy_v1.prototxt", "cifar10_quick_iter_5000.caffemodel"),
    "lenet_mnist": ("mnist_deploy.prototxt", "lenet_iter_10000.caffemodel"),
}
# shared/models/tiny/deploy.prototxt in the V0 layout (layers { layer { ... } }).
TINY_V0 = """name: "TinyRef"
input: "data"
input_dim: 1 input_dim: 3 input_dim: 35 input_dim: 35
layers { layer { name: "conv1" type: "conv" num_output: 8 kernelsize: 5 stride: 2 }
  bottom: "data" top: "conv1" }
layers { layer { name: "relu1" type: "relu" } bottom: "conv1" top: "conv1" }
layers { layer { name: "pool1" type: "pool" pool: MAX kernelsize: 3 stride: 2 }
  bottom: "conv1" top: "pool1" }
layers { layer { name: "norm1" type: "lrn" local_size: 5 alpha: 0.0001 beta: 0.75 }
  bottom: "pool1" top: "norm1" }
layers { layer { name: "conv2" type: "conv" num_output: 12 kernelsize: 3 pad: 1 group: 2 }
  bottom: "norm1" top: "conv2" }
layers { layer { name: "relu2" type: "relu" } bottom: "conv2" top: "conv2" }
layers { layer { name: "fc3" type: "innerproduct" num_output: 10 } bottom: "conv2" top: "fc3" }
layers { layer { name: "prob" type: "softmax" } bottom: "fc3" top: "prob" }
"""

Files = dict[str, bytes]  # a case: file name (relative to the case folder) -> content


@dataclass
class Seed:
    files: Files
    mutable: list[str]  # the files mutations may change


@dataclass
class Format:
    seeds: Callable[[Path], list[Seed]]
    mutate: Callable[[Random, bytes, str], bytes]  # (rng, content, file name) -> content
    read: Callable[[Path], Any]  # reads a case folder
    error: Callable[[], type[Exception]]  # the one error the read may raise


# --- byte-level mutations --------------------------------------------------------------------

INTERESTING_INTS = [0, 1, -1, 2, 3, 255, 256, 65535, 100000, 2**31 - 1, -2**31, 2**32 - 1,
                    2**40, 2**62, 2**63 - 1, -2**63]


def flip_bytes(rng: Random, data: bytearray) -> None:
    for _ in range(rng.randint(1, 8)):
        data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)


def set_byte(rng: Random, data: bytearray) -> None:
    data[rng.randrange(len(data))] = rng.choice([0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)])


def truncate(rng: Random, data: bytearray) -> None:
    del data[rng.randrange(len(data)):]


def delete_chunk(rng: Random, data: bytearray) -> None:
    start = rng.randrange(len(data))
    del data[start:start + rng.randint(1, 64)]


def splice(rng: Random, data: bytearray) -> None:
    """Copy a chunk of the file over or into another place of it."""
    start = rng.randrange(len(data))
    chunk = bytes(data[start:start + rng.randint(1, 256)])
    at = rng.randrange(len(data))
    if rng.random() < 0.5:
        data[at:at] = chunk
    else:
        data[at:at + len(chunk)] = chunk


def put_integer(rng: Random, data: bytearray) -> None:
    """An interesting integer (a size, a count, an index) as 4 or 8 little-endian bytes,
    at an aligned offset, where a length or count field likely is."""
    value, width = rng.choice(INTERESTING_INTS), rng.choice([4, 8])
    value %= 1 << (8 * width)
    at = rng.randrange(0, max(1, len(data) - width + 1), width if len(data) > 64 else 1)
    data[at:at + width] = value.to_bytes(width, "little")


def put_varint(rng: Random, data: bytearray) -> None:
    """A protobuf varint of a huge value (a length or a count) inserted somewhere."""
    value = rng.choice([2**31 - 1, 2**32, 2**63 - 1, 2**64 - 1])
    encoded = bytearray()
    while value > 0x7F:
        encoded.append(0x80 | (value & 0x7F))
        value >>= 7
    encoded.append(value)
    at = rng.randrange(len(data))
    data[at:at] = encoded


BYTE_MUTATIONS = [flip_bytes, set_byte, truncate, delete_chunk, splice, put_integer, put_varint]


def mutate_bytes(rng: Random, content: bytes, name: str = "") -> bytes:
    data = bytearray(content)
    for _ in range(1 + (rng.random() < 0.3) * rng.randint(1, 3)):
        if data:
            rng.choice(BYTE_MUTATIONS)(rng, data)
    return bytes(data)


# --- text-level mutations (prototxt, JSON, ASCII .t7) ---------------------------------------

NUMBER = re.compile(rb"-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?")
WORD = re.compile(rb"[A-Za-z_][\w.]*")
INTERESTING_NUMBERS = [b"0", b"-1", b"1", b"2", b"3", b"7", b"100000", b"2147483647",
                       b"2147483648", b"4294967296", b"9223372036854775808",
                       b"99999999999999999999", b"1e308", b"-0", b"0.5", b"nan", b"inf",
                       b"1e-45", b"-2147483649"]


def change_number(rng: Random, text: bytearray) -> None:
    m = NUMBER.search(text, rng.randrange(len(text))) or NUMBER.search(text)
    if m:
        text[m.start():m.end()] = rng.choice(INTERESTING_NUMBERS)


def swap_word(rng: Random, text: bytearray) -> None:
    """Replace a word (a type, a field, a class name) by another word of the same text."""
    m = WORD.search(text, rng.randrange(len(text))) or WORD.search(text)
    other = WORD.search(text, rng.randrange(len(text))) or m
    if m:
        text[m.start():m.end()] = other.group()


def _lines_op(op: Callable[[Random, list[bytes]], None]) -> Callable[[Random, bytearray], None]:
    def mutate(rng: Random, text: bytearray) -> None:
        lines = bytes(text).split(b"\n")
        op(rng, lines)
        text[:] = b"\n".join(lines)
    mutate.__name__ = op.__name__
    return mutate


@_lines_op
def drop_line(rng: Random, lines: list[bytes]) -> None:
    del lines[rng.randrange(len(lines))]


@_lines_op
def duplicate_line(rng: Random, lines: list[bytes]) -> None:
    i = rng.randrange(len(lines))
    lines.insert(rng.randrange(len(lines) + 1), lines[i])


@_lines_op
def swap_lines(rng: Random, lines: list[bytes]) -> None:
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    lines[i], lines[j] = lines[j], lines[i]


def insert_punctuation(rng: Random, text: bytearray) -> None:
    text.insert(rng.randrange(len(text) + 1), rng.choice(b'{}[]:",\n -#'))


TEXT_MUTATIONS = [change_number, change_number, change_number, swap_word, drop_line,
                  duplicate_line, swap_lines, insert_punctuation]


def mutate_text(rng: Random, content: bytes, name: str = "") -> bytes:
    """Mostly text mutations; a fifth of the cases get a byte mutation on top."""
    text = bytearray(content)
    for _ in range(1 + (rng.random() < 0.3) * rng.randint(1, 3)):
        if text:
            rng.choice(TEXT_MUTATIONS)(rng, text)
    return mutate_bytes(rng, bytes(text)) if rng.random() < 0.2 else bytes(text)


# --- protobuf field mutations (caffemodel, binaryproto, ONNX) -------------------------------

def _scalar_values(rng: Random, field: Any, strings: list[Any]) -> list[Any]:
    kind = field.cpp_type
    if kind == field.CPPTYPE_ENUM:
        return [v.number for v in field.enum_type.values]
    if kind == field.CPPTYPE_BOOL:
        return [True, False]
    if kind in (field.CPPTYPE_FLOAT, field.CPPTYPE_DOUBLE):
        return [0.0, -1.0, 0.5, 1e-45, 1e38, math.inf, -math.inf, math.nan]
    if kind == field.CPPTYPE_STRING:
        if field.type == field.TYPE_BYTES:
            return [b"", rng.randbytes(rng.randint(1, 64))]
        return ["", "x", *strings[:1]]
    bits = 32 if kind in (field.CPPTYPE_INT32, field.CPPTYPE_UINT32) else 64
    signed = kind in (field.CPPTYPE_INT32, field.CPPTYPE_INT64)
    low, high = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
    return [v for v in INTERESTING_INTS if low <= v <= high] + [low, high]


def _messages(message: Any, found: list[Any]) -> list[Any]:
    found.append(message)
    for field, value in message.ListFields():
        if field.cpp_type == field.CPPTYPE_MESSAGE:
            for child in (value if field.is_repeated else [value]):
                _messages(child, found)
    return found


def mutate_message(rng: Random, message: Any) -> None:
    """One change to a random message of the tree: set a scalar field (set or not) to an
    interesting value, cut a repeated field short, or drop or duplicate a repeated entry."""
    target = rng.choice(_messages(message, []))
    fields = target.DESCRIPTOR.fields
    if not fields:
        return
    field = rng.choice(fields)
    value = getattr(target, field.name)
    if field.is_repeated:
        if len(value) and rng.random() < 0.6:
            i = rng.randrange(len(value))
            if rng.random() < 0.5:
                del value[i:]
            elif field.cpp_type == field.CPPTYPE_MESSAGE:
                value.add().CopyFrom(value[i])
            else:
                value[i] = rng.choice(_scalar_values(rng, field, []))
        elif field.cpp_type != field.CPPTYPE_MESSAGE:
            value.append(rng.choice(_scalar_values(rng, field, [])))
        return
    if field.cpp_type == field.CPPTYPE_MESSAGE:
        if rng.random() < 0.5:
            target.ClearField(field.name)
        else:
            value.SetInParent()
        return
    strings = [getattr(m, "name", "") for m in _messages(message, []) if getattr(m, "name", "")]
    rng.shuffle(strings)  # another entry's name: duplicate names, dangling references
    setattr(target, field.name, rng.choice(_scalar_values(rng, field, strings)))


def protobuf_mutator(message_class: Callable[[], Any]) -> Callable[[Random, bytes, str], bytes]:
    """Half the cases: parse, change fields (`mutate_message`), serialize; the other half
    and on top of a few: byte mutations."""
    def mutate(rng: Random, content: bytes, name: str = "") -> bytes:
        if rng.random() < 0.5:
            return mutate_bytes(rng, content)
        message = message_class()
        message.ParseFromString(content)
        for _ in range(rng.randint(1, 3)):
            mutate_message(rng, message)
        data = message.SerializeToString()
        return mutate_bytes(rng, data) if rng.random() < 0.1 else data
    return mutate


# --- format-specific mutations ----------------------------------------------------------------

def fix_png_crcs(data: bytes) -> bytes:
    """Recompute each chunk's CRC, so that a mutation reaches the decoder."""
    out, pos = bytearray(data), 8
    while pos + 12 <= len(out):
        end = pos + 8 + int.from_bytes(out[pos:pos + 4], "big")
        if end + 4 > len(out):
            break
        out[end:end + 4] = zlib.crc32(out[pos + 4:end]).to_bytes(4, "big")
        pos = end + 4
    return bytes(out)


def mutate_png(rng: Random, content: bytes, name: str = "") -> bytes:
    data = bytearray(mutate_bytes(rng, content))
    if rng.random() < 0.2 and len(data) >= 24:  # IHDR width or height
        at = rng.choice([16, 20])
        data[at:at + 4] = (rng.choice(INTERESTING_INTS) % (1 << 32)).to_bytes(4, "big")
    return fix_png_crcs(bytes(data)) if rng.random() < 0.7 else bytes(data)


def mutate_safetensors(rng: Random, content: bytes) -> bytes:
    """Byte mutations, or text mutations of the JSON header (its length kept right)."""
    size = int.from_bytes(content[:8], "little")
    if rng.random() < 0.5 or size > len(content) - 8:
        return mutate_bytes(rng, content)
    header = mutate_text(rng, content[8:8 + size])
    return len(header).to_bytes(8, "little") + header + content[8 + size:]


def mutate_folder(rng: Random, content: bytes, name: str) -> bytes:
    return mutate_text(rng, content) if name.endswith(".json") else \
        mutate_safetensors(rng, content)


def mutate_t7(rng: Random, content: bytes, name: str = "") -> bytes:
    return mutate_text(rng, content) if rng.random() < 0.6 else mutate_bytes(rng, content)


# --- seeds ------------------------------------------------------------------------------------

def shared_files(entry: str, pattern: str) -> list[Path]:
    path = SHARED / entry
    return sorted(path.glob(pattern)) if path.is_dir() else [path]


def caffe_seed(net: str, prototxt: bytes | None = None, mutable: str = "") -> Seed:
    names = CAFFE_NETS[net]
    files = {"deploy.prototxt": prototxt or (SHARED / "models" / net / names[0]).read_bytes(),
             "weights.caffemodel": (SHARED / "models" / net / names[1]).read_bytes()}
    return Seed(files, [mutable])


def caffemodel_seeds(scratch: Path) -> list[Seed]:
    return [caffe_seed(net, mutable="weights.caffemodel") for net in CAFFE_NETS]


def prototxt_seeds(scratch: Path) -> list[Seed]:
    """V2 (tiny, tiny_inception), V1 (cifar10_quick) and V0 (tiny, written here)."""
    seeds = [caffe_seed(net, mutable="deploy.prototxt")
             for net in ("tiny", "tiny_inception", "cifar10_quick_v1")]
    return seeds + [caffe_seed("tiny", TINY_V0.encode(), "deploy.prototxt")]


def single_file_seeds(name: str, paths: list[Path]) -> list[Seed]:
    return [Seed({name: path.read_bytes()}, [name]) for path in paths]


def mean_seeds(scratch: Path) -> list[Seed]:
    return single_file_seeds("mean.binaryproto", [SHARED / f for f in SEED_FILES["mean"]])


def small_t7_files() -> list[Path]:
    """torchfile's test files and Torch7's single-module files (not their data tensors)."""
    return [path for entry in T7_SMALL for path in shared_files(entry, "*.t7")
            if not re.search(r"_(input|output|gradinput)\.t7$", path.name)]


def t7_binary_seeds(scratch: Path) -> list[Seed]:
    files = small_t7_files() + [SHARED / "reference/torch7/tiny_caffe_v1.t7"]
    return single_file_seeds("model.t7", files)


def t7_ascii_seeds(scratch: Path) -> list[Seed]:
    """The genuine ASCII net, and ASCII re-encodings of the small binary files."""
    seeds = single_file_seeds("model.t7", [SHARED / "models/torch7/face-detector_model.ascii.net"])
    return seeds + [Seed({"model.t7": ascii_t7(path.read_bytes())}, ["model.t7"])
                    for path in small_t7_files()]


def tiny_networks() -> list[Any]:
    import converters
    return [converters.load_caffe(SHARED / "models" / net / CAFFE_NETS[net][0],
                                  SHARED / "models" / net / CAFFE_NETS[net][1])
            for net in ("tiny", "tiny_inception")]


def onnx_seeds(scratch: Path) -> list[Seed]:
    from converters.onnx.export import to_onnx
    return [Seed({"model.onnx": to_onnx(net).SerializeToString()}, ["model.onnx"])
            for net in tiny_networks()]


def folder_seeds(scratch: Path) -> list[Seed]:
    import converters
    seeds = []
    for net in tiny_networks():
        folder = converters.save(net, scratch / net.name)
        files = {f"net/{p.name}": p.read_bytes() for p in sorted(folder.iterdir())}
        seeds.append(Seed(files, sorted(files)))
    return seeds


def png_seeds(scratch: Path) -> list[Seed]:
    paths = [p for entry in SEED_FILES["png"] for p in shared_files(entry, "*.png")]
    return single_file_seeds("image.png", paths)


def jpeg_seeds(scratch: Path) -> list[Seed]:
    return single_file_seeds("image.jpg", [SHARED / f for f in SEED_FILES["jpeg"]])


def ascii_t7(binary: bytes) -> bytes:
    """The same objects in Torch7's ASCII encoding: the repo's binary reader reads the
    file, and each primitive it reads is written down as text (one write a line)."""
    import io

    from converters.torch7.t7file import BinaryReader

    class Recorder(BinaryReader):
        def __init__(self) -> None:
            super().__init__(io.BytesIO(binary), len(binary))
            self.written: list[tuple[int, bytes]] = []  # (file position, ASCII text)

        def seek(self, position: int) -> None:  # a re-read replaces what it wrote
            self.written = [w for w in self.written if w[0] < position]
            super().seek(position)

        def record(self, read: Callable[..., Any], text: Callable[[Any], bytes], *args: Any):
            start = self.tell()
            value = read(*args)
            self.written.append((start, text(value) + b"\n"))
            return value

        def read_int(self) -> int:
            return self.record(super().read_int, lambda v: b"%d" % v)

        def read_long(self) -> int:
            return self.record(super().read_long, lambda v: b"%d" % v)

        def read_double(self) -> float:
            return self.record(super().read_double, lambda v: repr(v).encode())

        def read_long_array(self, count: int) -> list[int]:
            return self.record(super().read_long_array, numbers, count)

        def read_raw(self, count: int) -> bytes:
            return self.record(super().read_raw, bytes, count)

        def read_values(self, count: int, dtype: type) -> Any:
            def text(values: Any) -> bytes:
                return values.tobytes() if values.itemsize == 1 else numbers(values.tolist())
            return self.record(super().read_values, text, count, dtype)

    def numbers(values: list[Any]) -> bytes:
        return b" ".join(repr(v).encode() for v in values)

    recorder = Recorder()
    recorder.read_obj()
    return b"".join(text for _, text in recorder.written)


# --- the reads, and the formats ---------------------------------------------------------------

def read_model(*paths: Path) -> str:
    """What `python -m converters MODEL...` does before writing: open it, make its table."""
    from converters.store import open_model
    return open_model([str(p) for p in paths]).layer_table()


def read_mean(folder: Path) -> Any:
    from converters.caffe import mean_values
    return mean_values(folder / "mean.binaryproto")


def read_image(folder: Path) -> Any:
    from converters.images import load_rgb
    return load_rgb(next(folder.glob("image.*")))


def conversion_error() -> type[Exception]:
    from converters.spec import ConversionError
    return ConversionError


def image_error() -> type[Exception]:
    from converters.images import ImageError
    return ImageError


def read_caffe_case(folder: Path) -> str:
    return read_model(folder / "deploy.prototxt", folder / "weights.caffemodel")


def protobuf(name: str) -> Callable[[], Any]:
    def make() -> Any:
        if name == "ModelProto":
            import onnx
            return onnx.ModelProto()
        from converters.caffe import proto
        return getattr(proto, name)()
    return make


FORMATS: dict[str, Format] = {
    "caffemodel": Format(caffemodel_seeds, protobuf_mutator(protobuf("NetParameter")),
                         read_caffe_case, conversion_error),
    "prototxt": Format(prototxt_seeds, mutate_text, read_caffe_case, conversion_error),
    "mean": Format(mean_seeds, protobuf_mutator(protobuf("BlobProto")), read_mean,
                   conversion_error),
    "t7-binary": Format(t7_binary_seeds, mutate_bytes, lambda d: read_model(d / "model.t7"),
                        conversion_error),
    "t7-ascii": Format(t7_ascii_seeds, mutate_t7, lambda d: read_model(d / "model.t7"),
                       conversion_error),
    "onnx": Format(onnx_seeds, protobuf_mutator(protobuf("ModelProto")),
                   lambda d: read_model(d / "model.onnx"), conversion_error),
    "folder": Format(folder_seeds, mutate_folder, lambda d: read_model(d / "net"),
                     conversion_error),
    "png": Format(png_seeds, mutate_png, read_image, image_error),
    "jpeg": Format(jpeg_seeds, mutate_bytes, read_image, image_error),
}


# --- a check of the fuzzer itself: cases that crash, hang, raise or allocate ---------------

BEHAVIOURS = ["ok", "error", "lines", "raise", "allocate", "crash", "hang"]


def read_behaviour(folder: Path) -> None:
    """Do what the case file says, as a broken reader would."""
    what = (folder / "case.txt").read_text()
    if what == "error":
        raise conversion_error()("one line")
    if what == "lines":
        raise conversion_error()("two\nlines")
    if what == "raise":
        raise KeyError("not the reader's error")
    if what == "allocate":
        bytearray(8 << 30)  # more than the worker's address-space limit
    if what == "crash":
        os.kill(os.getpid(), signal.SIGSEGV)
    if what == "hang":
        time.sleep(3600)


CHECKS = {"behaviour": Format(lambda scratch: [Seed({"case.txt": b"ok"}, ["case.txt"])],
                              lambda rng, content, name: rng.choice(BEHAVIOURS).encode(),
                              read_behaviour, conversion_error)}


def format_named(name: str) -> Format:
    return FORMATS[name] if name in FORMATS else CHECKS[name]


def make_case(name: str, index: int, seeds: list[Seed]) -> Files:
    """The files of case `index` of format `name` (deterministic)."""
    rng = Random(f"{name}:{index}")
    seed = rng.choice(seeds)
    target = rng.choice(seed.mutable)
    files = dict(seed.files)
    files[target] = format_named(name).mutate(rng, files[target], target)
    return files


def write_case(files: Files, folder: Path) -> None:
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
