"""Driving the studio as a user does, for bench/studio.py (timings and the README's
screenshot): real GoogLeNet in a models folder, a studio server on a free port, Debian's
chromium through Playwright, a dream pressed in the page and timed in the page itself."""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from _common import ROOT, SHARED

CHROMIUM = Path("/usr/bin/chromium")
START_SECONDS = 120
DREAM_MS = 600_000  # a dream on a busy machine may take minutes
VIEWPORT = {"width": 1280, "height": 800}
CAT = SHARED / "models/_common/cat.jpg"

# Installed in the page before Dream is pressed: performance.now() of the press (a
# capture listener on the button), of the first octave's preview shown (a new image in
# #preview, decoded) and of the final image (the status says "done:" with the download
# link there; the dream first clears both, so the previous dream's do not count).
MARK_DREAM = """() => {
  const marks = window.dreamMarks = {};
  const before = document.querySelector('#preview img')?.src ?? null;
  document.querySelector('#dream').addEventListener(
    'click', () => { marks.pressed = performance.now(); }, {capture: true, once: true});
  const check = () => {
    if (marks.pressed === undefined) return;
    const img = document.querySelector('#preview img');
    if (!img?.src) marks.cleared = true;
    if (marks.previewSeen === undefined && img?.src && (img.src !== before || marks.cleared)) {
      marks.previewSeen = performance.now();
      const shown = () => { marks.preview ??= performance.now(); };
      img.decode().then(shown, shown);
    }
    const status = document.querySelector('#status')?.innerText ?? '';
    if (!status.startsWith('done:')) marks.working = true;
    else if (marks.working && document.querySelector('#download a')) {
      marks.final ??= performance.now();
      observer.disconnect();
    }
    if (status.startsWith('error') || status.startsWith('stopped')) marks.failed = status;
  };
  const observer = new MutationObserver(check);
  observer.observe(document.body, {subtree: true, childList: true, attributes: true,
                                   characterData: true});
}"""


def missing_tools() -> str | None:
    """What the studio's bench cannot run without, or None."""
    if not CHROMIUM.exists():
        return f"chromium ({CHROMIUM}; Debian's package)"
    for module, extra in (("gradio", "dreamzoo[studio]"), ("playwright", "the dev extras")):
        try:
            __import__(module)
        except ImportError:
            return f"{module} ({extra})"
    return None


def googlenet_zoo(folder: Path) -> Path:
    """A models folder offering GoogLeNet alone: the user's converted model if there is one
    (linked), else converted from SHARED's mirror as `make convert MODEL=googlenet` does."""
    from models.converted import models_root

    folder.mkdir(parents=True, exist_ok=True)
    converted = models_root() / "googlenet"
    if (converted / "network.json").is_file():
        (folder / "googlenet").symlink_to(converted.resolve(), target_is_directory=True)
        return folder
    done = subprocess.run([sys.executable, "-m", "models", "googlenet", "--from",
                           str(SHARED / "models"), "--quiet"], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT),
                               "DREAMZOO_MODELS": str(folder)})
    if done.returncode:
        raise SystemExit(f"converting GoogLeNet from {SHARED / 'models'} failed: "
                         f"{(done.stderr.strip().splitlines() or ['no output'])[-1]}")
    return folder


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def running_studio(zoo: Path, temp: Path, threads: int) -> Iterator[tuple[str, int]]:
    """(URL, process id) of a studio serving the models of `zoo` on `threads` threads, its
    temp files and log (server.log) in `temp`; stopped afterwards."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "DREAMZOO_MODELS": str(zoo),
           "OMP_NUM_THREADS": str(threads), "TMPDIR": str(temp),
           "GRADIO_TEMP_DIR": str(temp / "gradio"), "GRADIO_ANALYTICS_ENABLED": "False"}
    port, log_path = free_port(), temp / "server.log"
    with log_path.open("w") as log:
        server = subprocess.Popen([sys.executable, "-m", "dreamer", "studio", "--port",
                                   str(port)], cwd=temp, env=env, stdout=log,
                                  stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}/"
            wait_for(url, server, log_path)
            yield url, server.pid
        finally:
            server.terminate()
            try:
                server.wait(10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


def wait_for(url: str, server: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + START_SECONDS
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"the studio exited ({server.returncode}):\n{log.read_text()}")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"the studio did not answer in {START_SECONDS} s:\n{log.read_text()}")


def cpu_seconds(pid: int) -> float:
    """The user and system CPU time of process `pid` so far, all its threads."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """cpu_seconds() of process `pid` and of all its descendants alive now."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            parent = int(stat.read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):  # the process ended meanwhile
            continue
        children.setdefault(parent, []).append(int(stat.parent.name))
    total, waiting = 0.0, [pid]
    while waiting:
        process = waiting.pop()
        waiting += children.get(process, [])
        try:
            total += cpu_seconds(process)
        except (OSError, IndexError, ValueError):
            continue
    return total


@contextmanager
def chromium():
    """Debian's chromium, headless, through Playwright."""
    from playwright.sync_api import sync_playwright  # the dev extras

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True,
                                             args=["--no-sandbox", "--disable-dev-shm-usage"])
        try:
            yield browser
        finally:
            browser.close()


def open_page(browser, url: str):
    """(the studio's page, seconds from opening it to its layer list: the page opens the
    model when it loads)."""
    page = browser.new_page(viewport=VIEWPORT, accept_downloads=True)
    page.set_default_timeout(DREAM_MS)
    start = time.perf_counter()
    page.goto(url)
    page.wait_for_function("document.querySelector('#layer input')?.value")
    return page, time.perf_counter() - start


def set_up_dream(page, image: Path, layer: str, **numbers) -> None:
    """Upload `image`, choose `layer` and type `numbers` (field id: value) in the page."""
    page.locator("#upload input[type=file]").set_input_files(str(image))
    field = page.locator("#layer input")
    if not field.input_value().startswith(f"{layer}  ·"):
        field.click()
        field.fill(layer)
        page.get_by_role("option", name=f"{layer}  ·", exact=False).first.click()
    for name, value in numbers.items():
        page.locator(f"#{name} input").fill(str(value))


def dream(page, timeout_ms: int = DREAM_MS) -> dict[str, float]:
    """Press Dream and wait (up to `timeout_ms`) for the final image: seconds from the press
    to the first preview shown ("preview") and to the final image ("final")."""
    page.evaluate(MARK_DREAM)
    page.locator("#dream").click()
    page.wait_for_function("(window.dreamMarks.final !== undefined"
                           " && window.dreamMarks.preview !== undefined)"
                           " || window.dreamMarks.failed !== undefined", timeout=timeout_ms)
    marks = page.evaluate("window.dreamMarks")
    if "failed" in marks:
        raise SystemExit(f"the studio's dream failed: {marks['failed']}")
    return {name: (marks[name] - marks["pressed"]) / 1000 for name in ("preview", "final")}


def quantised_png(picture: bytes, colours: int = 256) -> bytes:
    """A PNG screenshot made small: `colours` colours (median cut), optimised."""
    from PIL import Image

    with Image.open(io.BytesIO(picture)) as image:
        small = image.convert("RGB").quantize(colours, method=Image.Quantize.MEDIANCUT)
    data = io.BytesIO()
    small.save(data, "PNG", optimize=True)
    return data.getvalue()
