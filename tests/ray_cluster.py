"""The tests' own Ray cluster (issue 19): `ray start --head --block` with its own temp
folder (`RAY_TMPDIR` and `--temp-dir`: its session, sockets and `ray_current_cluster` file
are there, not in /tmp/ray) and its own authentication token (not ~/.ray/auth_token), on
free ports (never Ray's default 6379), stopped by the tests alone: SIGTERM to that
`ray start`, which stops only its own processes. Never `ray stop` (it stops every Ray
process of the user on the machine), never the address `auto`.

The test process is never a Ray driver: commands run on the cluster as subprocesses
(`python -m dreamer ... --ray ADDRESS`). A Ray driver whose cluster is stopped exits (Ray
ends the process), so an outside `ray stop` can end one command here, never pytest. A
cluster found stopped is started again, and a command that ended with it is run once more.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
READY = "This command will now block forever"  # printed by `ray start --block` once up
START_TIMEOUT_S = 120
STOP_TIMEOUT_S = 60
RUNS = 3  # runs of a command whose cluster is stopped under it
GONE_AFTER_S = 5  # a driver whose cluster is gone exits after this (Ray's default: 60)
CORE = ("gcs_server", "raylet")  # the processes without which the cluster is gone


def free_port() -> int:
    """A TCP port no one listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def short_temp_root() -> Path:
    """A new folder for Ray's files with a short path: Unix socket paths (Ray's session
    folder/sockets/...) must stay under 108 bytes."""
    return Path(tempfile.mkdtemp(prefix="dzray-", dir="/tmp" if Path("/tmp").is_dir() else None))


def private_ray_settings(root: Path) -> dict[str, str]:
    """Environment variables that keep Ray's state in `root`: its temp folder (where `auto`
    looks for a cluster) and its authentication token (else ~/.ray/auth_token, which every
    new local Ray of the user may write, and so change under a running cluster's feet)."""
    token = root / "auth_token"
    if not token.exists():
        token.write_text(secrets.token_hex(32))
        token.chmod(0o600)
    return {"RAY_TMPDIR": str(root), "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN_PATH": str(token),
            "RAY_USAGE_STATS_ENABLED": "0"}


def ray_executable() -> str:
    """Ray's command line, beside this Python's (a virtual environment) or on the PATH."""
    beside = Path(sys.executable).with_name("ray")
    return str(beside) if beside.is_file() else shutil.which("ray") or "ray"


def checkout_environment() -> dict[str, str]:
    """This process's environment with this checkout first on the path, 1 torch thread,
    and no RAY_ADDRESS of anyone else: for `python -m dreamer` run by the tests."""
    env = {k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    env["OMP_NUM_THREADS"] = "1"
    return env


def children(pid: int) -> list[int]:
    """The processes whose parent is `pid` (Linux /proc)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            stat = read_stat(int(entry.name))
            if stat is not None and int(stat[1]) == pid:
                found.append(int(entry.name))
    return found


def descendants(pid: int) -> list[int]:
    below = children(pid)
    return below + [d for child in below for d in descendants(child)]


def read_stat(pid: int) -> list[str] | None:
    """State, parent and the rest of /proc/PID/stat after the command name; None if gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()


def kill(pid: int, signal_number: int) -> None:
    """Send a signal to a process of ours, if it is still there."""
    try:
        os.kill(pid, signal_number)
    except ProcessLookupError:
        pass


def running(pid: int) -> bool:
    stat = read_stat(pid)
    return stat is not None and stat[0] not in ("Z", "X")  # a zombie has exited


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def process_name(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


class PrivateRay:
    """A Ray head of `cpus` CPUs whose workers import this checkout."""

    def __init__(self, cpus: int = 2) -> None:
        self.cpus = cpus
        self.root = short_temp_root()
        self.process: subprocess.Popen | None = None
        self.address = ""
        self.starts = 0

    def environment(self) -> dict[str, str]:
        """The environment of the cluster and of the commands run on it: this checkout on
        the path, Ray's files in our folder."""
        return {**checkout_environment(), **private_ray_settings(self.root),
                "RAY_gcs_rpc_server_reconnect_timeout_s": str(GONE_AFTER_S)}

    def start(self) -> None:
        port = free_port()
        self.temp_dir = self.root / f"t{self.starts}"
        self.starts += 1
        command = [ray_executable(), "start", "--head", "--block",
                   f"--port={port}", f"--temp-dir={self.temp_dir}", f"--num-cpus={self.cpus}",
                   "--num-gpus=0", "--include-dashboard=false", "--disable-usage-stats",
                   f"--dashboard-agent-listen-port={free_port()}",
                   f"--dashboard-port={free_port()}", f"--metrics-export-port={free_port()}",
                   "--min-worker-port=0", "--max-worker-port=0"]  # 0: any free port
        self.process = subprocess.Popen(command, env=self.environment(), text=True,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                        start_new_session=True)  # Ctrl-C of pytest: we stop it
        self.log: list[str] = []
        ready = threading.Event()
        threading.Thread(target=self.read_log, args=(self.process, ready), daemon=True).start()
        if not ready.wait(START_TIMEOUT_S) or self.process.poll() is not None:
            self.stop()
            raise RuntimeError("the tests' Ray did not start:\n" + "".join(self.log[-20:]))
        self.address = f"127.0.0.1:{port}"
        self.core = [pid for pid in children(self.process.pid) if process_name(pid) in CORE]

    def read_log(self, process: subprocess.Popen, ready: threading.Event) -> None:
        for line in process.stdout:  # read to the end: a full pipe would block Ray
            self.log.append(line)
            if READY in line:
                ready.set()
        ready.set()

    def alive(self) -> bool:
        """Whether the cluster runs: an outside `ray stop` ends its GCS and raylet but not
        the `ray start --block` process."""
        return (self.process is not None and self.process.poll() is None
                and len(self.core) == len(CORE) and all(map(running, self.core)))

    def ensure(self) -> str:
        """The address of a running cluster, started again if it was stopped: once its GCS
        has stopped too, as `ray stop` stops GCS servers last, after looking for them
        again: a cluster started before then would be stopped with it."""
        if not self.alive():
            deadline = time.monotonic() + STOP_TIMEOUT_S
            while any(map(running, self.core)) and time.monotonic() < deadline:
                time.sleep(0.1)
            self.stop(force=True)  # what is left of it: SIGTERM would wait for the rest
            self.start()
        return self.address

    def stop(self, force: bool = False) -> None:
        """Stop this cluster's processes, and only them (`force`: at once, SIGKILL)."""
        if self.process is None:
            return
        if not force:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                force = True
        if force:
            for pid in [self.process.pid, *descendants(self.process.pid)]:
                kill(pid, signal.SIGKILL)
            self.process.wait()
        self.process = None

    def close(self) -> None:
        """Stop the cluster and remove its folder (ours: made by this class)."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def workers(self, name: str) -> list[int]:
        """The processes of the actors of class `name` (Ray titles them `ray::NAME`)."""
        return [pid for pid in descendants(self.process.pid)
                if command_line(pid).startswith(f"ray::{name}")]

    def stop_as_ray_stop_does(self) -> None:
        """SIGTERM to every process of the cluster but `ray start` itself, as an outside
        `ray stop` would do (which also stops every other Ray of the user)."""
        for pid in descendants(self.process.pid):
            kill(pid, signal.SIGTERM)

    def dreamer(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
        """`python -m dreamer ARGS --ray ADDRESS` on this cluster; run again (up to RUNS
        times in all) if the cluster was stopped under it (by an outside `ray stop`)."""
        for _ in range(RUNS):
            done = self.run_dreamer(args, timeout)
            if done.returncode == 0 or not self.stopping():
                break
        return done

    def stopping(self) -> bool:
        """Whether the cluster is gone, or going: a command can fail on a lost worker before
        the outside stop has ended the GCS and raylet."""
        deadline = time.monotonic() + GONE_AFTER_S
        while self.alive():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.1)
        return True

    def run_dreamer(self, args: tuple[str, ...], timeout: float) -> subprocess.CompletedProcess:
        return subprocess.run(self.command(*args), env=self.environment(), capture_output=True,
                              text=True, timeout=timeout)

    def command(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "dreamer", *args, "--ray", self.ensure()]
