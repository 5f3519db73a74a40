"""Lucid's transformation robustness (dreamer/plan/transforms.py): each transform against a
computation made here (PIL, plain numpy), determinism, and the --transforms grammar."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from converters.errors import UsageError
from dreamer.plan.transforms import (
    STANDARD,
    TRANSFORMS_HELP,
    Jitter,
    Pad,
    RandomRotate,
    RandomScale,
    apply_transforms,
    smallest_size,
    transforms_from_text,
)

LUCID_SCALES = [1 + (i - 5) / 50 for i in range(11)]


def known_image(height: int = 20, width: int = 30, batch: int = 1) -> torch.Tensor:
    """Values in (0, 1), different everywhere."""
    rng = np.random.default_rng(0)
    return torch.from_numpy(rng.random((batch, 3, height, width), dtype=np.float32))


def seeded(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def pil_channels(image: torch.Tensor, change) -> np.ndarray:
    """`change` (a PIL Image -> Image function) applied to each channel of image 0."""
    return np.stack([np.asarray(change(Image.fromarray(channel.numpy(), mode="F")))
                     for channel in image[0]])


def test_pad_adds_a_constant_border():
    image = known_image(5, 7, batch=2)
    padded = Pad(3, 0.25)(image, seeded(0))
    assert padded.shape == (2, 3, 11, 13)
    assert torch.equal(padded[..., 3:-3, 3:-3], image)
    border = torch.ones(11, 13, dtype=torch.bool)
    border[3:-3, 3:-3] = False
    assert (padded[..., border] == 0.25).all()
    assert (Pad(2)(image, seeded(0))[..., 0, :] == 0.5).all()  # Lucid's constant 0.5


def crop_offset(image: torch.Tensor, crop: torch.Tensor) -> tuple[int, int]:
    """Where `crop` lies in `image` (its values are unique)."""
    rows, cols = np.nonzero(image[0, 0].numpy() == crop[0, 0, 0, 0].item())
    return int(rows[0]), int(cols[0])


def test_jitter_is_a_random_crop_at_every_offset_0_to_d():
    image = known_image(12, 15, batch=2)
    offsets = set()
    for seed in range(200):
        crop = Jitter(3)(image, seeded(seed))
        assert crop.shape == (2, 3, 9, 12)
        top, left = crop_offset(image, crop)
        assert torch.equal(crop, image[..., top:top + 9, left:left + 12])
        offsets.add((top, left))
    assert offsets == {(t, c) for t in range(4) for c in range(4)}


def test_jitter_is_the_same_with_the_same_seed():
    image = known_image()
    assert torch.equal(Jitter(5)(image, seeded(9)), Jitter(5)(image, seeded(9)))


def test_jitter_larger_than_the_image_is_a_usage_error():
    with pytest.raises(UsageError, match="jitter:8 is too large for a 8×8"):
        Jitter(8)(known_image(8, 8), seeded(0))


def test_scale_up_matches_pil_bilinear():
    image = known_image(20, 30)
    scaled = RandomScale((1.1,))(image, seeded(0))
    assert scaled.shape == (1, 3, 22, 33)
    expected = pil_channels(image, lambda c: c.resize((33, 22), Image.BILINEAR))
    np.testing.assert_allclose(scaled[0].numpy(), expected, atol=1e-5)


def bilinear(values: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resampling by its definition (pixel centres aligned, no antialiasing):
    output pixel i samples the input at (i + 0.5)·in/out - 0.5, clamped to the image."""
    def weights(size_in: int, size_out: int) -> np.ndarray:
        matrix = np.zeros((size_out, size_in))
        for i in range(size_out):
            at = max((i + 0.5) * size_in / size_out - 0.5, 0)
            low = min(int(at), size_in - 1)
            high = min(low + 1, size_in - 1)
            matrix[i, low] += 1 - (at - low)
            matrix[i, high] += at - low
        return matrix
    rows, cols = weights(values.shape[-2], height), weights(values.shape[-1], width)
    return rows @ values @ cols.T


def test_scale_down_is_bilinear_without_antialiasing_as_lucid():
    image = known_image(20, 30)
    scaled = RandomScale((0.9,))(image, seeded(0))
    assert scaled.shape == (1, 3, 18, 27)
    expected = np.stack([bilinear(c, 18, 27) for c in image[0].numpy().astype(np.float64)])
    np.testing.assert_allclose(scaled[0].numpy(), expected, atol=1e-5)


def test_scale_is_chosen_from_the_list_by_the_generator():
    image = known_image(10, 10)
    sizes = {RandomScale((0.5, 1.0, 2.0))(image, seeded(seed)).shape[-1] for seed in range(60)}
    assert sizes == {5, 10, 20}


@pytest.mark.parametrize("degrees", [10, -7])
def test_rotate_matches_pil_bilinear_inside(degrees):
    image = known_image(13, 17)
    rotated = RandomRotate((degrees,))(image, seeded(0))
    assert rotated.shape == image.shape
    expected = pil_channels(image, lambda c: c.rotate(degrees, resample=Image.BILINEAR))
    # PIL and grid_sample treat the samples that straddle the border differently
    np.testing.assert_allclose(rotated[0, :, 3:-3, 3:-3].numpy(), expected[:, 3:-3, 3:-3],
                               atol=1e-5)


def test_rotate_90_is_counterclockwise_and_fills_nothing_on_a_square():
    image = known_image(9, 9)
    rotated = RandomRotate((90,))(image, seeded(0))
    np.testing.assert_allclose(rotated.numpy(), np.rot90(image.numpy(), 1, axes=(2, 3)),
                               atol=1e-5)


def test_rotate_fills_the_corners_with_0():
    rotated = RandomRotate((45,))(torch.ones(1, 3, 10, 10), seeded(0))
    assert (rotated[..., 0, 0] == 0).all() and (rotated[..., 5, 5] == 1).all()


def test_standard_is_lucids_standard_transforms():
    pad, jitter, scale, rotate, jitter_again = STANDARD
    assert pad == Pad(12, 0.5) and jitter == Jitter(8) and jitter_again == Jitter(4)
    assert list(scale.scales) == pytest.approx(LUCID_SCALES)
    assert sorted(rotate.degrees) == sorted([*range(-10, 11), 0, 0, 0, 0, 0])


def test_the_same_seed_gives_the_same_images_and_another_seed_others():
    image = known_image(24, 24, batch=2)
    first = apply_transforms(STANDARD, image, seeded(5))
    assert torch.equal(first, apply_transforms(STANDARD, image, seeded(5)))
    others = [apply_transforms(STANDARD, image, seeded(seed)) for seed in range(6, 10)]
    assert any(o.shape != first.shape or not torch.equal(o, first) for o in others)


def test_smallest_size_is_the_smallest_the_transforms_make():
    # Lucid's standard at 224: pad 12 -> 248, jitter 8 -> 240, scale 0.9 -> 216, jitter 4
    assert smallest_size(STANDARD, 224, 224) == (212, 212)
    image = known_image(30, 40)
    sizes = {apply_transforms(STANDARD, image, seeded(seed)).shape[-2:]
             for seed in range(100)}
    # 30×40: pad -> 54×64, jitter -> 46×56, scale 0.9 -> 41×50, jitter -> 37×46
    assert smallest_size(STANDARD, 30, 40) == min(sizes) == (37, 46)


def test_transforms_carry_the_gradient_to_the_image():
    image = known_image(24, 24).requires_grad_(True)
    apply_transforms(STANDARD, image, seeded(1)).sum().backward()
    assert torch.isfinite(image.grad).all() and image.grad.abs().sum() > 0


def test_transforms_from_text_reads_the_forms():
    assert transforms_from_text("none") == ()
    assert transforms_from_text(" standard ") == STANDARD
    pad, jitter, scale, rotate = transforms_from_text("pad:12,jitter:8,scale:0.9-1.1,rotate:10")
    assert (pad, jitter) == (Pad(12, 0.5), Jitter(8))
    assert list(scale.scales) == pytest.approx(LUCID_SCALES)
    assert list(rotate.degrees) == pytest.approx(range(-10, 11))
    assert transforms_from_text("scale:1.5, jitter:2") == (RandomScale((1.5,)), Jitter(2))
    assert transforms_from_text("rotate:0") == (RandomRotate((0,)),)


def test_robust_is_the_list_its_help_gives_and_wider_than_standard_in_every_draw():
    robust = transforms_from_text("robust")
    assert robust == transforms_from_text("pad:16,jitter:16,scale:0.8-1.2,rotate:15,jitter:8")
    assert "pad:16,jitter:16,scale:0.8-1.2,rotate:15,jitter:8" in TRANSFORMS_HELP
    pad, jitter, scale, rotate, jitter_again = robust
    assert pad.width > 12 and jitter.pixels > 8 and jitter_again.pixels > 4
    assert min(scale.scales) < min(LUCID_SCALES) and max(scale.scales) > max(LUCID_SCALES)
    assert max(rotate.degrees) == 15 and min(rotate.degrees) == -15


@pytest.mark.parametrize("text, message", [
    ("", "an empty item"),
    ("blur:3", "unknown transform 'blur'"),
    ("pad", "pad: give a value, e.g. pad:12"),
    ("pad:-1", "pad:-1: the padding must be an integer from 0 to 10000"),
    ("pad:12,,jitter:2", "an empty item"),
    ("jitter:0", "the jitter must be at least 1 pixel"),
    ("jitter:x", "jitter:x: the jitter must be an integer"),
    ("scale:1.2-0.9", "LOW-HIGH, low first"),
    ("scale:0", "the scale must be a finite number from 0.1 to 10"),
    ("scale:0.9-nan", "the largest scale must be a finite number"),
    ("rotate:400", "the angle must be a finite number from 0 to 180"),
])
def test_transforms_from_text_refuses_in_one_line_naming_the_option(text, message):
    with pytest.raises(UsageError) as error:
        transforms_from_text(text)
    assert str(error.value).startswith("--transforms")
    assert message in str(error.value) and "\n" not in str(error.value)
