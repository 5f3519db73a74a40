"""Parameterisations of an image, as in feature visualisation (Olah et al., "Feature
Visualization", Distill 2017; Fel et al., "MAgnitude Constrained Optimization", 2023): what
is optimised is not the pixels but parameters that an image is made from.

    pixels  image = sigmoid(p)                                   p: B×3×H×W
    fft     image = sigmoid(C · irfft2(s ⊙ p) / 4)                p: B×3×H×(W//2+1)×2
    maco    image = sigmoid(C · irfft2(m · e^(iφ)))               φ: B×3×H×(W//2+1)

C is ImageNet's colour correlation as Lucid publishes it (`COLOUR_CORRELATION`), s the 1/f
frequency scale (`frequency_scale`), the transforms orthonormal (Lucid's sqrt(H·W) times
the plain inverse). MACO keeps the magnitude m fixed and optimises the phase φ only: we
have no ImageNet mean spectrum, so m is the 1/f model spectrum for a start from noise, and
the photo's own magnitude when started from a photo.

Each class (`PARAMS[name]()`) has `random(batch, height, width, generator)`,
`from_image(rgb)` and `to_image(params)`; an instance remembers the size (and MACO's
magnitude) of the parameters it made. `ParamPreconditioner` is the dream plan's gradient
stage for `--param`: for a linear image x = L p, a step in p along Lᵀg moves the image by
L Lᵀ g.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
from torch import Tensor

# Lucid's color_correlation_svd_sqrt: a square root (by SVD) of the covariance of
# ImageNet's RGB pixels. Rows: R, G, B; columns: the decorrelated components.
COLOUR_CORRELATION_SVD_SQRT = np.array([[0.26, 0.09, 0.02],
                                        [0.27, 0.00, -0.05],
                                        [0.27, -0.09, 0.03]])
# Normalised so that its largest column has unit norm (as Lucid divides it).
COLOUR_CORRELATION = (COLOUR_CORRELATION_SVD_SQRT
                      / np.linalg.norm(COLOUR_CORRELATION_SVD_SQRT, axis=0).max())
FFT_SCALE = 0.25  # Lucid divides the Fourier image by 4
START_SD = 0.01  # Lucid's deviation of random pixels and spectra
EDGE = 1e-3  # a photo's 0 and 1 are taken this close to the sigmoid's ends


def rfft_frequencies(height: int, width: int) -> np.ndarray:
    """|f| in cycles per pixel of each bin of a height×width real FFT: H×(W//2+1)."""
    fy = np.fft.fftfreq(height)[:, None]
    fx = np.fft.rfftfreq(width)[None, :]
    return np.sqrt(fx * fx + fy * fy)


def frequency_scale(height: int, width: int, decay: float = 1.0) -> np.ndarray:
    """1/f^decay per bin, f clamped at 1/max(height, width) (the lowest frequency seen)."""
    return 1.0 / np.maximum(rfft_frequencies(height, width), 1.0 / max(height, width)) ** decay


def adjoint_weights(width: int) -> np.ndarray:
    """Per rfft column, how often it counts in the image: 2 for a column whose mirror is
    not stored, 1 for column 0 (and W/2 when W is even). The adjoint of irfft2 is rfft2
    times these."""
    weights = np.ones(width // 2 + 1)
    weights[1:width - width // 2] = 2.0
    return weights


def colour_matrix(like: Tensor) -> Tensor:
    return _constant("colour", like.dtype, like.device)


def scale_table(height: int, width: int, decay: float, like: Tensor) -> Tensor:
    """`frequency_scale` as a tensor like `like` (made once per size, dtype and device)."""
    return _constant(("scale", height, width, decay), like.dtype, like.device)


@lru_cache(maxsize=32)
def _constant(key: str | tuple, dtype: torch.dtype, device: torch.device) -> Tensor:
    """The colour matrix or a frequency scale on a device: made once, not every step."""
    values = COLOUR_CORRELATION if key == "colour" else frequency_scale(*key[1:])
    return torch.as_tensor(values, dtype=dtype, device=device)


def recorrelate(t: Tensor) -> Tensor:
    """Decorrelated B×3×H×W -> RGB: C applied to each pixel's vector."""
    return torch.einsum("ij,bjhw->bihw", colour_matrix(t), t)


def decorrelate(rgb: Tensor) -> Tensor:
    """RGB B×3×H×W -> decorrelated: C⁻¹ applied to each pixel's vector."""
    return torch.einsum("ij,bjhw->bihw", torch.linalg.inv(colour_matrix(rgb)), rgb)


def spectrum(image: Tensor) -> Tensor:
    return torch.fft.rfft2(image, norm="ortho")


def spatial(spectrum_: Tensor, height: int, width: int) -> Tensor:
    return torch.fft.irfft2(spectrum_, s=(height, width), norm="ortho")


def logit(rgb: Tensor) -> Tensor:
    """The sigmoid's inverse, the ends clamped in by EDGE (a photo's 0 and 255)."""
    return torch.logit(rgb.clamp(EDGE, 1 - EDGE))


def _table(values: np.ndarray, like: Tensor) -> Tensor:
    return torch.as_tensor(values, dtype=like.dtype, device=like.device)


def _normal(shape: tuple[int, ...], generator: torch.Generator) -> Tensor:
    return torch.randn(shape, generator=generator)


class Pixels:
    """The pixels themselves, through a sigmoid (the image stays in (0, 1))."""

    def random(self, batch: int, height: int, width: int,
               generator: torch.Generator) -> list[Tensor]:
        return [(_normal((batch, 3, height, width), generator) * START_SD).requires_grad_()]

    def from_image(self, rgb: Tensor) -> list[Tensor]:
        return [logit(rgb).detach().requires_grad_()]

    def to_image(self, params: list[Tensor]) -> Tensor:
        return torch.sigmoid(params[0])


class Fourier:
    """Lucid's Fourier image: a spectrum scaled by 1/f^decay, colour decorrelated."""

    def __init__(self, decay: float = 1.0) -> None:
        self.decay = decay
        self.size: tuple[int, int] | None = None

    def random(self, batch: int, height: int, width: int,
               generator: torch.Generator) -> list[Tensor]:
        self.size = (height, width)
        shape = (batch, 3, height, width // 2 + 1, 2)
        return [(_normal(shape, generator) * START_SD).requires_grad_()]

    def from_image(self, rgb: Tensor) -> list[Tensor]:
        self.size = tuple(rgb.shape[-2:])
        scaled = spectrum(decorrelate(logit(rgb)) / FFT_SCALE)
        params = torch.view_as_real(scaled / scale_table(*self.size, self.decay, rgb))
        return [params.detach().contiguous().requires_grad_()]

    def linear(self, params: list[Tensor]) -> Tensor:
        """The image before the sigmoid: linear in the parameters (L p)."""
        height, width = self.size
        scaled = (torch.view_as_complex(params[0].contiguous())
                  * scale_table(height, width, self.decay, params[0]))
        return recorrelate(spatial(scaled, height, width) * FFT_SCALE)

    def to_image(self, params: list[Tensor]) -> Tensor:
        return torch.sigmoid(self.linear(params))


class Maco:
    """MACO: the phase of a fixed magnitude spectrum, colour decorrelated."""

    def __init__(self, decay: float = 1.0) -> None:
        self.decay = decay
        self.size: tuple[int, int] | None = None
        self.magnitude: Tensor | None = None  # B×3×H×(W//2+1), or 1×1×… for the model

    def random(self, batch: int, height: int, width: int,
               generator: torch.Generator) -> list[Tensor]:
        self.size = (height, width)
        self.magnitude = torch.as_tensor(model_magnitude(height, width, self.decay),
                                         dtype=torch.float32)[None, None]
        shape = (batch, 3, height, width // 2 + 1)
        phase = (torch.rand(shape, generator=generator) * 2 - 1) * math.pi
        return [phase.requires_grad_()]

    def from_image(self, rgb: Tensor) -> list[Tensor]:
        self.size = tuple(rgb.shape[-2:])
        photo = spectrum(decorrelate(logit(rgb)))
        self.magnitude = photo.abs().detach()
        return [photo.angle().detach().requires_grad_()]

    def to_image(self, params: list[Tensor]) -> Tensor:
        phase = params[0]
        self.magnitude = self.magnitude.to(device=phase.device, dtype=phase.dtype)
        return torch.sigmoid(recorrelate(spatial(torch.polar(self.magnitude, phase),
                                                 *self.size)))


def model_magnitude(height: int, width: int, decay: float = 1.0) -> np.ndarray:
    """The 1/f^decay model of a natural image's magnitude spectrum, no mean (DC 0), scaled
    so that an image of random phases has unit mean square (Parseval, orthonormal FFT)."""
    magnitude = frequency_scale(height, width, decay)
    magnitude[0, 0] = 0.0
    energy = (magnitude ** 2 * adjoint_weights(width)).sum()
    return magnitude * math.sqrt(height * width / energy)


PARAMS: dict[str, type] = {"pixels": Pixels, "fft": Fourier, "maco": Maco}


@dataclass(frozen=True)
class ParamPreconditioner:
    """A gradient stage (dreamer/plan/stages.py) for a dream in another parameterisation
    (`--param`): the net input's gradient g -> J Jᵀ g, where J is the Jacobian of the
    parameterisation's image before its sigmoid, as plain ascent in its parameters moves
    the image. fft: J = L, linear: the colour covariance C Cᵀ and the 1/f^(2·decay)
    filter. maco: the phase of the image's own spectrum, so it `reads_input` (called as
    stage(grad, x)): the step keeps the image's magnitude spectrum. `channel_order` and
    `gain` (d input/d pixel per input channel) map the net's input to RGB pixels and back;
    a grey net gets the spatial part only."""

    name: str
    channel_order: str = "RGB"
    gain: tuple[float, ...] = (1.0, 1.0, 1.0)
    decay: float = 1.0

    @property
    def reads_input(self) -> bool:
        return self.name == "maco"

    def __call__(self, grad: Tensor, x: Tensor | None = None) -> Tensor:
        if self.name == "pixels":
            return grad
        gain = _table(np.asarray(self.gain), grad).reshape(1, -1, 1, 1)
        grey = self.channel_order == "L"
        order = [0] if grey else ["RGB".index(c) for c in self.channel_order]
        colour = None if grey else colour_matrix(grad)
        pixel_grad = to_rgb(grad * gain, order)
        if self.name == "maco":
            image = to_rgb(x.to(grad.dtype) / gain, order)  # its mean is DC: no matter
            step = phase_step(pixel_grad, image, colour)
        else:
            step = colour_mixed(self.filtered, pixel_grad, colour)
        return step[:, order] * gain

    def filtered(self, image: Tensor) -> Tensor:
        """The 1/f^(2·decay) filter of L Lᵀ (with Lucid's 1/4²)."""
        height, width = image.shape[-2:]
        weights = (frequency_scale(height, width, self.decay) ** 2 * adjoint_weights(width)
                   * FFT_SCALE ** 2)
        return spatial(spectrum(image) * _table(weights, image), height, width)


def to_rgb(net: Tensor, order: list[int]) -> Tensor:
    """Net input channels (in `order` of RGB) -> RGB (a grey net: its one channel)."""
    rgb = torch.empty_like(net)
    rgb[:, order] = net
    return rgb


def colour_mixed(spatial_map: Callable[[Tensor], Tensor], rgb: Tensor,
                 colour: Tensor | None) -> Tensor:
    """C · spatial_map(Cᵀ rgb), per pixel's colour vector (no colour: spatial_map(rgb))."""
    if colour is None:
        return spatial_map(rgb)
    mixed = spatial_map(torch.einsum("ji,bjhw->bihw", colour, rgb))
    return torch.einsum("ij,bjhw->bihw", colour, mixed)


def phase_step(grad: Tensor, image: Tensor, colour: Tensor | None) -> Tensor:
    """J Jᵀ g for image = C · irfft2(m e^(iφ)) at the image's own phase: with X its
    decorrelated spectrum and G = Aᵀ Cᵀ g (A = irfft2), Jᵀ g = Im(G X̄) per bin and
    J δ = C · A(i X δ)."""
    height, width = image.shape[-2:]
    decorrelated = image if colour is None else torch.einsum(
        "ij,bjhw->bihw", torch.linalg.inv(colour), image)
    x_spectrum = spectrum(decorrelated)
    weights = _table(adjoint_weights(width), grad)

    def along_phase(g: Tensor) -> Tensor:
        phase_grad = (spectrum(g) * weights * x_spectrum.conj()).imag
        return spatial(1j * x_spectrum * phase_grad, height, width)

    return colour_mixed(along_phase, grad, colour)
