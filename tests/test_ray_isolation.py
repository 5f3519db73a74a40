"""The tests' Ray is their own and an outside `ray stop` ends no test run (issue 19: the
suite joined the machine's Ray, and an outside `ray stop` ended pytest, a Ray driver, with
exit 1 and no summary). The cluster and its commands: tests/ray_cluster.py.

`ray stop` stops every Ray process of the user on the machine, so the tests here run the
real one only inside a PID namespace of their own (`unshare`, where the kernel allows it),
where it sees no process but theirs; elsewhere they stop their cluster as it does."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import shared_path
from PIL import Image
from ray_cluster import checkout_environment, command_line, ray_executable

pytest.importorskip("ray")

REAL_STOP = "DREAMZOO_TEST_REAL_RAY_STOP"  # holds the PID namespace the real stop must not be in
NAMESPACE = ["unshare", "--user", "--map-root-user", "--pid", "--fork", "--mount-proc"]


def pid_namespace() -> str:
    return os.readlink("/proc/self/ns/pid")


def test_the_tests_ray_is_their_own(ray_cluster):
    # for the session: no RAY_ADDRESS, and Ray's temp folder (where `auto` looks for a
    # cluster) and its authentication token are a folder of the session's own
    assert "RAY_ADDRESS" not in os.environ
    own = Path(os.environ["RAY_TMPDIR"])
    assert own.name.startswith("dzray-") and own != Path("/tmp")
    assert Path(os.environ["RAY_AUTH_TOKEN_PATH"]).parent == own
    # the cluster: not Ray's default port, its files in a folder of its own
    port = ray_cluster.ensure().rpartition(":")[2]
    assert port != "6379"
    assert ray_cluster.temp_dir.parent == ray_cluster.root != own
    assert (ray_cluster.temp_dir / "ray_current_cluster").read_text().endswith(f":{port}")
    assert f"--temp-dir={ray_cluster.temp_dir}" in command_line(ray_cluster.process.pid)


def stop_when_working(ray_cluster, finished: threading.Event, stopped: list[str]) -> None:
    """Stop the cluster as an outside `ray stop` does, once its first worker runs."""
    while not ray_cluster.workers("DreamWorker"):
        if finished.wait(0.05):
            return
    if os.environ.get(REAL_STOP, pid_namespace()) != pid_namespace():  # a namespace of ours
        stopped.append(subprocess.run([ray_executable(), "stop"], stdout=subprocess.PIPE,
                                      stderr=subprocess.STDOUT, text=True).stdout)
    else:
        ray_cluster.stop_as_ray_stop_does()
        stopped.append("as ray stop does")


def test_a_command_stopped_by_an_outside_ray_stop_runs_again_on_a_new_cluster(
        ray_cluster, tiny_cli_args, tmp_path):
    cat = Image.open(shared_path("models", "_common", "cat.jpg")).resize((96, 72))
    cat.save(tmp_path / "cat.png")
    ray_cluster.ensure()
    starts, finished, stopped = ray_cluster.starts, threading.Event(), []
    stopper = threading.Thread(target=stop_when_working, args=(ray_cluster, finished, stopped))
    stopper.start()
    try:
        done = ray_cluster.dreamer("batch", str(tmp_path / "cat.png"), "conv2", "100", "0.02",
                                   *tiny_cli_args, "--quiet", "-o", str(tmp_path / "out"))
    finally:
        finished.set()
        stopper.join()
    assert stopped  # the first run was stopped under the command, which ran again
    assert done.returncode == 0, done.stderr
    assert ray_cluster.starts == starts + 1 and ray_cluster.alive()
    assert (tmp_path / "out" / "cat.png").is_file() and "1 done" in done.stdout
    print(f"stopped {stopped[0]}")  # `ray stop`'s report, when it was the real one


def test_the_same_with_the_real_ray_stop_in_a_pid_namespace_of_its_own():
    """The test above, in a pytest of its own in a new PID namespace, stopped by `ray stop`
    itself; skipped where the kernel allows no user namespaces (`unshare` fails)."""
    if subprocess.run([*NAMESPACE, "true"], capture_output=True).returncode != 0:
        pytest.skip("unshare: no user and PID namespaces here")
    test = f"{__file__}::test_a_command_stopped_by_an_outside_ray_stop_runs_again_on_a_new_cluster"
    done = subprocess.run([*NAMESPACE, sys.executable, "-m", "pytest", "-q", "-s",
                           "-p", "no:cacheprovider", test],
                          env={**checkout_environment(), REAL_STOP: pid_namespace()},
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "1 passed" in done.stdout
    assert "Stopped" in done.stdout  # `ray stop`'s report: "Stopped all N Ray processes" or
    # "Stopped only N out of M" (in the grace period; it kills the others)
