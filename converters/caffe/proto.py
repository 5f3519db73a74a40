"""Message classes for Caffe's files, built at import time from our `caffe.proto`.

The protobuf runtime cannot read a `.proto` file, so this module parses the small
proto2 subset that `caffe.proto` is written in into a FileDescriptorProto and asks
the runtime for the message classes. No generated code, no protoc.
"""

from __future__ import annotations

import re
from pathlib import Path

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

PROTO_FILE = Path(__file__).with_name("caffe.proto")

_F = descriptor_pb2.FieldDescriptorProto
_SCALAR_TYPES = {
    "double": _F.TYPE_DOUBLE, "float": _F.TYPE_FLOAT, "int64": _F.TYPE_INT64,
    "uint64": _F.TYPE_UINT64, "int32": _F.TYPE_INT32, "uint32": _F.TYPE_UINT32,
    "bool": _F.TYPE_BOOL, "string": _F.TYPE_STRING, "bytes": _F.TYPE_BYTES,
}
_LABELS = {"optional": _F.LABEL_OPTIONAL, "repeated": _F.LABEL_REPEATED}
_TOKEN = re.compile(r'"[^"]*"|[A-Za-z_][\w.]*|-?[\d.][\w.+-]*|[{}=;\[\],]')


def _tokens(text: str) -> list[str]:
    text = re.sub(r"//[^\n]*", "", text)
    return _TOKEN.findall(text)


def _parse(text: str) -> descriptor_pb2.FileDescriptorProto:
    tokens = _tokens(text)
    pos = 0

    def take(expected: str | None = None) -> str:
        nonlocal pos
        tok = tokens[pos]
        if expected is not None and tok != expected:
            raise ValueError(f"{PROTO_FILE}: expected {expected!r}, found {tok!r}")
        pos += 1
        return tok

    file = descriptor_pb2.FileDescriptorProto(name="dreamzoo_caffe.proto", syntax="proto2")
    enum_names: set[str] = set()

    def parse_enum(target) -> None:
        enum = target.add(name=take())
        enum_names.add(enum.name)
        take("{")
        while tokens[pos] != "}":
            name = take()
            take("=")
            enum.value.add(name=name, number=int(take()))
            take(";")
        take("}")

    def parse_message(target) -> None:
        msg = target.add(name=take())
        take("{")
        while tokens[pos] != "}":
            keyword = take()
            if keyword == "enum":
                parse_enum(msg.enum_type)
                continue
            field = msg.field.add(label=_LABELS[keyword])
            type_name, field.name = take(), take()
            take("=")
            field.number = int(take())
            if type_name in _SCALAR_TYPES:
                field.type = _SCALAR_TYPES[type_name]
            else:
                field.type_name = type_name  # resolved below, once all names are known
            if tokens[pos] == "[":
                take("[")
                while True:
                    option = take()
                    take("=")
                    value = take()
                    if option == "default":
                        field.default_value = value.strip('"')
                    elif option == "packed":
                        field.options.packed = value == "true"
                    if take() == "]":
                        break
            take(";")
        take("}")

    while pos < len(tokens):
        keyword = take()
        if keyword in ("syntax", "package"):
            while take() != ";":
                pass
        elif keyword == "message":
            parse_message(file.message_type)
        elif keyword == "enum":
            parse_enum(file.enum_type)
        else:
            raise ValueError(f"{PROTO_FILE}: unexpected {keyword!r}")

    def resolve(messages, scope: str) -> None:
        for msg in messages:
            nested_enums = {e.name for e in msg.enum_type}
            for field in msg.field:
                if not field.type_name:
                    continue
                name = field.type_name
                if name in nested_enums:
                    field.type, field.type_name = _F.TYPE_ENUM, f".{scope}.{msg.name}.{name}"
                elif name in enum_names:
                    field.type, field.type_name = _F.TYPE_ENUM, f".{scope}.{name}"
                else:
                    field.type, field.type_name = _F.TYPE_MESSAGE, f".{scope}.{name}"

    file.package = "dreamzoo.caffe"
    resolve(file.message_type, file.package)
    return file


def _load_classes() -> dict[str, type]:
    pool = descriptor_pool.DescriptorPool()
    file = pool.Add(_parse(PROTO_FILE.read_text()))
    return {
        name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{file.package}.{name}"))
        for name in (m.name for m in _parse(PROTO_FILE.read_text()).message_type)
    }


_CLASSES = _load_classes()
NetParameter = _CLASSES["NetParameter"]
BlobProto = _CLASSES["BlobProto"]
LayerParameter = _CLASSES["LayerParameter"]
V1LayerParameter = _CLASSES["V1LayerParameter"]
