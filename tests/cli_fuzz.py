"""A property-based fuzz of the command line: every subcommand with generated option values.

    python tests/cli_fuzz.py [--cases N] [--seed S] [--commands C ...]   # `make cli-fuzz`
    python tests/cli_fuzz.py --repro 'still' ARG...                     # one case, here

Each case is a subcommand's valid command line on the tiny net (one iteration, a 40×48
image) with some options added or replaced by generated values (Hypothesis): NaN, ±inf, 0,
negatives, huge numbers, empty strings, unicode, /dev/zero, folders, the input itself.
A case must end in one of two ways:

- exit 0, and every output it was asked for is there and valid (a PNG that opens, an MP4
  that decodes, a converted folder that loads...), nothing written anywhere else;
- exit 2 (1 for a batch whose items failed, or a `converters check` over its tolerance)
  with one line on stderr, `error: ...` (argparse's usage line before its one error line
  is accepted), no traceback, and nothing written.

Inputs (the fixture folder, shared by all cases) must come out unchanged either way.
Anything else is a finding, named by a short symptom (`traceback MemoryError`, `hang`,
`wrote what it was not asked for`...). A case gives at most one option (or positional) a
bad value, the others good ones, so that the bad one reaches past the other checks; run
with `--messages`, an error that names neither that option nor its value is a finding too
(a heuristic, noisy where the good values of two options conflict; off in the suite and in
`make fuzz`).

Importing torch costs seconds, so cases do not start a Python each: a worker process
imports everything once, then forks a child per case. The child changes into a fresh
folder, sends stdout and stderr to files, limits its address space (RLIMIT_AS) and time
(alarm), calls the subcommand's `main(argv)` and exits with its return code.

Not generated: `--ray` (each case would start or join a Ray cluster, seconds each and
processes that outlive the case; Ray's option checks have their own tests), zoo names
that would download or convert a real net, and huge amounts of legitimate work
(ITERATIONS, --frames, --iterations are drawn small: a big one is a long job, not a bug).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import hashlib
import json
import os
import re
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, seed, settings
from hypothesis import strategies as st

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("DREAMZOO_SHARED", ROOT.parent / "shared")).resolve()
TINY = SHARED / "models" / "tiny"
MEMORY_MARGIN = 1 << 30  # address space a case may add to the worker's (bytes)
FILE_LIMIT = 256 << 20  # largest file a case may write (bytes)
CASE_SECONDS = 10  # a case running longer is a hang (a normal one takes under a second)
STARTUP_SECONDS = 180.0  # the worker's imports and fixture on a busy machine


# --- the fixture: inputs every case may read, and must leave as they were --------------------

def make_fixture(folder: Path) -> None:
    """Images, the tiny net in every form, a clip, folders and lists of images."""
    import numpy as np
    from PIL import Image

    import converters
    from converters.onnx.export import to_onnx

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from motion_clips import write_clip

    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (40, 48, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(folder / "img.png")
    Image.fromarray(rgb).save(folder / "img.jpg")
    Image.fromarray(rgb[:8, :8]).save(folder / "small.png")
    Image.fromarray(rgb[..., 0].astype(np.uint16) * 257).save(folder / "grey16.png")
    for name in ("deploy.prototxt", "tiny.caffemodel"):
        shutil.copyfile(TINY / name, folder / name)
    network = converters.load_caffe(folder / "deploy.prototxt", folder / "tiny.caffemodel")
    converters.save(network, folder / "tiny")
    (folder / "tiny.onnx").write_bytes(to_onnx(network).SerializeToString())
    write_clip(folder / "clip.mp4", [np.roll(rgb, 2 * k, axis=1)[:, :48] for k in range(4)])
    (folder / "labels.txt").write_text("".join(f"class{k}, thing{k}\n" for k in range(10)))
    (folder / "notes.txt").write_text("a text file of the user's\n")
    (folder / "photos" / "sub").mkdir(parents=True)
    Image.fromarray(rgb).save(folder / "photos" / "a.png")
    Image.fromarray(rgb[::-1]).save(folder / "photos" / "sub" / "b.png")
    (folder / "lists").mkdir()
    (folder / "lists" / "list.txt").write_text("../photos/a.png\n# a comment\n\n"
                                              "../photos/sub/b.png\n")
    Image.fromarray(rgb[:, ::-1]).save(folder / "lists" / "c.png")
    (folder / "lists" / "escape.txt").write_text("c.png\n../photos/a.png\n")  # OUTDIR/../
    (folder / "lists" / "absolute.txt").write_text(f"{folder / 'img.png'}\n")
    (folder / "lists" / "missing.txt").write_text("nothere.png\n../photos/a.png\n")
    (folder / "empty").mkdir()
    (folder / "zoo").mkdir()  # DREAMZOO_MODELS: no converted zoo model
    (folder / "mirror").mkdir()  # DREAMZOO_MIRROR: nothing to convert, never a download
    (folder / "deep.json").write_text("[" * 100_000 + "]" * 100_000)


def snapshot(folder: Path) -> dict[str, tuple[str, str]]:
    """Relative path -> (kind, digest) of everything under `folder` (links not followed)."""
    found = {}
    for path in sorted(folder.rglob("*")):
        relative = str(path.relative_to(folder))
        if path.is_symlink():
            found[relative] = ("link", os.readlink(path))
        elif path.is_dir():
            found[relative] = ("dir", "")
        elif path.is_file():
            found[relative] = ("file", hashlib.sha1(path.read_bytes()).hexdigest())
        else:
            found[relative] = ("other", "")
    return found


# --- generated values --------------------------------------------------------------------------

NUMBERS = ["nan", "NaN", "inf", "-inf", "0", "-0", "-1", "-7", "1e308", "1e999", "-1e999",
           "2147483648", "9" * 30, "0.5", "1e-300", "", " ", "x", "²", "1,5", "0x10", "1_0",
           "١"]
TEXTS = ["", " ", "é", "🐍", "a" * 300, "\x7f", "-", ",", ":", "a:b:c", "%s", "../..",
         "\u202e", "conv1:nan", "conv1:1e999", "0-", "-1"]


@dataclass(frozen=True)
class Option:
    """A command-line option, its values that make sense, and the kind of bad ones tried."""

    flag: str
    kind: str  # number | text | input | output | choice | flag | shape
    good: tuple[str, ...] = ()


@dataclass(frozen=True)
class Command:
    """A subcommand: its entry point, a valid command line, what it may replace."""

    name: str
    entry: str  # dreamer | converters | models
    base: Callable[[Path], list[str]]  # valid argv given the fixture folder
    positionals: tuple[Option, ...]  # replaceable positionals, in base's order from index 0
    options: tuple[Option, ...]
    outputs: tuple[str, ...] = ("-o",)  # flags naming what it writes
    default_output: Callable[[list[str]], list[str]] = lambda argv: []


def inputs(fx: Path) -> list[str]:
    """Bad or odd input paths (each command's own good ones come with its options)."""
    return ["/dev/zero", "/dev/null", str(fx), str(fx / "notes.txt"), "", "missing.png",
            str(fx / "empty"), str(fx / "small.png"), str(fx / "grey16.png"),
            str(fx / "deep.json"), "ü🐍.png", "-", str(fx / "clip.mp4"), "/proc/self/mem"]


def outputs(fx: Path) -> list[str]:
    """Output paths: new, odd, existing files and folders of the user, the inputs."""
    return ["out.png", "out.jpg", "out.PNG", "out", "out.gif", "out.mp4", "out.npy",
            "nofolder/out.png", "", ".", "..", "/dev/zero", "/dev/null", "ü🐍 out.png",
            "../out.png", "/proc/out.png", str(fx / "img.png"), str(fx / "notes.txt"),
            str(fx), str(fx / "empty"), str(fx / "tiny"), str(fx / "clip.mp4"),
            str(fx / "photos"), "out.png/x.png"]


def shapes() -> list[str]:
    return ["1 3 35 35", "1 3 40 48", "0 0 0 0", "-1 3 35 35", "1 3 1 1", "1 3 100000 100000",
            "1 1 35 35", "1000000 3 35 35", "1 3 35 nan"]


def values(option: Option, fx: Path, bad: bool) -> st.SearchStrategy[list[str]]:
    """The arguments after `option.flag`: one of its good values, or a bad one of its kind."""
    if option.kind == "flag":
        return st.just([])
    if option.kind == "shape":
        return st.sampled_from(shapes()).map(str.split)
    pool = {"number": NUMBERS, "text": TEXTS, "choice": TEXTS, "input": inputs(fx),
            "output": outputs(fx)}[option.kind] if bad or not option.good else option.good
    return st.sampled_from(pool).map(lambda value: value.split("\t") if value else [value])


# A good value of several arguments: tab-separated.
PROTOTXT_AND_WEIGHTS = "{fx}/deploy.prototxt\t--weights\t{fx}/tiny.caffemodel"
DREAM_OPTIONS = (
    Option("--model", "input", ("{fx}/tiny", "{fx}/tiny.onnx", PROTOTXT_AND_WEIGHTS)),
    Option("--weights", "input"),  # alone: always refused (the base model is a folder)
    Option("--layer", "text", ("conv1", "conv2", "conv1:1,conv2:0.5", "2", "norm", "fc3")),
    Option("--class", "text", ("0", "3:2", "class1\t--labels\t{fx}/labels.txt")),
    Option("--labels", "input", ("{fx}/labels.txt",)),
    Option("--preset", "choice", ("google", "torch7", "deepdraw")),
    Option("--octaves", "number", ("1", "2", "3", "1000000000")),
    Option("--octave-scale", "number", ("1.2", "1.4", "2", "1")),
    Option("--jitter", "number", ("0", "4", "32", "1e20")),
    Option("--step-norm", "choice", ("mean", "max", "l2", "none")),
    Option("--channel", "number", ("0", "3", "11", "12")),
    Option("--objective", "choice", ("l2", "topk", "mean", "sign", "square")),
    Option("--topk", "number", ("0.1", "0.5", "1")),
    Option("--guide", "input", ("{fx}/img.png", "{fx}/img.jpg")),
    Option("--blur", "number", ("0.5", "1", "0")),
    Option("--laplacian", "number", ("0", "2", "4")),
    Option("--tile", "number", ("16", "32", "64")),
    Option("--tile-margin", "number", ("0", "8")),
    Option("--seed", "number", ("0", "1", "4294967296")),
    Option("--device", "text", ("cpu", "auto", "cuda", "mps", "cuda:7", "gpu")),
    Option("--precision", "choice", ("fp32", "bf16", "fp16", "auto")),
    Option("--quiet", "flag"),
)
ENGINE_OPTIONS = (
    Option("--workers", "number", ("1", "2")),
    Option("--cpus-per-worker", "number", ("1", "2")),
    Option("--gpus-per-worker", "number", ("0", "0.5")),
)
DREAM_POSITIONALS = (Option("LAYER", "text", ("conv1", "conv2", "relu1", "2", "conv")),
                     Option("ITERATIONS", "number", ("1", "2")),
                     Option("RATE", "number", ("0.05", "1", "0.001")))
DREAM = ["conv2", "1", "0.05", "--model", "{fx}/tiny", "--quiet"]


def stem_default(suffix: str, index: int) -> Callable[[list[str]], list[str]]:
    """The default output `<stem of argv[index]>_<suffix>.png` in the working folder."""
    return lambda argv: [f"{Path(argv[index]).stem}_{suffix}.png"] if len(argv) > index else []


COMMANDS = (
    Command("still", "dreamer", lambda fx: [f"{fx}/img.png", *DREAM, "-o", "out.png"],
            (Option("SRC", "input", ("{fx}/img.png", "{fx}/img.jpg", "noise")),
             *DREAM_POSITIONALS),
            (*DREAM_OPTIONS, Option("-o", "output", ("out.png", "out.jpg")),
             Option("--save-raw", "output", ("raw.npy",)),
             Option("--save-octaves", "output", ("octaves",))),
            ("-o", "--save-raw", "--save-octaves"), stem_default("dream", 0)),
    Command("zoom", "dreamer",
            lambda fx: ["zoom", f"{fx}/img.png", *DREAM, "-o", "z.gif", "--frames", "2"],
            (Option("SRC", "input", ("{fx}/img.png",)), *DREAM_POSITIONALS),
            (*DREAM_OPTIONS, Option("-o", "output", ("z.gif", "z.mp4", "zdir")),
             Option("--frames", "number", ("1", "2", "3")),
             Option("--zoom", "number", ("1.05", "0.9", "1")),
             Option("--rotate", "number", ("5", "-90", "0")),
             Option("--pan", "text", ("2,0", "1,-1", "0,0", "1e9,0", "nan,0")),
             Option("--fps", "number", ("12", "24", "1", "0.0001", "1e9")),
             Option("--frames-dir", "output", ("frames",)), Option("--force", "flag")),
            ("-o", "--frames-dir")),
    Command("video", "dreamer",
            lambda fx: ["video", f"{fx}/clip.mp4", *DREAM, "-o", "v.mp4"],
            (Option("IN", "input", ("{fx}/clip.mp4", "{fx}/img.png")), *DREAM_POSITIONALS),
            (*DREAM_OPTIONS, *ENGINE_OPTIONS, Option("-o", "output", ("v.mp4",)),
             Option("--blend", "number", ("0", "0.5", "0.9", "1")),
             Option("--start", "text", ("0", "1", "0.05s", "0:00", "99")),
             Option("--end", "text", ("2", "3", "0:01", "0")),
             Option("--chunk", "number", ("1", "2")),
             Option("--frames-dir", "output", ("frames",)), Option("--force", "flag")),
            ("-o", "--frames-dir")),
    Command("batch", "dreamer", lambda fx: ["batch", f"{fx}/photos", *DREAM, "-o", "outdir"],
            (Option("INPUT", "input", ("{fx}/photos", "{fx}/lists/list.txt",
                                       "{fx}/photos/*.png", "{fx}/photos/**/*.png",
                                       "{fx}/lists/escape.txt", "{fx}/lists/absolute.txt",
                                       "{fx}/lists/missing.txt", "{fx}/img.png")),
             *DREAM_POSITIONALS),
            (*DREAM_OPTIONS, *ENGINE_OPTIONS, Option("-o", "output", ("outdir", "o2/x")),
             Option("--force", "flag"))),
    Command("sweep", "dreamer",
            lambda fx: ["sweep", f"{fx}/img.png", *DREAM, "--channels", "0", "--size", "40",
                        "-o", "s.png"],
            (Option("SRC", "input", ("{fx}/img.png",)), *DREAM_POSITIONALS),
            (*DREAM_OPTIONS, *ENGINE_OPTIONS, Option("-o", "output", ("s.png",)),
             Option("--channels", "text", ("0", "0-1", "0,3", "7-3", "99", "0-99999", "1-2,1")),
             Option("--size", "number", ("40", "64", "8"))),
            ("-o",), stem_default("sweep", 1)),
    Command("gallery", "dreamer",
            lambda fx: ["gallery", f"{fx}/img.png", "--model", f"{fx}/tiny", "--count", "2",
                        "--iterations", "1", "--size", "40", "--octaves", "1", "--quiet",
                        "-o", "g.png"],
            (Option("SRC", "input", ("{fx}/img.png",)),),
            (Option("--model", "input", ("{fx}/tiny", "{fx}/tiny.onnx", PROTOTXT_AND_WEIGHTS)),
             Option("--weights", "input"),
             Option("--layers", "text", ("conv1", "conv1,conv2", "fc3", ",")),
             Option("--classes", "text", ("0", "1,2", "class1,2\t--labels\t{fx}/labels.txt")),
             Option("--labels", "input", ("{fx}/labels.txt",)),
             Option("--count", "number", ("1", "3")),
             Option("--iterations", "number", ("1", "2")),
             Option("--rate", "number", ("0.03", "1")),
             Option("--octaves", "number", ("1", "2", "1000000000")),
             Option("--size", "number", ("40", "64")),
             Option("--columns", "number", ("1", "2", "1000000")),
             Option("--seed", "number", ("0", "1")), Option("--quiet", "flag"),
             *ENGINE_OPTIONS, Option("-o", "output", ("g.png",))),
            ("-o",), stem_default("gallery", 1)),
    Command("classify", "dreamer",
            lambda fx: ["classify", f"{fx}/img.png", "--model", f"{fx}/tiny"],
            (Option("IMG", "input", ("{fx}/img.png", "{fx}/img.jpg")),),
            (Option("--model", "input", ("{fx}/tiny", "{fx}/tiny.onnx", PROTOTXT_AND_WEIGHTS)),
             Option("--weights", "input"),
             Option("--labels", "input", ("{fx}/labels.txt",)),
             Option("--top", "number", ("1", "3", "10", "100")),
             Option("--crop", "choice", ("centre", "none")), Option("--json", "flag")),
            ()),
    Command("convert", "converters",
            lambda fx: [f"{fx}/deploy.prototxt", f"{fx}/tiny.caffemodel", "-o", "net"],
            (Option("MODEL", "input", ("{fx}/deploy.prototxt", "{fx}/tiny")),
             Option("WEIGHTS", "input", ("{fx}/tiny.caffemodel",))),
            (Option("-o", "output", ("net",)), Option("--input-shape", "shape"))),
    Command("export", "converters", lambda fx: ["export", f"{fx}/tiny", "-o", "net.onnx"],
            (Option("MODEL", "input", ("{fx}/tiny", "{fx}/tiny.onnx")),),
            (Option("-o", "output", ("net.onnx",)),
             Option("--until", "text", ("conv1", "fc3", "prob")),
             Option("--input-shape", "shape"))),
    Command("check", "converters", lambda fx: ["check", f"{fx}/tiny.onnx"],
            (Option("MODEL", "input", ("{fx}/tiny.onnx",)),),
            (Option("--image", "input", ("{fx}/img.png",)), Option("--input-shape", "shape"),
             Option("--layers", "flag"), Option("--seed", "number", ("0", "1")),
             Option("--tolerance", "number", ("1e-4", "1"))),
            ()),
    Command("models", "models",
            lambda fx: ["--prototxt", f"{fx}/deploy.prototxt", "--caffemodel",
                        f"{fx}/tiny.caffemodel", "--name", "mynet", "--quiet"],
            (),
            (Option("--name", "text", ("mynet", "my.net-2", "nin", "googlenet")),
             Option("--prototxt", "input", ("{fx}/deploy.prototxt",)),
             Option("--caffemodel", "input", ("{fx}/tiny.caffemodel",)),
             Option("--t7", "input", ("{fx}/tiny.caffemodel",)),
             Option("--from", "input", ("{fx}/mirror",)),
             Option("--format", "choice", ("dreamzoo", "onnx")))),
)
# Not generated: the judge's own check, one behaviour per first argument (self_test_main).
SELF_TEST = Command("selftest", "selftest", lambda fx: ["ok", "-o", "out.png"], (), ())
COMMAND = {c.name: c for c in (*COMMANDS, SELF_TEST)}
GENERATED = tuple(c.name for c in COMMANDS)
# `python -m models NAME` alone: a zoo name or not (the mirror is empty: never a download).
MODELS_ALONE = ("nin", "googlnet", "", "ü", "../x", "squeezenet")


@dataclass
class Case:
    command: str
    argv: list[str]  # relative to the entry point (a dreamer subcommand's name included)
    bad: tuple[str, str] | None = None  # (option or positional, value) of the bad value

    def shown(self) -> str:
        return f"{self.command}: " + " ".join(repr(a) if not a or " " in a else a
                                              for a in self.argv)


@st.composite
def cases(draw, fx: Path, names: tuple[str, ...] = GENERATED) -> Case:
    """A command's valid command line with some positionals replaced and options added."""
    command = COMMAND[draw(st.sampled_from(names))]
    here = str(fx)
    argv = [a.replace("{fx}", here) for a in command.base(fx)]
    if command.name == "models" and draw(st.booleans()):
        return Case("models", [draw(st.sampled_from(MODELS_ALONE))])
    offset = int(argv[0] == command.name)  # after a subcommand's word
    chosen = draw(st.lists(st.sampled_from(command.options), min_size=1, max_size=4,
                           unique=True))
    # Good values and at most one bad one, which then reaches past the other checks.
    bad = draw(st.integers(-1, len(command.positionals) + len(chosen) - 1))
    given = None
    for k, positional in enumerate(command.positionals):
        if k == bad or draw(st.integers(0, 3)) == 0:
            value = draw(values(positional, fx, k == bad))[0]
            argv[offset + k] = value.replace("{fx}", here)
            given = (positional.flag, argv[offset + k]) if k == bad else given
    for k, option in enumerate(chosen, len(command.positionals)):
        value = [v.replace("{fx}", here) for v in draw(values(option, fx, k == bad))]
        argv += [option.flag, *value]
        given = (option.flag, " ".join(value)) if k == bad else given
    return Case(command.name, argv, given)


# --- the worker: imports once, forks a child per case ------------------------------------------

def self_test_main(argv: list[str]) -> int:
    """What the judge must catch (and `ok`, what it must not): see tests/test_cli_fuzz.py."""
    behaviour, out = argv[0], Path(last_value(argv, "-o") or "out.png")
    if behaviour in ("ok", "invalid", "litter", "touch"):
        out.write_bytes(b"not a PNG" if behaviour == "invalid"
                        else Path(argv[argv.index("--copy") + 1]).read_bytes())
    if behaviour == "litter":
        Path("stray.txt").write_text("")
    if behaviour == "touch":
        with open(argv[argv.index("--copy") + 1], "ab") as source:
            source.write(b"!")
    if behaviour == "raise":
        raise RuntimeError("a bug")
    if behaviour == "allocate":
        return len(bytearray(MEMORY_MARGIN * 2))
    if behaviour == "hang":
        time.sleep(1000)
    if behaviour == "lines":
        print("warning: one\nerror: two", file=sys.stderr)
        return 2
    if behaviour in ("refuse", "litter-refuse"):
        if behaviour == "litter-refuse":
            Path("half.png").write_bytes(b"")
        print("error: no", file=sys.stderr)
        return 2
    return 0


def entry_point(name: str) -> Callable[[list[str]], int]:
    if name == "selftest":
        return self_test_main
    if name == "dreamer":
        from dreamer.__main__ import main
    elif name == "converters":
        from converters.__main__ import main
    else:
        from models.convert import main
    return main


def warm_up(fixture: Path) -> None:
    """Run every command's valid command line once here, so that no child pays for the
    imports and first-use initialisations."""
    import torch

    torch.set_num_threads(1)
    for command in COMMANDS:  # not SELF_TEST
        if command.name == "video":
            # A video decoded here makes every forked child's decoding hang (PyAV 18.1.1;
            # 18.1.0 did not): only its imports are warmed.
            import av  # noqa: F401  (optional, as in dreamer/motion/media.py)
            continue
        argv = [a.replace("{fx}", str(fixture)) for a in command.base(fixture)]
        with tempfile.TemporaryDirectory() as cwd, open(os.devnull, "w") as null, \
                contextlib.redirect_stdout(null), contextlib.redirect_stderr(null):
            os.chdir(cwd)
            os.environ.update(case_env(fixture, Path(cwd), command.name))
            try:
                entry_point(command.entry)(argv)
            finally:
                os.chdir(ROOT)


def case_env(fixture: Path, cwd: Path, command: str) -> dict[str, str]:
    """The environment of a case: no converted zoo model, an empty mirror (never a
    download); `models` converts into the case's folder."""
    models = cwd / "models" if command == "models" else fixture / "zoo"
    return {"DREAMZOO_MODELS": str(models), "DREAMZOO_MIRROR": str(fixture / "mirror"),
            "DREAMZOO_CACHE": str(fixture / "mirror")}


def address_space() -> int:
    """This process's virtual memory size in bytes."""
    status = Path("/proc/self/status").read_text()
    return int(re.search(r"VmSize:\s+(\d+) kB", status)[1]) * 1024


def run_child(entry: str, argv: list[str], cwd: str, logs: str, env: dict[str, str],
              seconds: int) -> None:
    """In the forked child: the case, then `os._exit` with its exit status."""
    status = 1
    try:
        os.chdir(cwd)
        os.environ.update(env)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        for fd, name in ((1, "stdout"), (2, "stderr")):
            os.dup2(os.open(f"{logs}/{name}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC), fd)
        limit = address_space() + MEMORY_MARGIN
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        resource.setrlimit(resource.RLIMIT_FSIZE, (FILE_LIMIT, FILE_LIMIT))
        signal.alarm(seconds)
        status = entry_point(entry)(argv)
    except SystemExit as e:  # argparse
        status = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except BaseException:  # as Python does with an uncaught exception
        traceback.print_exc()
        status = 1
    finally:
        with contextlib.suppress(BaseException):
            sys.stdout.flush()
            sys.stderr.flush()
        os._exit(status if isinstance(status, int) and 0 <= status < 256 else 1)


def run_forked(request: dict) -> dict:
    """Fork, run the case in the child, wait for it (killed past its time)."""
    sys.stdout.flush()
    sys.stderr.flush()
    began = time.monotonic()
    pid = os.fork()
    if pid == 0:
        run_child(**request)
    deadline = began + request["seconds"] + 10
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            _, status = os.waitpid(pid, 0)
            break
        time.sleep(0.002)
    answer = {"seconds": time.monotonic() - began}
    if os.WIFSIGNALED(status):
        answer["signal"] = signal.Signals(os.WTERMSIG(status)).name
    else:
        answer["status"] = os.WEXITSTATUS(status)
    return answer


def worker(answer_fd: int, fixture: Path) -> None:
    warm_up(fixture)
    gc.freeze()  # a child's collections then leave the shared pages alone (fewer copies)
    with os.fdopen(answer_fd, "w", buffering=1) as answers:
        answers.write("ready\n")
        for line in sys.stdin:
            answers.write(json.dumps(run_forked(json.loads(line))) + "\n")


class Worker:
    """The worker process, and the pipe it answers on."""

    def __init__(self, log: Path, fixture: Path) -> None:
        from fuzz import start_worker  # the reader fuzz's (tests/fuzz.py)

        self.process, read_fd = start_worker(__file__, [str(fixture)], log, stdout=None)
        self.answers = os.fdopen(read_fd, "r")
        if not select.select([self.answers], [], [], STARTUP_SECONDS)[0] or \
                self.answers.readline().strip() != "ready":
            self.close()
            raise RuntimeError(f"the CLI fuzz worker did not start; see {log}")

    def run(self, request: dict) -> dict:
        self.process.stdin.write((json.dumps(request) + "\n").encode())
        self.process.stdin.flush()
        line = self.answers.readline()
        if not line:
            raise RuntimeError("the CLI fuzz worker died")
        return json.loads(line)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.stdin.close()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.answers.close()


# --- judging a case ----------------------------------------------------------------------------

@dataclass
class Outcome:
    case: Case
    status: int | None
    signal: str | None
    stdout: str
    stderr: str
    seconds: float
    findings: list[str] = field(default_factory=list)  # symptoms; none: the case is fine


def last_value(argv: list[str], flag: str) -> str | None:
    """The value of the last `flag` (also `--flag=value`) in argv."""
    value = None
    for k, arg in enumerate(argv):
        if arg == flag and k + 1 < len(argv):
            value = argv[k + 1]
        elif arg.startswith(flag + "="):
            value = arg[len(flag) + 1:]
    return value


def expected_outputs(case: Case, cwd: Path) -> list[Path]:
    """What the case may write on success (absolute, not resolved)."""
    command = COMMAND[case.command]
    found = [last_value(case.argv, flag) for flag in command.outputs]
    paths = [cwd / p for p in found if p]
    if last_value(case.argv, "-o") is None:
        paths += [cwd / p for p in command.default_output(case.argv)]
    if case.command in ("zoom", "video") and last_value(case.argv, "--frames-dir") is None \
            and last_value(case.argv, "-o"):
        out = cwd / last_value(case.argv, "-o")
        paths.append(out.parent / f"{out.stem}_frames")
    if case.command == "models":
        name = last_value(case.argv, "--name")
        if name:
            paths.append(cwd / "models" / name)
    return paths


def valid_output(path: Path, command: str) -> str | None:
    """Why `path` is not a valid output of `command` (None: it is)."""
    try:
        if path.is_dir():
            return valid_folder(path, command)
        if not path.is_file():
            return "missing" if not path.exists() else "not a file"
        suffix = ".onnx" if command == "export" else path.suffix.lower()
        if suffix in (".png", ".jpg", ".jpeg", ".gif"):
            from PIL import Image

            with Image.open(path) as image:
                if all(low == high for low, high in image.convert("RGB").getextrema()):
                    return "a uniform image"  # not a dream of the noise image
        elif suffix == ".npy":
            import numpy as np

            if not np.isfinite(np.load(path)).all():
                return "not finite"
        elif suffix == ".mp4":
            import av

            with av.open(str(path)) as video:
                next(video.decode(video=0))
        elif suffix == ".onnx":
            import onnx

            onnx.checker.check_model(onnx.load(str(path)))
        else:
            return f"an output with suffix {suffix!r}"
    except Exception as e:
        return f"unreadable ({type(e).__name__}: {str(e)[:80]})"
    return None


def valid_folder(path: Path, command: str) -> str | None:
    files = [p for p in path.rglob("*") if p.is_file()]
    if not files:
        return "an empty folder"
    if command in ("convert", "models"):
        import converters

        converters.load(path)
        return None
    for file in files:
        if file.suffix == ".png" and (why := valid_output(file, command)):
            return f"{file.name}: {why}"
    return None


def judge(outcome: Outcome, root: Path, cwd: Path, before: dict, fixture: Path,
          fixture_before: dict, messages: bool = False) -> None:
    """Fill outcome.findings: what the case did that a command must not do; with
    `messages`, also an error that names neither the option given a bad value nor the
    value (a heuristic: another option's good value may be what is refused)."""
    found = outcome.findings
    lines = [line for line in outcome.stderr.splitlines() if line.strip()]
    if outcome.signal:
        found.append("hang" if outcome.signal in ("SIGALRM", "SIGKILL")
                     else f"killed by {outcome.signal}")
    if "Traceback (most recent call last)" in outcome.stderr:
        last = lines[-1] if lines else ""
        found.append(f"traceback {last.split(':')[0]}")
    if snapshot(fixture) != fixture_before:
        found.append("changed an input")
    after = snapshot(root)
    written = sorted(p for p, v in after.items() if before.get(p) != v)
    status = outcome.status
    crashed = bool(found)  # a signal or a traceback: its stderr is not judged further
    if status == 0:
        allowed = [p.resolve() for p in expected_outputs(outcome.case, cwd)]
        for path in expected_outputs(outcome.case, cwd):
            if (why := valid_output(path, outcome.case.command)) is not None:
                found.append(f"exit 0 with an invalid output ({why})")
        stray = [p for p in written if not any(
            (root / p).resolve().is_relative_to(a)  # the output, or in it
            or (after[p][0] == "dir" and a.is_relative_to((root / p).resolve()))  # its folder
            for a in allowed)]
        if stray:
            found.append("wrote what it was not asked for")
        if not COMMAND[outcome.case.command].outputs and not outcome.stdout.strip() \
                and outcome.case.command != "models":
            found.append("exit 0 and printed nothing")
    elif status in (1, 2) and not outcome.signal:
        if status == 1 and outcome.case.command in ("batch", "check"):
            return  # a batch with failed items, a check over its tolerance
        if written:
            found.append(f"exit {status} and wrote {written[0]}")
        if crashed:
            return
        if status == 1:
            found.append("exit 1")
        errors = [line for line in lines if not line.startswith(("usage:", " "))]
        if not any(line.startswith("error:") or ": error:" in line for line in lines[-1:]):
            found.append(f"exit {status} without an error line")
        elif len(errors) > 1:
            found.append(f"exit {status} with {len(errors)} lines on stderr")
        elif messages and outcome.case.bad and not names_the_bad_value(outcome.case, lines[-1]):
            found.append(f"an error that names neither {outcome.case.bad[0]} nor its value")
    elif status is not None and not crashed:
        found.append(f"exit {status}")


def names_the_bad_value(case: Case, error: str) -> bool:
    flag, value = case.bad
    named = {flag, flag.lstrip("-"), value.strip(), repr(value.strip())}
    if flag == "SRC" or flag == "IN" or flag == "IMG" or flag == "INPUT":
        named |= {"source", "input", "image"}
    return any(name and name.lower() in error.lower() for name in named)


def category(outcome: Outcome) -> str:
    """A finding's kind: the symptoms and the last stderr line with its numbers and paths
    left out, so that one bug hit with many values counts once."""
    last = ([line for line in outcome.stderr.splitlines() if line.strip()] or [""])[-1]
    last = re.sub(r"(/[^\s:'\"]*)+", "PATH", last)
    last = re.sub(r"'[^']*'", "'…'", last)
    last = re.sub(r"[-+]?\d[\d.e+-]*", "N", last)
    return f"{outcome.case.command} | {'; '.join(outcome.findings)} | {last[:140]}"


# --- running cases ----------------------------------------------------------------------------

class Runner:
    """The worker, the fixture and the scratch folders of a fuzz run."""

    def __init__(self, scratch: Path, seconds: int = CASE_SECONDS, messages: bool = False
                 ) -> None:
        self.scratch, self.seconds, self.messages = scratch, seconds, messages
        self.fixture = scratch / "fixture"
        make_fixture(self.fixture)
        self.pristine = scratch / "pristine"
        shutil.copytree(self.fixture, self.pristine, symlinks=True)
        self.fixture_before = snapshot(self.fixture)
        self.worker = Worker(scratch / "worker.log", self.fixture)
        self.count = 0

    def run(self, case: Case, seconds: int | None = None) -> Outcome:
        self.count += 1
        root = self.scratch / "case"
        shutil.rmtree(root, ignore_errors=True)
        cwd, logs = root / "work", self.scratch / "logs"
        cwd.mkdir(parents=True)
        logs.mkdir(exist_ok=True)
        before = snapshot(root)
        env = case_env(self.fixture, cwd, case.command)
        entry = COMMAND[case.command].entry
        answer = self.worker.run({"entry": entry, "argv": case.argv, "cwd": str(cwd),
                                  "logs": str(logs), "env": env,
                                  "seconds": seconds or self.seconds})
        outcome = Outcome(case, answer.get("status"), answer.get("signal"),
                          (logs / "stdout").read_text(errors="replace"),
                          (logs / "stderr").read_text(errors="replace"), answer["seconds"])
        judge(outcome, root, cwd, before, self.fixture, self.fixture_before, self.messages)
        if "changed an input" in outcome.findings:
            shutil.rmtree(self.fixture)
            shutil.copytree(self.pristine, self.fixture, symlinks=True)
        shutil.rmtree(root, ignore_errors=True)
        return outcome

    def close(self) -> None:
        self.worker.close()


def fuzz(runner: Runner, count: int, seed_value: int | None,
         names: tuple[str, ...] = GENERATED,
         on_case: Callable[[Outcome], None] | None = None) -> list[Outcome]:
    """`count` generated cases (fixed with `seed_value`, else derandomised); the outcome of
    each different one."""
    outcomes: list[Outcome] = []
    seen: set[tuple[str, tuple[str, ...]]] = set()

    @settings(max_examples=count, deadline=None, database=None, derandomize=seed_value is None,
              suppress_health_check=list(HealthCheck), phases=[Phase.generate])
    @given(cases(runner.fixture, names))
    def one(case: Case) -> None:
        key = (case.command, tuple(case.argv))
        if key in seen:  # Hypothesis may draw a case again: its outcome is known
            return
        seen.add(key)
        outcomes.append(runner.run(case))
        if on_case is not None:
            on_case(outcomes[-1])

    (seed(seed_value)(one) if seed_value is not None else one)()
    return outcomes


def report(outcomes: list[Outcome]) -> str:
    """Each finding's category once, with its number of cases and its smallest example."""
    kinds: dict[str, list[Outcome]] = {}
    for outcome in outcomes:
        if outcome.findings:
            kinds.setdefault(category(outcome), []).append(outcome)
    lines = []
    for kind, hits in sorted(kinds.items()):
        example = min(hits, key=lambda o: len(" ".join(o.case.argv)))
        last = ([ln for ln in example.stderr.splitlines() if ln.strip()] or ["(no stderr)"])
        lines += [f"[{len(hits)}] {kind}", f"    {example.case.shown()}",
                  f"    -> exit {example.signal or example.status}: {last[-1][:200]}"]
    return "\n".join(lines)


def repro(command: str, argv: list[str]) -> int:
    """One case in this process, tracebacks shown ({fx} in argv: a fresh fixture)."""
    with tempfile.TemporaryDirectory() as scratch:
        fixture = Path(scratch) / "fixture"
        make_fixture(fixture)
        os.environ.update(case_env(fixture, Path(scratch), command))
        os.chdir(scratch)
        return entry_point(COMMAND[command].entry)(
            [a.replace("{fx}", str(fixture)) for a in argv])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--seed", type=int, help="default: random")
    parser.add_argument("--commands", nargs="+", choices=GENERATED, default=GENERATED)
    parser.add_argument("--seconds", type=int, default=CASE_SECONDS, help="per case")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "cli-fuzz",
                        help="folder for findings.txt")
    parser.add_argument("--verbose", action="store_true", help="print every case")
    parser.add_argument("--messages", action="store_true", help="also report errors that "
                        "name neither the bad option nor its value (a heuristic, noisy)")
    parser.add_argument("--repro", nargs=argparse.REMAINDER, metavar="COMMAND ARG")
    parser.add_argument("--worker", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker is not None:
        worker(int(args.worker[0]), Path(args.worker[1]))
        return 0
    if args.repro:
        return repro(args.repro[0], args.repro[1:])
    chosen = args.seed if args.seed is not None else int.from_bytes(os.urandom(4), "little")
    args.out.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="dreamzoo-cli-fuzz-") as scratch:
        runner = Runner(Path(scratch), args.seconds, args.messages)

        def progress(outcome: Outcome) -> None:
            if args.verbose:
                last = (outcome.stderr.strip().splitlines() or [""])[-1][:150]
                print(f"{outcome.seconds:5.2f}s exit {outcome.signal or outcome.status} "
                      f"{outcome.findings} {outcome.case.shown()}\n      {last}", flush=True)
            elif runner.count % 100 == 0:
                print(f"  {runner.count} cases", file=sys.stderr, flush=True)

        try:
            outcomes = fuzz(runner, args.cases, chosen, tuple(args.commands), progress)
        finally:
            runner.close()
    text = report(outcomes)
    (args.out / "findings.txt").write_text(text + "\n")
    bad = sum(bool(o.findings) for o in outcomes)
    print(text)
    print(f"seed {chosen}: {len(outcomes)} cases, {bad} with findings, "
          f"{time.perf_counter() - began:.0f} s; listed in {args.out / 'findings.txt'}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
