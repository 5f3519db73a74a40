"""Shared fixtures. Reference data lives outside the repo, in the folder named by
DREAMZOO_SHARED (default ../shared). Without it, tests that need it skip with the
reason; with DREAMZOO_REQUIRE_SHARED=1 (CI) such a skip is a failure instead."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest
import torch
from ray_cluster import PrivateRay, private_ray_settings, short_temp_root

import converters

ROOT = Path(__file__).resolve().parent.parent
SHARED = Path(os.environ.get("DREAMZOO_SHARED", ROOT.parent / "shared")).resolve()
REQUIRE_SHARED = os.environ.get("DREAMZOO_REQUIRE_SHARED", "") not in ("", "0")
# The studio's browser fixtures (studio, googlenet_zoo, browser, page).
pytest_plugins = ["studio_harness"]


def shared_path(*parts: str) -> Path:
    """A path under the shared reference folder; skips (or fails in CI) if absent."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        reason = f"reference data {path} not found (set DREAMZOO_SHARED)"
        if REQUIRE_SHARED:
            pytest.fail(reason + " and DREAMZOO_REQUIRE_SHARED is set")
        pytest.skip(reason)
    return path


@pytest.fixture(scope="session")
def formula_weights():
    """The stand-in weight formula, `blob(layer, index, shape)`, from shared/tools."""
    tools = shared_path("tools")
    sys.path.insert(0, str(tools))
    try:
        import formula_weights as module
    finally:
        sys.path.remove(str(tools))
    return module.blob


@pytest.fixture(scope="module")
def tiny():
    """The tiny Caffe test net (shared/models/tiny), real Caffe-written weights."""
    models = shared_path("models", "tiny")
    return converters.load_caffe(models / "deploy.prototxt", models / "tiny.caffemodel")


@pytest.fixture(scope="module")
def tiny_cli_args() -> list[str]:
    """The command-line options that dream on the shared tiny Caffe net."""
    models = shared_path("models", "tiny")
    return ["--model", str(models / "deploy.prototxt"),
            "--weights", str(models / "tiny.caffemodel")]


@pytest.fixture(scope="module")
def googlenet_cli_args() -> list[str]:
    """The command-line options that dream on BVLC GoogLeNet with its real weights."""
    models = shared_path("models", "bvlc_googlenet")
    return ["--model", str(models / "deploy.prototxt"),
            "--weights", str(models / "bvlc_googlenet.caffemodel")]


@pytest.fixture
def one_thread():
    """Torch runs 1 thread during the test (as each Ray worker of 1 CPU does), then as before."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def googlenet():
    """BVLC GoogLeNet with its real weights (shared/models/bvlc_googlenet)."""
    models = shared_path("models", "bvlc_googlenet")
    return converters.load_caffe(models / "deploy.prototxt", models / "bvlc_googlenet.caffemodel")


@pytest.fixture(scope="module")
def nin():
    """NIN ImageNet with the stand-in (formula) weights of shared/models."""
    models = shared_path("models", "nin_imagenet")
    return converters.load_caffe(models / "deploy.prototxt",
                                 models / "nin_imagenet_formula.caffemodel")


@pytest.fixture(scope="session", autouse=True)
def no_outside_ray():
    """No test can join a Ray it did not start: `--ray auto` (a bare `ray.init()`) looks for
    RAY_ADDRESS and for the `ray_current_cluster` file in Ray's temp folder (RAY_TMPDIR);
    for the session the one is unset and the other is a new folder of its own, which also
    holds the Ray authentication token (not ~/.ray/auth_token)."""
    root = short_temp_root()
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("RAY_ADDRESS", raising=False)
        for name, value in private_ray_settings(root).items():
            patch.setenv(name, value)
        yield
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(autouse=True)
def not_a_ray_driver():
    """The test process never connects to Ray (an outside `ray stop` would end pytest with
    it): Ray commands run as subprocesses on the `ray_cluster` fixture's cluster."""
    yield
    ray = sys.modules.get("ray")
    if ray is not None and hasattr(ray, "is_initialized") and ray.is_initialized():
        ray.shutdown()
        pytest.fail("this test connected the test process to Ray; run the command on the "
                    "`ray_cluster` fixture (ray_cluster.dreamer(...)) instead")


@pytest.fixture(scope="session")
def ray_cluster():
    """The tests' own Ray cluster of 2 CPUs (tests/ray_cluster.py: own temp folder and
    ports, stopped by us alone), one for the session (its start costs seconds); run
    commands on it with `ray_cluster.dreamer(*args)`."""
    pytest.importorskip("ray")
    cluster = PrivateRay(cpus=2)
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.close()
