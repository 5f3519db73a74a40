"""The image parameterisations (dreamer/plan/params.py): round trips, Lucid's colour
decorrelation and 1/f scale from their definitions, the `--param` preconditioner against
autograd, and `python -m dreamer --param fft` on the tiny net."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

from converters.errors import UsageError
from dreamer.cli import main
from dreamer.plan.params import (
    COLOUR_CORRELATION,
    PARAMS,
    Fourier,
    ParamPreconditioner,
    frequency_scale,
    model_magnitude,
)
from dreamer.plan.plan import make_plan
from tests.conftest import shared_path

SIZES = [(8, 8), (7, 10), (6, 9)]  # even and odd widths: rfft's Nyquist column or none


def photo_like(height: int, width: int, batch: int = 2, seed: int = 0) -> torch.Tensor:
    """B×3×H×W in (0.02, 0.98), float64."""
    generator = torch.Generator().manual_seed(seed)
    return 0.02 + 0.96 * torch.rand(batch, 3, height, width, generator=generator,
                                    dtype=torch.float64)


@pytest.mark.parametrize("name", sorted(PARAMS))
@pytest.mark.parametrize("size", SIZES)
def test_each_parameterisation_round_trips_an_image(name, size):
    rgb = photo_like(*size)
    parameterisation = PARAMS[name]()
    back = parameterisation.to_image(parameterisation.from_image(rgb))
    assert back.shape == rgb.shape
    assert torch.allclose(back, rgb, rtol=0, atol=1e-5)


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_a_random_start_is_a_seeded_image_in_the_unit_range(name):
    def start(seed: int) -> torch.Tensor:
        parameterisation = PARAMS[name]()
        params = parameterisation.random(2, 12, 9, torch.Generator().manual_seed(seed))
        assert all(p.requires_grad and p.is_leaf for p in params)
        return parameterisation.to_image(params).detach()

    image = start(3)
    assert image.shape == (2, 3, 12, 9)
    assert 0 < image.min() and image.max() < 1
    assert torch.equal(image, start(3)) and not torch.equal(image, start(4))


def test_a_random_fourier_image_is_grey_with_a_little_noise():
    """Lucid's start: spectra of deviation 0.01, so the image stays near sigmoid(0)."""
    fourier = Fourier()
    image = fourier.to_image(fourier.random(1, 16, 16, torch.Generator().manual_seed(0)))
    assert 0 < (image - 0.5).abs().max() < 0.1


def test_the_colour_matrix_is_lucids_published_square_root_normalised_by_its_largest_column():
    published = np.array([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
    largest_column = max(np.sqrt(sum(published[row][col] ** 2 for row in range(3)))
                         for col in range(3))
    assert largest_column == pytest.approx(np.sqrt(0.26**2 + 0.27**2 + 0.27**2))
    np.testing.assert_allclose(COLOUR_CORRELATION, published / largest_column, rtol=1e-12)


@pytest.mark.parametrize("size", SIZES + [(224, 224)])
@pytest.mark.parametrize("decay", [1.0, 1.5])
def test_the_frequency_scale_is_one_over_f_clamped_at_the_lowest_frequency(size, decay):
    height, width = size
    fy = np.fft.fftfreq(height)
    fx = np.abs(np.fft.fftfreq(width)[:width // 2 + 1])  # the rfft's columns
    expected = np.empty((height, width // 2 + 1))
    for i in range(height):
        for j in range(width // 2 + 1):
            f = np.hypot(fy[i], fx[j])
            expected[i, j] = 1 / max(f, 1 / max(height, width)) ** decay
    np.testing.assert_allclose(frequency_scale(height, width, decay), expected, rtol=1e-12)


def test_the_maco_model_spectrum_has_no_mean_and_unit_mean_square():
    """Random phases on the model magnitude: an image of zero mean and about unit power."""
    height, width = 32, 30
    magnitude = model_magnitude(height, width)
    assert magnitude[0, 0] == 0
    phase = torch.rand(64, 3, height, width // 2 + 1, dtype=torch.float64) * 6.283
    image = torch.fft.irfft2(torch.polar(torch.as_tensor(magnitude), phase), s=(height, width),
                             norm="ortho")
    assert image.mean().abs() < 1e-12
    assert image.pow(2).mean().item() == pytest.approx(1.0, rel=0.1)


def test_a_maco_image_keeps_its_photos_magnitude_whatever_the_phase():
    rgb = photo_like(10, 12, batch=1)
    maco = PARAMS["maco"]()
    (phase,) = maco.from_image(rgb)
    moved = maco.to_image([phase + 0.3 * torch.randn_like(phase)])
    original = maco.to_image([phase])
    assert not torch.allclose(moved, original, atol=1e-3)
    spectrum = torch.fft.rfft2(torch.logit(original), norm="ortho")
    # the colour matrix is linear: compare magnitudes in the decorrelated space
    inverse = torch.linalg.inv(torch.as_tensor(COLOUR_CORRELATION))
    def decorrelated_magnitude(image):
        return torch.fft.rfft2(torch.einsum("ij,bjhw->bihw", inverse, torch.logit(image)),
                               norm="ortho").abs()
    assert spectrum.shape[-1] == 7
    interior = (slice(None), slice(None), slice(1, None), slice(1, 6))  # not self-conjugate
    assert torch.allclose(decorrelated_magnitude(moved)[interior],
                          decorrelated_magnitude(original)[interior], atol=1e-8)


def explicit_l_lt(grad: torch.Tensor, width: int) -> torch.Tensor:
    """L Lᵀ g by autograd: Lᵀ g as the vector-Jacobian product of the Fourier image's linear
    part (before its sigmoid) at any parameters, then L applied to it."""
    fourier = Fourier()
    (params,) = fourier.random(grad.shape[0], grad.shape[2], width, torch.Generator())
    params = params.detach().double().requires_grad_()
    (lt_g,) = torch.autograd.grad(fourier.linear([params]), params, grad)
    return fourier.linear([lt_g]).detach()


@pytest.mark.parametrize("size", SIZES)
def test_the_preconditioner_is_l_lt_of_the_fourier_image(size):
    grad = torch.randn(2, 3, *size, dtype=torch.float64)
    expected = explicit_l_lt(grad, size[1])
    assert torch.allclose(ParamPreconditioner("fft")(grad), expected, rtol=1e-9, atol=1e-12)


def test_the_preconditioner_reads_a_bgr_net_input_through_its_gain():
    """net[c] = gain[c] · rgb[order[c]] − mean[c]: the step L Lᵀ in pixels, mapped back."""
    grad_bgr = torch.randn(1, 3, 6, 8, dtype=torch.float64)
    gain = torch.tensor([2.0, 1.0, 0.5], dtype=torch.float64).reshape(1, 3, 1, 1)
    pixel_grad = (grad_bgr * gain).flip(1)  # d/d rgb, RGB order
    expected = (explicit_l_lt(pixel_grad, 8).flip(1)) * gain
    stage = ParamPreconditioner("fft", "BGR", (2.0, 1.0, 0.5))
    assert torch.allclose(stage(grad_bgr), expected, rtol=1e-9, atol=1e-12)


def test_the_preconditioner_is_l_lt_with_l_as_an_explicit_matrix():
    """L built column by column from the Fourier image's forward map alone (no autograd)."""
    height, width = 4, 5
    fourier = Fourier()
    (params,) = fourier.random(1, height, width, torch.Generator())
    basis = torch.eye(params.numel(), dtype=torch.float64)
    matrix = torch.stack([fourier.linear([column.reshape(params.shape)]).flatten()
                          for column in basis], dim=1)
    grad = torch.randn(1, 3, height, width, dtype=torch.float64)
    expected = (matrix @ (matrix.T @ grad.flatten())).reshape(grad.shape)
    assert torch.allclose(ParamPreconditioner("fft")(grad), expected, rtol=1e-9, atol=1e-12)


def maco_linear(magnitude: torch.Tensor, size: tuple[int, int]):
    """MACO's image before its sigmoid, as a function of the phase."""
    colour = torch.as_tensor(COLOUR_CORRELATION)
    def image(phase: torch.Tensor) -> torch.Tensor:
        spatial = torch.fft.irfft2(torch.polar(magnitude, phase), s=size, norm="ortho")
        return torch.einsum("ij,bjhw->bihw", colour, spatial)
    return image


@pytest.mark.parametrize("size", SIZES)
def test_the_maco_preconditioner_is_j_jt_at_the_images_own_phase(size):
    """J Jᵀ g by autograd (a vector-Jacobian, then a Jacobian-vector product) at the phase
    of the image the dream is at."""
    image = torch.randn(1, 3, *size, dtype=torch.float64)
    inverse = torch.linalg.inv(torch.as_tensor(COLOUR_CORRELATION))
    spectrum = torch.fft.rfft2(torch.einsum("ij,bjhw->bihw", inverse, image), norm="ortho")
    function = maco_linear(spectrum.abs(), size)
    phase = spectrum.angle()
    assert torch.allclose(function(phase), image, atol=1e-12)
    grad = torch.randn_like(image)
    _, jt_g = torch.autograd.functional.vjp(function, phase, grad)
    _, expected = torch.autograd.functional.jvp(function, phase, jt_g)
    stage = ParamPreconditioner("maco")
    assert stage.reads_input
    assert torch.allclose(stage(grad, image), expected, rtol=1e-9, atol=1e-12)


def test_pixels_precondition_nothing():
    grad = torch.randn(1, 3, 5, 5)
    assert torch.equal(ParamPreconditioner("pixels")(grad), grad)


def test_the_plan_ends_its_stages_with_the_params_preconditioner_in_the_nets_input(tiny):
    pre = tiny.spec.input_preprocessing()
    plan = make_plan(tiny, "conv2", 1, 0.1, blur=1.0, param="fft")
    assert plan.stages[-1] == ParamPreconditioner(
        "fft", pre.channel_order, tuple(pre.scale / 255 / std for std in pre.std))
    assert len(plan.stages) == 2  # the blur first
    assert len(make_plan(tiny, "conv2", 1, 0.1, blur=1.0).stages) == 1  # pixels: none
    with pytest.raises(UsageError, match="^--param: unknown parameterisation 'FFT'"):
        make_plan(tiny, "conv2", 1, 0.1, param="FFT")


# --- python -m dreamer --param -----------------------------------------------------------

def dream_argv(tmp_path, tiny_cli_args, *more: str) -> list[str]:
    cat = shared_path("models", "_common", "cat.jpg")
    return [str(cat), "conv2", "3", "0.1", *tiny_cli_args, "--max-side", "48", "--octaves",
            "2", "--quiet", *more]


def dream(tmp_path, tiny_cli_args, *more: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "dreamer",
                           *dream_argv(tmp_path, tiny_cli_args, *more)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)


def test_a_dream_with_param_fft_or_maco_differs_from_pixels(tmp_path, tiny_cli_args, capsys):
    """`python -m dreamer`'s main, in this process (three dreams, one interpreter)."""
    images = {}
    for name in ("pixels", "fft", "maco"):
        output = tmp_path / f"{name}.png"
        status = main(dream_argv(tmp_path, tiny_cli_args, "--param", name, "-o", str(output)))
        assert status == 0, capsys.readouterr().err
        images[name] = np.asarray(Image.open(output), np.float64)
    cat = np.asarray(Image.open(shared_path("models", "_common", "cat.jpg"))
                     .resize(images["fft"].shape[1::-1]), np.float64)
    for name in ("fft", "maco"):
        assert np.abs(images[name] - images["pixels"]).mean() > 5
        assert np.abs(images[name] - cat).mean() > 5  # it dreamt


def test_a_bad_param_is_a_one_line_error(tmp_path, tiny_cli_args):
    done = dream(tmp_path, tiny_cli_args, "--param", "x", "-o", "out.png")
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "error: --param: unknown parameterisation 'x' (choose from pixels, fft, maco)"]
    assert not (tmp_path / "out.png").exists()


def test_the_deepdraw_preset_refuses_param(tmp_path, tiny_cli_args, capsys):
    argv = dream_argv(tmp_path, tiny_cli_args, "--preset", "deepdraw", "--param", "fft", "-o",
                      str(tmp_path / "out.png"))
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == "error: --preset deepdraw does not take --param"
    assert not (tmp_path / "out.png").exists()
