"""The C allocator's settings for a process that dreams on the CPU.

Every dream step allocates and frees the same large activations. By default glibc maps
each block over a threshold that starts at 128 KiB with a fresh mmap and gives it back
on free, and trims the heap's free top, so every step page-faults its activations in
again: at 1024×576 on GoogLeNet, 40,000–70,000 faults and 5–10 % of a step on one
thread. Here blocks up to glibc's largest threshold (32 MiB) come from the heap and
freed heap memory stays mapped for reuse; larger blocks are still mapped and given
back, so that the peak memory of very large untiled images stays what it was
(bench/memory.py; with no mapping at all a 4000×3000 untiled step peaked 26 % higher).
bench/dream_step.py prints the faults per step.

It changes the allocator of the whole process, so only processes that exist to dream
set it (the command line, Ray's dream workers), never an import.
"""

from __future__ import annotations

import ctypes
import platform

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters (malloc.h)
LARGEST_MMAP_THRESHOLD = 32 << 20  # glibc refuses more on 64-bit systems
TRIM_THRESHOLD = 2**31 - 1  # the largest value mallopt takes


def keep_freed_memory() -> bool:
    """Serve blocks up to 32 MiB from the heap and keep freed memory for reuse (glibc
    only). True if the allocator took the settings."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return False
    mallopt = ctypes.CDLL(None).mallopt
    return bool(mallopt(M_MMAP_THRESHOLD, LARGEST_MMAP_THRESHOLD)) and \
        bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
