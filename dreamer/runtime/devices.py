"""Which devices this machine can dream on, checked before any work."""

from __future__ import annotations

import torch


def available_devices() -> list[str]:
    """The devices torch can compute on here: cpu, then each GPU (cuda:N, mps, xpu:N)."""
    devices = ["cpu"]
    if torch.cuda.is_available():
        devices += [f"cuda:{i}" for i in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        devices.append("mps")
    xpu = getattr(torch, "xpu", None)
    if xpu is not None and xpu.is_available():
        devices += [f"xpu:{i}" for i in range(xpu.device_count())]
    return devices


def resolve_device(name: str) -> str:
    """`auto`: the first GPU (cuda, then mps), else cpu; any other name checked as is."""
    if name != "auto":
        check_device(name)
        return name
    here = available_devices()
    return next((d for d in here if d.startswith(("cuda", "mps"))), "cpu")


def check_device(name: str) -> torch.device:
    """`name` (or auto) as a torch device, or a ValueError naming the devices this
    machine has."""
    if name == "auto":
        return torch.device(resolve_device(name))
    here = available_devices()
    known = name.split(":")[0] in {"cpu", "cuda", "mps", "xpu"}
    device = torch.device(name) if known and _well_formed(name) else None
    usable = device is not None and (
        device.type == "cpu" or device.type == "mps" and "mps" in here
        or f"{device.type}:{device.index or 0}" in here)
    if not usable:
        raise ValueError(f"device {name!r} is not available on this machine (it has: "
                         f"{', '.join(here)})")
    return device


def _well_formed(name: str) -> bool:
    """`type` or `type:index` with a non-negative integer index (what torch.device reads)."""
    kind, _, index = name.partition(":")
    return kind.isalpha() and (index == "" and ":" not in name or index.isdigit())
