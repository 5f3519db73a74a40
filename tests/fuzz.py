"""`make fuzz`: every reader on mutated files, in a worker process that is restarted.

    python tests/fuzz.py [--cases N] [--start I] [--formats F ...] [--timeout S]
    python tests/fuzz.py --repro FORMAT INDEX [--keep DIR]   # one case, here, traceback shown

The worker (this file with --worker) builds each case from its number
(`fuzz_cases.make_case`), reads it as the CLI does, and answers one JSON line per case
on a pipe of its own. It runs on one thread under an address-space limit (RLIMIT_AS),
so a huge allocation fails inside it instead of taking the machine's memory. A worker
that does not answer within the per-case time limit (a hang) or dies (a crash, such as
a segfault in a C++ parser) is a finding; a new worker takes the next case.

A finding is also any exception other than the format's own error, and an error whose
message is not one line. Findings are listed in `findings.txt` of the output folder,
one `FORMAT INDEX` a line: cases are deterministic, so that repeats them.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fuzz_cases import FORMATS, Seed, format_named, make_case, write_case  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
MEMORY_LIMIT = 4 << 30  # bytes of address space for a worker
STARTUP_SECONDS = 120.0  # imports and seeds (an ONNX export) on a busy machine


@dataclass
class Report:
    """What one format's cases gave."""

    cases: int = 0
    rejected: int = 0  # the format's one-line error: what a bad file must give
    accepted: int = 0  # read without error (the mutation kept the file valid)
    findings: list[str] = field(default_factory=list)  # "INDEX KIND: DETAIL"
    seconds: float = 0.0


# --- the worker -----------------------------------------------------------------------------

def run_case(name: str, index: int, seeds: list[Seed], folder: Path) -> dict[str, str]:
    """Build case `index` into `folder`, read it; the outcome and, for a finding, why."""
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    try:
        write_case(make_case(name, index, seeds), folder)
    except Exception:  # a bug of the fuzzer, not of a reader: the driver stops
        return {"outcome": "broken", "detail": traceback.format_exc()}
    fmt = format_named(name)
    try:
        fmt.read(folder)
    except fmt.error() as e:
        if str(e) and "\n" not in str(e):
            return {"outcome": "rejected"}
        return {"outcome": "finding", "detail": f"multi-line error: {str(e)[:300]!r}"}
    except Exception as e:  # anything else is what the fuzzer looks for
        kind = "memory" if isinstance(e, MemoryError) or "allocate" in str(e) else "exception"
        first = (str(e).strip().splitlines() or [""])[0][:200]
        detail = f"{type(e).__name__} at {raised_at(e)}: {first}"
        return {"outcome": "finding", "detail": f"{kind}: {detail}"}
    return {"outcome": "accepted"}


def raised_at(error: Exception) -> str:
    """file:line of the deepest frame of the traceback in our code (not in a library)."""
    frames = traceback.extract_tb(error.__traceback__)
    ours = [f for f in frames if f.filename.startswith(str(ROOT)) and "/tests/" not in f.filename]
    where = (ours or frames)[-1]
    return f"{Path(where.filename).relative_to(ROOT) if ours else where.filename}:{where.lineno}"


def warm_up(name: str, seed: Seed, folder: Path) -> None:
    """Read a seed once, so that first-use imports and caches are not timed as a case."""
    folder.mkdir(parents=True, exist_ok=True)
    write_case(seed.files, folder)
    try:
        format_named(name).read(folder)
    except format_named(name).error():
        pass  # some seeds are not networks (torchfile's test files)
    shutil.rmtree(folder)


def scratch_folder(pid: int) -> Path:
    """Where worker `pid` writes its cases; the driver removes it when the worker ends,
    also when it was killed."""
    return Path(tempfile.gettempdir()) / f"dreamzoo-fuzz-{pid}"


def worker(answer_fd: int, names: list[str]) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT, MEMORY_LIMIT))
    import torch

    torch.set_num_threads(1)
    scratch = scratch_folder(os.getpid())
    scratch.mkdir()
    try:
        seeds = {}
        for name in names:
            (scratch / name).mkdir()
            seeds[name] = format_named(name).seeds(scratch / name)
            warm_up(name, seeds[name][0], scratch / "case")
        with os.fdopen(answer_fd, "w", buffering=1) as answers:
            answers.write("ready\n")
            for line in sys.stdin:
                name, index = line.split()
                result = run_case(name, int(index), seeds[name], scratch / "case")
                answers.write(json.dumps(result) + "\n")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# --- the driver -----------------------------------------------------------------------------

def start_worker(script: str, args: list[str], log: Path, stdout=subprocess.DEVNULL
                 ) -> tuple[subprocess.Popen, int]:
    """`python SCRIPT --worker FD ARGS` in the repository, one thread, its stderr added to
    `log` (its stdout too if `stdout` is None): the process (requests go to its stdin) and
    the end of the pipe it answers on (FD)."""
    read_fd, write_fd = os.pipe()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT),
                                                      os.environ.get("PYTHONPATH")]))}
    with open(log, "ab") as stderr:
        process = subprocess.Popen(
            [sys.executable, script, "--worker", str(write_fd), *args],
            stdin=subprocess.PIPE, stdout=stderr if stdout is None else stdout,
            stderr=stderr, pass_fds=(write_fd,), env=env, cwd=ROOT)
    os.close(write_fd)
    return process, read_fd


class Worker:
    """A worker process and the pipe it answers on."""

    def __init__(self, names: list[str], log: Path) -> None:
        self.process, self.answers = start_worker(__file__, names, log)
        self.buffer = b""
        if self.read_line(STARTUP_SECONDS) != "ready":
            self.close()
            raise RuntimeError(f"the fuzz worker did not start; see {log}")

    def ask(self, name: str, index: int, timeout: float) -> dict[str, str]:
        try:
            self.process.stdin.write(f"{name} {index}\n".encode())
            self.process.stdin.flush()
        except BrokenPipeError:
            return self.died()
        line = self.read_line(timeout)
        if line is None:
            self.close()
            return {"outcome": "finding", "detail": f"hang: no answer in {timeout:g} s"}
        return json.loads(line) if line else self.died()

    def read_line(self, timeout: float) -> str | None:
        """The next line; "" if the worker died, None if it said nothing in time."""
        deadline = time.monotonic() + timeout
        while b"\n" not in self.buffer:
            left = deadline - time.monotonic()
            if left <= 0 or not select.select([self.answers], [], [], left)[0]:
                return None
            chunk = os.read(self.answers, 65536)
            if not chunk:
                return ""
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode()

    def died(self) -> dict[str, str]:
        code = self.process.wait()
        self.close()
        how = f"signal {signal.Signals(-code).name}" if code < 0 else f"exit status {code}"
        return {"outcome": "finding", "detail": f"crash: the worker died ({how})"}

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self.process.stdin.close()
        os.close(self.answers)
        shutil.rmtree(scratch_folder(self.process.pid), ignore_errors=True)


def fuzz(names: list[str], cases: int | dict[str, int], start: int = 0, timeout: float = 30.0,
         log: Path | None = None, listing: Path | None = None) -> dict[str, Report]:
    """Cases start..start+cases-1 of each format (`cases`: a count, or one per format),
    all in one worker while none crashes or hangs; a report per format. With `listing`,
    findings are written there as they come, and progress to stderr."""
    log = log or Path(tempfile.gettempdir()) / "dreamzoo-fuzz-worker.log"
    reports = {name: Report() for name in names}
    current: Worker | None = Worker(names, log)  # started before any clock runs
    try:
        for name in names:
            report, began = reports[name], time.perf_counter()
            count = cases[name] if isinstance(cases, dict) else cases
            for index in range(start, start + count):
                if current is None or current.process.poll() is not None:
                    current = Worker(names, log)
                result = current.ask(name, index, timeout)
                if result["outcome"] == "broken":
                    raise RuntimeError(f"case {name} {index} cannot be made:\n{result['detail']}")
                if current.process.poll() is not None:
                    current = None
                report.cases += 1
                if result["outcome"] == "finding":
                    report.findings.append(f"{index} {result['detail']}")
                    if listing is not None:
                        with open(listing, "a") as out:
                            out.write(f"{name} {report.findings[-1]}\n")
                else:
                    setattr(report, result["outcome"], getattr(report, result["outcome"]) + 1)
                if listing is not None and report.cases % 1000 == 0:
                    print(f"  {name}: {report.cases} cases", file=sys.stderr, flush=True)
            report.seconds = time.perf_counter() - began
    finally:
        if current is not None:
            current.close()
    return reports


def summary(reports: dict[str, Report]) -> str:
    lines = [f"{'format':<11} {'cases':>6} {'rejected':>8} {'accepted':>8} {'findings':>8} "
             f"{'cases/s':>7}"]
    for name, r in reports.items():
        lines.append(f"{name:<11} {r.cases:>6} {r.rejected:>8} {r.accepted:>8} "
                     f"{len(r.findings):>8} {r.cases / max(r.seconds, 1e-9):>7.0f}")
    return "\n".join(lines)


def repro(name: str, index: int, keep: Path | None) -> None:
    """Run one case in this process, so that its traceback shows."""
    import torch

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as scratch:
        seeds = format_named(name).seeds(Path(scratch))
        folder = keep or Path(scratch) / "case"
        folder.mkdir(parents=True, exist_ok=True)
        write_case(make_case(name, index, seeds), folder)
        print(f"case files in {folder}", file=sys.stderr)
        format_named(name).read(folder)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=10_000, help="cases per format")
    parser.add_argument("--start", type=int, default=0, help="number of the first case")
    parser.add_argument("--formats", nargs="+", choices=list(FORMATS), default=list(FORMATS))
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per case")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "fuzz",
                        help="folder for findings.txt and the worker log")
    parser.add_argument("--repro", nargs=2, metavar=("FORMAT", "INDEX"))
    parser.add_argument("--keep", type=Path, help="with --repro: write the case files here")
    parser.add_argument("--worker", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(int(args.worker[0]), args.worker[1:])
        return 0
    if args.repro:
        repro(args.repro[0], int(args.repro[1]), args.keep)
        return 0
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "findings.txt").write_text("")
    began = time.perf_counter()
    reports = fuzz(args.formats, args.cases, args.start, args.timeout,
                   args.out / "worker.log", args.out / "findings.txt")
    print(summary(reports))
    found = sum(len(r.findings) for r in reports.values())
    print(f"{found} findings in {time.perf_counter() - began:.0f} s"
          + (f", listed in {args.out / 'findings.txt'}" if found else ""))
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
