"""`--precision auto|fp32|bf16|fp16`: the dtype the network's convolutions run in.

Reduced precision is autocast around the network's forward (and so its backward); the
input, the gradient, the step and its normalisation stay float32, and so does LRN (its
sum of squares): `reduced_precision` runs LRN modules with autocast off.

`auto` chooses reduced precision only where the hardware computes it natively, detected,
never assumed: on a CPU, bf16 with AMX or AVX512-BF16 (and not when ONEDNN_MAX_CPU_ISA or
ATEN_CPU_CAPABILITY limit the kernels to an ISA without it), and then only if a short
measurement (once per process) finds it faster than fp32; on CUDA, bf16 where the GPU
has it, else fp16; fp32 elsewhere (MPS, XPU: not measured here).
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
# CPU flags (/proc/cpuinfo) of native kernels for each reduced precision.
CPU_FLAGS = {"bf16": {"amx_bf16", "avx512_bf16"}, "fp16": {"amx_fp16", "avx512_fp16"}}
# oneDNN ISA limits (ONEDNN_MAX_CPU_ISA) that still include bf16/fp16 instructions.
ONEDNN_REDUCED_ISAS = ("ALL", "AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX512_CORE_AMX",
                       "AVX10")
# Reduced precision must beat fp32 by this factor in `auto`'s measurement to be chosen.
AUTO_MARGIN = 1.1


def check_precision(name: str) -> None:
    if name not in PRECISIONS:
        raise ValueError(f"unknown precision {name!r} (choose from {', '.join(PRECISIONS)})")


def cpu_flags() -> set[str]:
    """The CPU's feature flags (Linux /proc/cpuinfo; empty elsewhere)."""
    info = Path("/proc/cpuinfo")
    if not info.is_file():
        return set()
    for line in info.read_text(errors="replace").splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


def cpu_native(precision: str) -> bool:
    """Whether this CPU computes `precision` natively, as the kernels are allowed to."""
    if not CPU_FLAGS[precision] & cpu_flags():
        return False
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", os.environ.get("DNNL_MAX_CPU_ISA", "ALL"))
    aten = os.environ.get("ATEN_CPU_CAPABILITY", "avx512")
    return isa.upper().startswith(ONEDNN_REDUCED_ISAS) and aten.lower().startswith("avx512")


def native(precision: str, device: torch.device) -> bool:
    """Whether `device` computes `precision` (fp32, bf16, fp16) natively."""
    if precision == "fp32":
        return True
    if device.type == "cpu":
        return cpu_native(precision)
    if device.type == "cuda":
        return precision == "fp16" or torch.cuda.is_bf16_supported(including_emulation=False)
    return device.type in ("mps", "xpu") and precision == "fp16"


def resolve_precision(name: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for `--precision name` on `device`; None for fp32."""
    check_precision(name)
    if name == "auto":
        return DTYPES[auto_precision(device)]
    if not native(name, device):
        warnings.warn(f"{name} is not native on this {device.type} (it is emulated): expect "
                      f"it to be slower than fp32", stacklevel=3)
    return DTYPES[name]


def auto_precision(device: torch.device) -> str:
    """What `auto` chooses on `device` (see the module's docstring)."""
    if device.type == "cuda":
        return "bf16" if native("bf16", device) else "fp16"
    if device.type == "cpu" and cpu_native("bf16"):
        return "bf16" if cpu_speedup("bf16", torch.get_num_threads()) >= AUTO_MARGIN else "fp32"
    return "fp32"


@functools.cache
def cpu_speedup(precision: str, threads: int) -> float:
    """fp32 time / `precision` time of a GoogLeNet-like 3×3 convolution (128 -> 128
    channels, 56×56, channels-last), forward and gradient to the input: the best of 7
    runs each, interleaved so that a busy machine slows both alike. Measured once per
    process and thread count (`threads`, the cache key, is torch's current count)."""
    numbers = torch.Generator().manual_seed(0)  # the caller's random state stays as it is
    weight = torch.randn(128, 128, 3, 3, generator=numbers) * 0.03
    x = torch.randn(1, 128, 56, 56, generator=numbers).contiguous(
        memory_format=torch.channels_last)

    def seconds(dtype: torch.dtype | None) -> float:
        start = time.perf_counter()
        leaf = x.detach().requires_grad_(True)
        with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            y = torch.nn.functional.conv2d(leaf, weight, padding=1)
        torch.autograd.grad(y, leaf, torch.ones_like(y))
        return time.perf_counter() - start

    reduced = DTYPES[precision]
    with torch.enable_grad():
        seconds(None), seconds(reduced)  # the first runs create oneDNN's primitives
        runs = [(seconds(None), seconds(reduced)) for _ in range(7)]
    return min(r[0] for r in runs) / min(r[1] for r in runs)


@contextlib.contextmanager
def reduced_precision(network: nn.Module, device_type: str, dtype: torch.dtype | None
                      ) -> Iterator[None]:
    """Autocast to `dtype` (None: float32, on CUDA without TF32), LRN modules excepted:
    they see their input in float32 with autocast off. The hooks go when the block ends."""
    if dtype is None:
        with _no_tf32() if device_type == "cuda" else contextlib.nullcontext():
            yield
        return
    from converters.layer_types.normalisation import LRN

    handles, outer = [], []

    def enter_fp32(module: nn.Module, inputs: tuple) -> tuple:
        outer.append(torch.autocast(device_type, enabled=False))
        outer[-1].__enter__()
        return tuple(t.float() if torch.is_tensor(t) else t for t in inputs)

    def leave_fp32(module: nn.Module, inputs: tuple, output):
        outer.pop().__exit__(None, None, None)
        return output

    for module in network.modules():
        if isinstance(module, LRN):
            handles += [module.register_forward_pre_hook(enter_fp32),
                        module.register_forward_hook(leave_fp32)]
    try:
        with torch.autocast(device_type, dtype=dtype):
            yield
    finally:
        for handle in handles:
            handle.remove()


def _no_tf32() -> contextlib.AbstractContextManager:
    """cuDNN convolutions in true float32 (PyTorch lets them use TF32 by default)."""
    cudnn = torch.backends.cudnn
    return cudnn.flags(enabled=cudnn.enabled, benchmark=cudnn.benchmark,
                       deterministic=cudnn.deterministic, allow_tf32=False)
