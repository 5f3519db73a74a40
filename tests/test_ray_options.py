"""The Ray options (issue 19): each value is checked where it is parsed, so a bad one is
refused before Ray starts and before anything is written; an address where no Ray answers
is refused within a connect timeout; a cluster too small for --workers, and Ray failing to
start, are one line, exit status 2, and no OUTDIR. Never a Ray of anyone else: refusals
happen before a connection, the rest runs on the tests' own cluster (conftest.py)."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading

import pytest
from conftest import shared_path
from ray_cluster import checkout_environment, free_port

from dreamer.__main__ import main
from dreamer.jobs import ray_pool

pytest.importorskip("ray")

DREAM = ("conv2", "2", "0.05", "--octaves", "1")


@pytest.fixture
def batch_args(tiny_cli_args, tmp_path) -> list[str]:
    """A one-image batch on the tiny net, into tmp_path/out."""
    cat = shared_path("models", "_common", "cat.jpg")
    return ["batch", str(cat), *DREAM, *tiny_cli_args, "--quiet", "-o", str(tmp_path / "out")]


@pytest.fixture
def no_connection(monkeypatch):
    """Fails the test if the command tries to reach Ray."""
    def refuse(ray, address):
        raise AssertionError(f"connected to Ray at {address}")

    monkeypatch.setattr(ray_pool, "connect", refuse)


@pytest.mark.parametrize("option, value", [
    ("--workers", "0"), ("--workers", "-2"), ("--workers", "1.5"), ("--workers", "two"),
    ("--workers", "²"), ("--cpus-per-worker", "0"), ("--cpus-per-worker", ""),
    ("--gpus-per-worker", "-0.5"), ("--gpus-per-worker", "nan"), ("--gpus-per-worker", "inf"),
    ("--ray", ""), ("--ray", "somewhere"), ("--ray", "somewhere:0"), ("--ray", "host:65536"),
    ("--ray", ":6379"), ("--ray", "host:port"), ("--ray", "host:²")])
def test_a_bad_ray_option_is_refused_as_it_is_parsed(option, value, batch_args, tmp_path,
                                                     capsys, no_connection):
    with pytest.raises(SystemExit) as exit_:
        main([*batch_args, "--ray", "auto", option, value])
    assert exit_.value.code == 2
    error = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"error: argument {option}: " in error and repr(value) in error
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("command", ["sweep", "gallery", "video"])
def test_every_command_on_ray_refuses_workers_0(command, tmp_path, capsys, no_connection):
    with pytest.raises(SystemExit) as exit_:
        main([command, "in.png", "--ray", "auto", "--workers", "0", "-o", str(tmp_path / "o")])
    assert exit_.value.code == 2
    assert "error: argument --workers: must be an integer from 1 to 10000 (got '0')" in \
        capsys.readouterr().err
    assert not any(tmp_path.iterdir())


def one_error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_an_address_where_nothing_listens_is_refused_at_once(batch_args, tmp_path, capsys):
    address = f"127.0.0.1:{free_port()}"
    assert main([*batch_args, "--ray", address]) == 2
    assert one_error_line(capsys) == f"error: --ray {address}: cannot connect (Connection refused)"
    assert not (tmp_path / "out").exists()


def test_an_address_that_does_not_answer_is_refused_after_the_connect_timeout(
        batch_args, tmp_path, capsys, monkeypatch):
    """A port that accepts connections and says nothing (ray.init would retry for minutes)."""
    monkeypatch.setattr(ray_pool, "CONNECT_TIMEOUT_S", 0.5)
    with socket.create_server(("127.0.0.1", 0)) as silent:
        address = f"127.0.0.1:{silent.getsockname()[1]}"
        assert main([*batch_args, "--ray", address]) == 2
    assert one_error_line(capsys) == f"error: --ray {address}: no answer within 0.5 s"
    assert not (tmp_path / "out").exists()


def test_an_address_where_something_else_answers_is_refused(batch_args, tmp_path, capsys):
    with socket.create_server(("127.0.0.1", 0)) as server:
        def answer_as_a_web_server() -> None:
            connection, _ = server.accept()
            with connection:
                connection.recv(64)
                connection.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")

        threading.Thread(target=answer_as_a_web_server, daemon=True).start()
        address = f"127.0.0.1:{server.getsockname()[1]}"
        assert main([*batch_args, "--ray", address]) == 2
    assert one_error_line(capsys) == (f"error: --ray {address}: what answers there is not a "
                                      f"Ray cluster")


def test_ray_failing_to_start_is_one_line(batch_args, tmp_path):
    """`auto` with no cluster starts a local Ray, here in a temp folder that cannot be made
    (RAY_TMPDIR is a file): before, NotADirectoryError's traceback."""
    (tmp_path / "file").write_text("not a folder")
    env = {**checkout_environment(), "RAY_TMPDIR": str(tmp_path / "file")}
    done = subprocess.run([sys.executable, "-m", "dreamer", *batch_args, "--ray", "auto"],
                          env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: --ray auto: Ray did not start: [Errno 20] Not a directory: "
        f"'{tmp_path / 'file' / 'ray'}'"]
    assert not (tmp_path / "out").exists()


def test_more_workers_than_the_cluster_holds_are_refused_before_outdir(batch_args, tmp_path,
                                                                        ray_cluster):
    done = ray_cluster.dreamer(*batch_args, "--workers", "5")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: the Ray cluster has 2 CPUs and 0 GPUs: room for 2 workers of 1 CPUs and 0 GPUs, "
        "not 5"]
    assert not (tmp_path / "out").exists()  # before: OUTDIR and dreamzoo-batch.json
