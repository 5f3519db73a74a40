"""Reading Torch7 serialized files (`torch.save`, binary or ASCII) into Python objects.

torchfile's `T7Reader` walks the object graph: tables (dicts with bytes keys, read with
`use_list_heuristic=False`), class instances (`TorchObject`), shared references and
cycles. We subclass it to make it safe on untrusted files and to add the ASCII encoding:

- every primitive is replaced, so that a declared size (string, storage, size array)
  is checked against what is left of the file before anything is allocated, and a
  short read is reported as a truncated file;
- storages, tensors and functions are read here: a tensor must lie inside its storage
  and hold no more elements than it (torchfile builds unchecked strided views);
- `AsciiReader` parses `torch.save(f, x, 'ascii')`: numbers as text, one write per
  line, strings and char/byte data raw.

Tensors come back as numpy arrays (copies), storages as 1-D arrays.
"""

from __future__ import annotations

import math
import os
import re
import struct
from pathlib import Path
from typing import Any

import numpy as np
import torchfile

from ..spec import ConversionError, first_line

TYPE_TORCH = torchfile.TYPE_TORCH
FUNCTION_TYPES = (torchfile.TYPE_FUNCTION, torchfile.TYPE_RECUR_FUNCTION,
                  torchfile.LEGACY_TYPE_RECUR_FUNCTION)
ELEMENT_TYPES = {b"Byte": np.uint8, b"Char": np.int8, b"Short": np.int16, b"Int": np.int32,
                 b"Long": np.int64, b"Float": np.float32, b"Double": np.float64}
STORAGE_TYPES = {b"torch.%sStorage" % k: v for k, v in ELEMENT_TYPES.items()}
STORAGE_TYPES.update({b"torch.Cuda%sStorage" % k: v for k, v in ELEMENT_TYPES.items()})
STORAGE_TYPES[b"torch.CudaStorage"] = np.float32
TENSOR_TYPES = {b"torch.%sTensor" % k: v for k, v in ELEMENT_TYPES.items()}
TENSOR_TYPES.update({b"torch.Cuda%sTensor" % k: v for k, v in ELEMENT_TYPES.items()})
TENSOR_TYPES[b"torch.CudaTensor"] = np.float32
MAX_TENSOR_DIMS = 64


class Truncated(Exception):
    """The file ends inside an object, or an object needs more bytes than are left."""


class Malformed(Exception):
    """The file is not a valid serialization; the message says why."""


class CheckedReader(torchfile.T7Reader):
    """torchfile's object-graph reader on checked primitives (subclasses supply them)."""

    def __init__(self) -> None:
        super().__init__(None, use_list_heuristic=False, use_int_heuristic=True)

    # primitives, per encoding
    def tell(self) -> int:
        raise NotImplementedError

    def seek(self, position: int) -> None:
        raise NotImplementedError

    def remaining(self) -> int:
        raise NotImplementedError

    def read_raw(self, count: int) -> bytes:
        raise NotImplementedError

    def read_values(self, count: int, dtype: type) -> np.ndarray:
        raise NotImplementedError

    def check_count(self, count: int, item_bytes: int, what: str) -> None:
        """Refuse a declared size that cannot fit in the rest of the file."""
        if count < 0:
            raise Malformed(f"a {what} declares {count} elements at byte {self.tell()}")
        if count * item_bytes > self.remaining():
            raise Truncated(f"it declares a {what} of {count} elements at byte {self.tell()}, "
                            f"more than the {self.remaining()} bytes left in the file")

    def read_string(self, disable_utf8: bool = False) -> bytes:
        return self.read_raw(self.read_int())

    # objects
    def read_obj(self) -> Any:
        start = self.tell()
        kind = self.read_int()
        if kind == TYPE_TORCH or kind in FUNCTION_TYPES:
            index = self.read_int()
            if index in self.objects:
                return self.objects[index]
            if kind in FUNCTION_TYPES:
                return self._read_function(index)
            version = self.read_string()
            class_name = self.read_string() if version.startswith(b"V ") else version
            if class_name in STORAGE_TYPES:
                self.objects[index] = None
                self.objects[index] = self.read_values(self.read_long(),
                                                       STORAGE_TYPES[class_name])
                return self.objects[index]
            if class_name in TENSOR_TYPES:
                self.objects[index] = None
                self.objects[index] = self._read_tensor(TENSOR_TYPES[class_name])
                return self.objects[index]
            if class_name.startswith(b"torch.") and b"Half" in class_name:
                kind = class_name.decode("latin-1")
                raise Malformed(f"half-precision data ({kind}) is not supported")
        self.seek(start)
        return super().read_obj()

    def _read_function(self, index: int) -> torchfile.LuaFunction:
        size = self.read_int()
        dumped = self.read_raw(size)
        self.objects[index] = torchfile.LuaFunction(size, dumped, None)
        self.objects[index] = torchfile.LuaFunction(size, dumped, self.read_obj())
        return self.objects[index]

    def _read_tensor(self, dtype: type) -> np.ndarray:
        dims = self.read_int()
        if not 0 <= dims <= MAX_TENSOR_DIMS:
            raise Malformed(f"a tensor declares {dims} dimensions at byte {self.tell()}")
        sizes = self.read_long_array(dims)
        strides = self.read_long_array(dims)
        offset = self.read_long() - 1
        storage = self.read_obj()
        if dims == 0 or storage is None:
            return np.empty(0, dtype)
        if not (isinstance(storage, np.ndarray) and storage.ndim == 1 and storage.dtype == dtype):
            raise Malformed(f"a {np.dtype(dtype).name} tensor has a storage of another type")
        if min(sizes) < 0 or min(strides) < 0 or offset < 0:
            raise Malformed(f"a tensor has negative sizes, strides or offset {sizes} {strides}")
        if 0 in sizes:
            return np.empty(sizes, dtype)
        last = offset + sum((n - 1) * s for n, s in zip(sizes, strides))
        if last >= len(storage) or math.prod(sizes) > len(storage):
            raise Malformed(f"a tensor of size {sizes} does not fit in its storage of "
                            f"{len(storage)} elements")
        view = np.lib.stride_tricks.as_strided(
            storage[offset:], shape=sizes, strides=[s * storage.itemsize for s in strides])
        return np.array(view)


class BinaryReader(CheckedReader):
    """The binary encoding: little-endian, 4-byte int, 8-byte long."""

    def __init__(self, file: Any, size: int) -> None:
        super().__init__()
        self.f, self.size = file, size

    def tell(self) -> int:
        return self.f.tell()

    def seek(self, position: int) -> None:
        self.f.seek(position)

    def remaining(self) -> int:
        return self.size - self.f.tell()

    def _take(self, count: int) -> bytes:
        data = self.f.read(count)
        if len(data) < count:
            raise Truncated(f"it ends inside an object at byte {self.size}")
        return data

    def _read(self, fmt: str) -> tuple:
        fmt = "<" + fmt
        return struct.unpack(fmt, self._take(struct.calcsize(fmt)))

    def read_int(self) -> int:
        return self._read("i")[0]

    def read_long(self) -> int:
        return self._read("q")[0]

    def read_long_array(self, count: int) -> list[int]:
        self.check_count(count, 8, "size array")
        return np.frombuffer(self._take(8 * count), "<i8").tolist()

    def read_raw(self, count: int) -> bytes:
        self.check_count(count, 1, "string")
        return self._take(count)

    def read_values(self, count: int, dtype: type) -> np.ndarray:
        little = np.dtype(dtype).newbyteorder("<")
        self.check_count(count, little.itemsize, f"{little.name} storage")
        values = np.empty(count, little)
        if self.f.readinto(values.view(np.uint8)) < values.nbytes:
            raise Truncated(f"it ends inside an object at byte {self.size}")
        return values.astype(dtype, copy=False)


class AsciiReader(CheckedReader):
    """The ASCII encoding: each write is its values separated by spaces, then a newline;
    numbers are text, strings and char/byte data raw bytes after the count's newline."""

    TOKEN = re.compile(rb"\S+")

    def __init__(self, data: bytes) -> None:
        super().__init__()
        self.data, self.pos = data, 0

    def tell(self) -> int:
        return self.pos

    def seek(self, position: int) -> None:
        self.pos = position

    def remaining(self) -> int:
        return len(self.data) - self.pos

    def _token(self) -> bytes:
        match = self.TOKEN.search(self.data, self.pos)
        if match is None:
            raise Truncated(f"it ends inside an object at byte {len(self.data)}")
        self.pos = match.end()
        return match.group()

    def _number(self, kind: type) -> Any:
        token = self._token()
        try:
            return kind(token)
        except ValueError:
            raise Malformed(f"expected a number at byte {self.pos - len(token)}, "
                            f"found {token[:20]!r}") from None

    def read_int(self) -> int:
        return self._number(int)

    read_long = read_int

    def read_double(self) -> float:
        return self._number(float)

    read_float = read_double

    def read_long_array(self, count: int) -> list[int]:
        self.check_count(count, 1, "size array")
        return [self.read_int() for _ in range(count)]

    def read_raw(self, count: int) -> bytes:
        if self.data[self.pos:self.pos + 1] == b"\n":
            self.pos += 1
        self.check_count(count, 1, "string")
        self.pos += count
        return self.data[self.pos - count:self.pos]

    def read_values(self, count: int, dtype: type) -> np.ndarray:
        if np.dtype(dtype).itemsize == 1:
            return np.frombuffer(self.read_raw(count), dtype).copy()
        # Every value but the last is followed by a separator: at least 2 bytes each.
        self.check_count(count, 2, f"{np.dtype(dtype).name} storage")
        kind = float if np.issubdtype(dtype, np.floating) else int
        return np.array([self._number(kind) for _ in range(count)], dtype=dtype)


def detect_encoding(head: bytes) -> str | None:
    """'binary' or 'ascii' from the first bytes, the root object's type index (1 to 8),
    or None when they are neither."""
    if len(head) >= 4 and 1 <= struct.unpack("<i", head[:4])[0] <= 8:
        return "binary"
    if re.match(rb"\s*[1-8]\s", head):
        return "ascii"
    return None


def read_t7(path: str | Path) -> tuple[Any, str]:
    """The object stored in a Torch7 file, and the file's encoding ('binary' or 'ascii')."""
    path = Path(path)
    try:
        with open(path, "rb") as file:
            size = os.fstat(file.fileno()).st_size
            head = file.read(16)
            encoding = detect_encoding(head)
            if encoding is None:
                raise ConversionError(f"{path}: not a Torch7 file (it starts with bytes "
                                      f"{head[:8].hex(' ') or 'nothing'})")
            file.seek(0)
            reader = (BinaryReader(file, size) if encoding == "binary"
                      else AsciiReader(file.read()))
            return reader.read_obj(), encoding
    except OSError as e:
        raise ConversionError(f"{path}: cannot read ({e.strerror or e})") from None
    except Truncated as e:
        raise ConversionError(f"{path}: truncated or corrupt Torch7 file: {e}") from None
    except Malformed as e:
        raise ConversionError(f"{path}: malformed Torch7 file: {e}") from None
    except RecursionError:
        raise ConversionError(f"{path}: malformed Torch7 file: objects nested too deeply"
                              ) from None
    except (torchfile.T7ReaderException, ValueError, TypeError, OverflowError,
            UnicodeDecodeError, struct.error, NotImplementedError) as e:
        raise ConversionError(f"{path}: malformed Torch7 file ({first_line(e)})") from None
