"""The studio's browser-test harness: a studio server in a subprocess on a free port
(a models folder of its own, a temp folder of its own; always stopped afterwards), and
Debian's chromium driven by Playwright. Test modules import the fixtures they use."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from conftest import REQUIRE_SHARED, ROOT, shared_path

import converters

CHROMIUM = Path("/usr/bin/chromium")
START_SECONDS = 60
WAIT_MS = 30_000
MAX_UPLOAD = 100_000  # the test server's upload bound (bytes)
# The tiny net's 10 classes, named for the class search.
CLASS_NAMES = ("tiger cat", "goldfish", "tiger", "dog", "tiger shark", "cow", "bee", "ant",
               "owl", "elk")


def needed(found: bool, what: str) -> None:
    """Skip without `what`; in CI (DREAMZOO_REQUIRE_SHARED) fail instead."""
    if not found:
        reason = f"{what} not found: the studio's browser tests need it"
        if REQUIRE_SHARED:
            pytest.fail(reason + " and DREAMZOO_REQUIRE_SHARED is set")
        pytest.skip(reason)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def environment(zoo: Path, temp: Path) -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "DREAMZOO_MODELS": str(zoo),
            "OMP_NUM_THREADS": "1", "TMPDIR": str(temp), "GRADIO_TEMP_DIR": str(temp / "gradio"),
            "GRADIO_ANALYTICS_ENABLED": "False", "DREAMZOO_STUDIO_MAX_UPLOAD": str(MAX_UPLOAD)}


def studio_needs() -> None:
    """Skip (fail in CI) without chromium or Gradio."""
    needed(CHROMIUM.exists(), f"chromium ({CHROMIUM}; Debian's package)")
    try:
        import gradio  # noqa: F401
    except ImportError:
        needed(False, "gradio (dreamzoo[studio])")


@contextmanager
def running_studio(root: Path, *flags: str) -> Iterator[tuple[str, dict[str, str], Path]]:
    """(URL, environment, root) of a studio serving the models of `root`/zoo, with its
    temp folder in `root`/temp and its log in `root`/server.log; `flags`: more options."""
    studio_needs()
    (root / "temp").mkdir(exist_ok=True)
    env, port = environment(root / "zoo", root / "temp"), free_port()
    log = (root / "server.log").open("w")
    server = subprocess.Popen([sys.executable, "-m", "dreamer", "studio", "--port", str(port),
                               *flags], cwd=root, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_for(url, server, root / "server.log")
        yield url, env, root
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def wait_for(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"the studio exited ({server.returncode}):\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"the studio did not answer in {START_SECONDS} s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        needed(False, "playwright (the dev extras)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                              args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield launched
        launched.close()


@pytest.fixture
def page(browser, studio):
    opened = browser.new_page(accept_downloads=True)
    opened.set_default_timeout(WAIT_MS)
    opened.goto(studio[0])
    yield opened
    opened.close()




@pytest.fixture(scope="module")
def studio(tiny, tmp_path_factory):
    """(URL, environment, root) of a running studio offering the tiny net alone, with
    `CLASS_NAMES` as its labels."""
    studio_needs()
    root = tmp_path_factory.mktemp("studio")
    converters.save(tiny, root / "zoo" / "tiny")
    (root / "zoo" / "tiny" / "labels.txt").write_text("".join(f"{n}\n" for n in CLASS_NAMES))
    with running_studio(root) as running:
        yield running


@pytest.fixture(scope="session")
def googlenet_zoo(tmp_path_factory) -> Path:
    """A models folder holding real GoogLeNet converted as `make convert MODEL=googlenet`
    does (its labels included), from the shared mirror."""
    mirror = shared_path("models")
    zoo = tmp_path_factory.mktemp("googlenet-zoo")
    subprocess.run([sys.executable, "-m", "models", "googlenet", "--from", str(mirror),
                    "--quiet"], check=True, capture_output=True, timeout=300,
                   env={**os.environ, "PYTHONPATH": str(ROOT), "DREAMZOO_MODELS": str(zoo)})
    return zoo


def choose_layer(page, name: str) -> None:
    field = page.locator("#layer input")
    field.click()
    field.fill(name)
    page.get_by_role("option", name=f"{name}  ·", exact=False).first.click()
    assert field.input_value().startswith(f"{name}  ·")


def fill(page, **values) -> None:
    for name, value in values.items():
        page.locator(f"#{name} input").fill(str(value))


def expect(locator):
    from playwright.sync_api import expect as playwright_expect  # the dev extras
    return playwright_expect(locator)


def table_rows(page, table: str, count: int) -> list[list[str]]:
    """The cell texts of a Dataframe's body rows, once it has `count` of them."""
    rows = page.locator(f"#{table} [role=row]:has([role=gridcell])")
    expect(rows).to_have_count(count)
    return [[cell.strip() for cell in row.locator("[role=gridcell]").all_inner_texts()]
            for row in rows.all()]
