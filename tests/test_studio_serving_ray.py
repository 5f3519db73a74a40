"""`python -m dreamer studio --ray ADDRESS` on the tests' own Ray cluster (tests/ray_cluster.py;
the studio's server is the Ray driver, never the test process): a dream comes back from a
Ray worker as the command line dreams it, and Stop frees the worker."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys

import numpy as np
from PIL import Image
from studio_harness import expect, fill, running_studio
from test_studio_serving import LONG, finished, image, serving, start_dream  # noqa: F401

import converters


def test_ray_workers_dream_as_the_command_line_and_stop(browser, ray_cluster, tiny, tmp_path,
                                                        image, monkeypatch):  # noqa: F811
    for name, value in ray_cluster.environment().items():
        monkeypatch.setenv(name, value)  # the studio joins our cluster, with its token
    converters.save(tiny, tmp_path / "zoo" / "tiny")
    flags = ("--ray", ray_cluster.ensure(), "--workers", "1")
    with running_studio(tmp_path, *flags) as (url, env, _):
        page = browser.new_page(accept_downloads=True)
        try:
            page.goto(url)
            expect(serving(page)).to_contain_text("workers: 0 of 1 busy")
            expect(serving(page)).to_contain_text("on Ray workers: no octave previews")
            start_dream(page, image, 2)
            assert finished(page).startswith("done")
            with page.expect_download() as download:
                page.locator("#download a").first.click()
            got = tmp_path / "got.png"
            download.value.save_as(got)
            argv = shlex.split(page.locator("#command textarea").input_value())
            shutil.copy(image, tmp_path / argv[3])
            subprocess.run([sys.executable, *argv[1:]], cwd=tmp_path, env=env, check=True,
                           capture_output=True, timeout=120)
            with Image.open(got) as ours, Image.open(tmp_path / argv[-1]) as cli:
                assert np.array_equal(np.asarray(ours), np.asarray(cli))

            fill(page, iterations=LONG)  # the same image, still uploaded
            page.locator("#dream").click()
            expect(serving(page)).to_contain_text("workers: 1 of 1 busy")
            page.locator("#stop").click()
            assert finished(page) == "stopped"
            expect(serving(page)).to_contain_text("workers: 0 of 1 busy")
        finally:
            page.close()
