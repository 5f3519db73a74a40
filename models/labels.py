"""Class names: one reader for the forms class lists come in, and name lookup.

Forms (the form is told by the lines themselves):
- `n01440764 tench, Tinca tinca`: Caffe's synset_words.txt (synset id, then synonyms);
- `/a/airfield 0`: the Places lists (categories_places365.txt, categoryIndex_places205.csv),
  a path and the class index;
- anything else: one class per line in index order, synonyms separated by ", "
  (crowsonkb's categories.txt, CIFAR-10's batches.meta.txt, our own labels.txt);
- a MATLAB `.mat` holding one cell array of names (CompCars' make_model_names_cls.mat),
  read by scipy without executing anything;
- a Python `.py` assigning one list of string literals (caffe-oxford102's class-labels.py),
  read by parsing it, never by running it.
"""

from __future__ import annotations

import ast
import difflib
import io
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.io import loadmat

from converters.bounded import read_bounded
from converters.errors import UsageError
from converters.spec import ConversionError

MAX_BYTES = 4 << 20  # far above any class list (ImageNet's is 32 kB)
MAX_MAT_BYTES = 1 << 20  # compressed: bounds what a .mat can inflate to
SYNSET = re.compile(r"n\d{8}\s+(\S.*)")
INDEXED = re.compile(r"(/\S+)\s+(\d+)")
MAX_SUGGESTIONS = 8


@dataclass(frozen=True)
class ClassList:
    """Per class index, its names (first: the one shown)."""

    source: str  # the file it was read from, for messages
    names: tuple[tuple[str, ...], ...]

    def __len__(self) -> int:
        return len(self.names)

    def name(self, index: int) -> str:
        return self.names[index][0]

    def text(self) -> str:
        """The list in the plain form, as written to a converted model's labels.txt."""
        return "".join(", ".join(synonyms) + "\n" for synonyms in self.names)


def read_labels(path: str | Path) -> ClassList:
    """The class list in `path`; a ConversionError naming the file if it is not one."""
    path = Path(path)
    limit = MAX_MAT_BYTES if path.suffix.lower() == ".mat" else MAX_BYTES
    data = read_bounded(path, limit, "class list")
    if path.suffix.lower() == ".mat":
        return ClassList(str(path), _mat_names(data, str(path)))
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConversionError(f"{path}: not a UTF-8 class list (byte {e.start})") from None
    if path.suffix.lower() == ".py":
        return ClassList(str(path), _python_names(text, str(path)))
    return parse_labels(text, str(path))


def parse_labels(text: str, source: str) -> ClassList:
    lines = [line.strip() for line in text.lstrip("\ufeff").splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    if not lines:
        raise ConversionError(f"{source}: an empty class list")
    blank = next((i for i, line in enumerate(lines) if not line), None)
    if blank is not None:
        raise ConversionError(f"{source}: line {blank + 1} is empty (one class per line)")
    if all(INDEXED.fullmatch(line) for line in lines):
        return ClassList(source, _indexed(lines, source))
    if all(SYNSET.fullmatch(line) for line in lines):
        lines = [SYNSET.fullmatch(line).group(1) for line in lines]  # type: ignore[union-attr]
    return ClassList(source, tuple(_synonyms(line) for line in lines))


def _synonyms(line: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(s.strip() for s in line.split(",") if s.strip()))


def _indexed(lines: list[str], source: str) -> tuple[tuple[str, ...], ...]:
    """`/a/airport_terminal 2` lines: names by index; every index 0..n-1 exactly once."""
    names: dict[int, tuple[str, ...]] = {}
    for number, line in enumerate(lines, 1):
        path, index = INDEXED.fullmatch(line).groups()  # type: ignore[union-attr]
        position = int(index)
        if position >= len(lines) or position in names:
            raise ConversionError(f"{source}: line {number}: index {position} is "
                                  f"{'repeated' if position in names else 'out of range'}")
        name = path.split("/", 2)[-1] if path.count("/") >= 2 else path.strip("/")
        spaced = name.replace("_", " ").replace("/", " ")
        names[position] = tuple(dict.fromkeys((name, spaced)))
    return tuple(names[i] for i in range(len(lines)))


def _mat_names(data: bytes, source: str) -> tuple[tuple[str, ...], ...]:
    """The names in the one cell array of strings of a MATLAB v5 file."""
    try:
        variables = loadmat(io.BytesIO(data))
    except Exception as e:  # scipy raises many types for a malformed file
        raise ConversionError(f"{source}: not a readable MATLAB file ({e})") from None
    lists = {key: value.ravel() for key, value in variables.items()
             if not key.startswith("__") and isinstance(value, np.ndarray)
             and value.dtype == object and value.size
             and all(isinstance(cell, np.ndarray) and cell.dtype.kind == "U" and cell.size <= 1
                     for cell in value.ravel())}
    if len(lists) != 1:
        raise ConversionError(f"{source}: expected one cell array of class names, found "
                              f"{len(lists)} ({', '.join(lists) or 'none'})")
    cells = next(iter(lists.values()))
    return tuple((str(cell[0]).strip() or f"unnamed class {i}",) if cell.size
                 else (f"unnamed class {i}",) for i, cell in enumerate(cells))


def _python_names(text: str, source: str) -> tuple[tuple[str, ...], ...]:
    """The names of the one `NAME = [...]` list of string literals in Python source."""
    try:
        tree = ast.parse(text, source)
    except SyntaxError as e:
        raise ConversionError(f"{source}: not Python source (line {e.lineno}: {e.msg})") \
            from None
    lists = [node.value.elts for node in tree.body
             if isinstance(node, ast.Assign) and isinstance(node.value, (ast.List, ast.Tuple))
             and node.value.elts and all(isinstance(e, ast.Constant) and isinstance(e.value, str)
                                         for e in node.value.elts)]
    if len(lists) != 1:
        raise ConversionError(f"{source}: expected one list of class names, found "
                              f"{len(lists)}")
    return tuple(_synonyms(e.value) or (f"unnamed class {i}",)  # type: ignore[attr-defined]
                 for i, e in enumerate(lists[0]))


def _key(name: str) -> str:
    return " ".join(name.lower().replace("_", " ").split())


def class_index(token: str, classes: int, labels: ClassList | None) -> int:
    """The class `token` names: an index, or an exact (case-insensitive) name of one class.

    A name that matches no class, or several, is a UsageError (a ValueError) listing the
    closest names; there is no substring matching.
    """
    token = token.strip()
    if token.isascii() and token.isdigit():  # not "²", which int() refuses
        index = int(token)
        if index >= classes:
            raise UsageError(f"class {index} is out of range: the net has {classes} classes "
                             f"(0-{classes - 1})")
        return index
    if labels is None:
        raise UsageError(f"class {token!r}: this net has no class names; give --labels FILE, "
                         f"or a class index")
    wanted = _key(token)
    found = sorted({i for i, names in enumerate(labels.names)
                    if any(_key(n) == wanted for n in names)})
    if len(found) == 1:
        return found[0]
    if found:
        listed = ", ".join(f"{i} ({', '.join(labels.names[i])})" for i in found)
        raise UsageError(f"class {token!r} is ambiguous: it names {listed}; give the index")
    raise UsageError(f"no class is named {token!r} in {labels.source}; closest: "
                     f"{', '.join(closest(wanted, labels))}")


def search(query: str, labels: ClassList) -> list[int]:
    """The classes one of whose names holds `query` (case, '_' and spacing ignored); all
    for an empty query. None: a UsageError naming the closest names."""
    wanted = _key(query)
    found = [i for i, names in enumerate(labels.names) if any(wanted in _key(n) for n in names)]
    if not found:
        raise UsageError(f"no class name holds {query!r} in {labels.source}; closest: "
                         f"{', '.join(closest(wanted, labels))}")
    return found


def closest(wanted: str, labels: ClassList) -> list[str]:
    """Names holding `wanted` as a whole word first, then the most similar spellings."""
    words = set(wanted.split())
    every = {n: i for i, names in reversed(list(enumerate(labels.names))) for n in names}
    by_word = [n for n in every if words <= set(_key(n).split())]
    similar = difflib.get_close_matches(wanted, list(every), n=MAX_SUGGESTIONS, cutoff=0.5)
    chosen = list(dict.fromkeys([*sorted(by_word, key=every.get), *similar]))
    return [f"{n!r} ({every[n]})" for n in chosen[:MAX_SUGGESTIONS]] or ["(none)"]
