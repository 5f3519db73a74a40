"""dreamer/runtime/allocator.py: after keep_freed_memory(), memory a step frees serves the next
step without page faults (each case in its own process: the setting is process-wide)."""

from __future__ import annotations

import platform
import subprocess
import sys
import textwrap

import pytest
from conftest import ROOT

ROUNDS = textwrap.dedent("""
    import resource, sys
    import numpy as np
    from dreamer.runtime.allocator import keep_freed_memory
    if sys.argv[1] == "keep":
        assert keep_freed_memory()
    def round_faults():
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        blocks = [np.ones(6 << 20, np.float32) for _ in range(3)]  # a step: 3 × 24 MiB
        del blocks
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
    round_faults()  # the first touch of the heap
    print(" ".join(str(round_faults()) for _ in range(3)))
""")


def faults_per_round(mode: str) -> list[int]:
    done = subprocess.run([sys.executable, "-c", ROUNDS, mode], capture_output=True,
                          text=True, env={"PYTHONPATH": str(ROOT)}, check=True)
    return [int(v) for v in done.stdout.split()]


@pytest.mark.skipif(platform.system() != "Linux" or platform.libc_ver()[0] != "glibc",
                    reason="the setting is glibc's")
def test_freed_memory_is_reused_without_page_faults():
    assert sum(faults_per_round("default")) > 0  # glibc's default gives them back
    assert faults_per_round("keep") == [0, 0, 0]
