"""`--precision auto|fp32|bf16|fp16`: the dtype the network's convolutions run in.

Reduced precision is autocast around the network's forward (and so its backward); the
input, the gradient, the step and its normalisation stay float32, and so does LRN (its
sum of squares): `reduced_precision` runs LRN modules with autocast off.

`auto` chooses reduced precision only where the hardware computes it natively, detected,
never assumed: on a CPU, bf16 with AMX (and not when ONEDNN_MAX_CPU_ISA or
ATEN_CPU_CAPABILITY limit the kernels to an ISA without it); on CUDA, bf16 where the GPU
has it, else fp16; fp32 elsewhere. AVX512-BF16 without AMX computes bf16 natively too,
but is not measured faster here, so auto leaves it to `--precision bf16` (as MPS, XPU).
The choice is by hardware, not by timing it: a timed choice would flip with the machine's
load, and the same command would then dream differently (measured on a busy 2-core AMX
machine: a 3×3 convolution's bf16 speed-up read anywhere from 0.7× to 6×; GoogLeNet to
inception_4c/output, 1 thread, bf16 1.3 to 1.9× faster than fp32 once its kernels exist).
"""

from __future__ import annotations

import contextlib
import functools
import os
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from converters.layer_types.normalisation import LRN

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}
# CPU flags (/proc/cpuinfo) of native kernels for each reduced precision.
CPU_FLAGS = {"bf16": {"amx_bf16", "avx512_bf16"}, "fp16": {"amx_fp16", "avx512_fp16"},
             "amx": {"amx_bf16"}}
# oneDNN ISA limits (ONEDNN_MAX_CPU_ISA) that still include bf16/fp16 instructions.
ONEDNN_REDUCED_ISAS = ("ALL", "AVX512_CORE_BF16", "AVX512_CORE_FP16", "AVX512_CORE_AMX",
                       "AVX10")
ONEDNN_AMX_ISAS = ("ALL", "AVX512_CORE_AMX", "AVX10_1_512_AMX", "AVX10_2_512_AMX")


def check_precision(name: str) -> None:
    if name not in PRECISIONS:
        raise ValueError(f"unknown precision {name!r} (choose from {', '.join(PRECISIONS)})")


@functools.cache  # the hardware does not change while we run
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags (Linux /proc/cpuinfo; empty elsewhere)."""
    info = Path("/proc/cpuinfo")
    if not info.is_file():
        return frozenset()
    for line in info.read_text(errors="replace").splitlines():
        if line.startswith("flags"):
            return frozenset(line.partition(":")[2].split())
    return frozenset()


def cpu_native(precision: str) -> bool:
    """Whether this CPU computes `precision` (bf16, fp16, or amx: bf16 on AMX tiles)
    natively, as the kernels are allowed to."""
    if not CPU_FLAGS[precision] & cpu_flags():
        return False
    isa = os.environ.get("ONEDNN_MAX_CPU_ISA", os.environ.get("DNNL_MAX_CPU_ISA", "ALL"))
    aten = os.environ.get("ATEN_CPU_CAPABILITY", "avx512")
    isas = ONEDNN_AMX_ISAS if precision == "amx" else ONEDNN_REDUCED_ISAS
    return isa.upper().startswith(isas) and aten.lower().startswith("avx512")


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
    """The autocast dtype for `--precision name` on `device`; None for fp32 (with a
    warning where it is emulated)."""
    check_precision(name)
    if name == "auto":
        return DTYPES[auto_precision(device)]
    warn_if_emulated(DTYPES[name], device)
    return DTYPES[name]


def warn_if_emulated(dtype: torch.dtype | None, device: torch.device) -> None:
    """Warn, when a dream starts, that `dtype` is emulated on `device` (slower than fp32)."""
    name = next(n for n, d in DTYPES.items() if d == dtype)
    if not native(name, device):
        warnings.warn(f"{name} is not native on this {device.type} (it is emulated): expect "
                      f"it to be slower than fp32", stacklevel=4)


def auto_precision(device: torch.device) -> str:
    """What `auto` chooses on `device` (see the module's docstring)."""
    if device.type == "cuda":
        return "bf16" if native("bf16", device) else "fp16"
    return "bf16" if device.type == "cpu" and cpu_native("amx") else "fp32"


@contextlib.contextmanager
def reduced_precision(network: nn.Module, device_type: str, dtype: torch.dtype | None
                      ) -> Iterator[None]:
    """Autocast to `dtype` (None: float32, on CUDA without TF32), LRN modules excepted:
    they see their input in float32 with autocast off. The hooks go when the block ends."""
    if dtype is None:
        with _no_tf32() if device_type == "cuda" else contextlib.nullcontext():
            yield
        return
    handles, outer, owner = [], [], threading.get_ident()

    # The hooks act only in this thread: the studio's workers may run the same network in
    # other threads at once, each under its own autocast (a thread-local state).
    def enter_fp32(module: nn.Module, inputs: tuple) -> tuple | None:
        if threading.get_ident() != owner:
            return None
        outer.append(torch.autocast(device_type, enabled=False))
        outer[-1].__enter__()
        return tuple(t.float() if torch.is_tensor(t) else t for t in inputs)

    def leave_fp32(module: nn.Module, inputs: tuple, output):
        if threading.get_ident() == owner:
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
