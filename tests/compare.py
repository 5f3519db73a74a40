"""How tests compare numbers with references: values strictly, input gradients by one rule,
images by PSNR and spectrum.

Values (blobs, outputs): max |Δ| ≤ 1e-4 · max(1, max |ref|).

Input gradients: DeepDream's gradient routes through every max-pool and ReLU switch of
the net, and a switch whose two sides differ by an ulp or two goes whichever way the
CPU's kernels round. One flipped switch deep in GoogLeNet moves a few per cent of the
input gradient by up to 3e-2 of its largest magnitude, spread thin over the switch's
receptive field, while the gradient as a whole stays the same (cosine 1 − 2e-5). So a
gradient passes when it is within 1e-4 of max |ref| everywhere, or when at most 10 % of
its elements are beyond 1e-3 of max |ref| and its cosine with the reference is at least
0.9999. The fraction is counted at 1e-3, not 1e-4: against real Caffe the Places
GoogLeNets have 29 to 37 % of their inception_5b gradient beyond 1e-4 from one switch.
tests/test_gradient_rule.py measures these numbers and shows that real bugs fail.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

Array = np.ndarray | torch.Tensor
STRICT = 1e-4  # every element within this fraction of max |ref|...
LOOSE = 1e-3  # ...or at most MAX_FRACTION of the elements beyond this one
MAX_FRACTION = 0.10
MIN_COSINE = 0.9999


def as_float64(a: Array) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().double().numpy()
    return np.asarray(a, np.float64)


def relative_error(ours: Array, ref: Array, floor: float = 1.0) -> float:
    """max |ours − ref| / max(floor, max |ref|); shapes must agree."""
    ours, ref = as_float64(ours), as_float64(ref)
    assert ours.shape == ref.shape, f"shape {ours.shape} != reference {ref.shape}"
    return float(np.abs(ours - ref).max()) / max(floor, float(np.abs(ref).max()))


def l2_relative(ours: Array, ref: Array) -> float:
    """‖ours − ref‖ / ‖ref‖."""
    ours, ref = as_float64(ours), as_float64(ref)
    assert ours.shape == ref.shape, f"shape {ours.shape} != reference {ref.shape}"
    return float(np.linalg.norm(ours - ref) / np.linalg.norm(ref))


@dataclass(frozen=True)
class GradientAgreement:
    max_error: float  # max |Δ| / max |ref|
    beyond_strict: float  # fraction of elements with |Δ| > STRICT · max |ref|
    beyond_loose: float  # fraction of elements with |Δ| > LOOSE · max |ref|
    cosine: float

    @property
    def passes(self) -> bool:
        return self.max_error <= STRICT or (self.beyond_loose <= MAX_FRACTION
                                            and self.cosine >= MIN_COSINE)

    def __str__(self) -> str:
        return (f"max |Δ| {self.max_error:.2e} of max |ref| (strict {STRICT:.0e}), "
                f"{self.beyond_strict:.2%} beyond {STRICT:.0e}, {self.beyond_loose:.2%} "
                f"beyond {LOOSE:.0e} (at most {MAX_FRACTION:.0%}), cosine 1 − "
                f"{1 - self.cosine:.2e} (at least 1 − {1 - MIN_COSINE:.0e})")


def gradient_agreement(ours: Array, ref: Array) -> GradientAgreement:
    ours, ref = as_float64(ours).ravel(), as_float64(ref).ravel()
    assert ours.shape == ref.shape, f"{ours.size} elements != reference {ref.size}"
    scale = float(np.abs(ref).max())
    assert scale > 0, "the reference gradient is zero"
    diff = np.abs(ours - ref) / scale
    norms = float(np.linalg.norm(ours) * np.linalg.norm(ref))
    cosine = float(ours @ ref) / norms if norms > 0 else 0.0
    return GradientAgreement(float(diff.max()), float((diff > STRICT).mean()),
                             float((diff > LOOSE).mean()), cosine)


def assert_gradient_close(ours: Array, ref: Array, what: str) -> GradientAgreement:
    """The gradient rule (module docstring); the message gives the measured numbers."""
    agreement = gradient_agreement(ours, ref)
    assert agreement.passes, f"{what}: {agreement}"
    return agreement


def psnr(ours: Array, theirs: Array) -> float:
    """Peak signal-to-noise ratio in dB of two 0..255 images (inf when they are equal)."""
    mse = float(np.mean((as_float64(ours) - as_float64(theirs)) ** 2))
    return 10 * float(np.log10(255.0 ** 2 / mse)) if mse else float("inf")


def high_frequency_share(a: np.ndarray) -> float:
    """Fraction of the spectral energy above half the Nyquist frequency (per channel)."""
    spectrum = np.abs(np.fft.fft2(a, axes=(-2, -1))) ** 2
    fy = np.abs(np.fft.fftfreq(a.shape[-2]))[:, None]
    fx = np.abs(np.fft.fftfreq(a.shape[-1]))[None, :]
    high = np.maximum(fy, fx) > 0.25
    return float(spectrum[..., high].sum() / spectrum.sum())
