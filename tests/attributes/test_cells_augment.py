"""Batched augmentation: stain space, JPEG-like compression, geometry, determinism."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from smearscope.attributes.augment import (
    AugmentConfig,
    augment_batch,
    center_batch,
    gaussian_blur,
    geometric,
    hed_to_rgb,
    jpeg_like,
    match_colour_moments,
    optical_density_moments,
    rgb_to_hed,
    stain_jitter,
    to_float,
)

OFF = AugmentConfig(scale_jitter=0.0, rotate=False, flip=False, translate=0.0, hed_scale=0.0, hed_shift=0.0, hed_hue=0.0, tint=0.0,
                    brightness=0.0, contrast=0.0, gamma=0.0, saturation=0.0, blur_prob=0.0, jpeg_prob=0.0, noise_std=0.0,
                    reference_colour_prob=0.0)


def _smooth_image(seed: int = 0, size: int = 64) -> np.ndarray:
    """A smooth random RGB image spanning the full range."""
    rng = np.random.default_rng(seed)
    image = cv2.GaussianBlur((rng.random((size, size, 3)) * 255).astype(np.uint8), (0, 0), 3)
    return cv2.normalize(image, None, 0, 255, cv2.NORM_MINMAX)


def test_hed_matches_scikit_image_and_inverts():
    color = pytest.importorskip("skimage.color")
    rgb = np.random.default_rng(0).random((6, 6, 3)) * 0.9 + 0.05
    mine = rgb_to_hed(torch.from_numpy(rgb).permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy()
    # scikit-image scales optical density by -log(1e-6) and clips negative stain amounts
    np.testing.assert_allclose(np.maximum(mine / -np.log(1e-6), 0), color.rgb2hed(rgb), atol=1e-12)
    x = torch.rand(2, 3, 8, 8) * 0.9 + 0.05
    torch.testing.assert_close(hed_to_rgb(rgb_to_hed(x)), x, atol=1e-5, rtol=0)


def test_stain_jitter_without_magnitude_changes_nothing_and_with_it_changes_colour():
    x = torch.rand(3, 3, 16, 16) * 0.9 + 0.05
    same = stain_jitter(x, OFF, torch.Generator().manual_seed(0))
    torch.testing.assert_close(same, x, atol=1e-5, rtol=0)
    moved = stain_jitter(x, AugmentConfig(hed_scale=0.3, hed_shift=0.1, hed_hue=0.0), torch.Generator().manual_seed(0))
    assert (moved - x).abs().mean() > 0.01
    recoloured = stain_jitter(x, AugmentConfig(hed_scale=0.0, hed_shift=0.0, hed_hue=0.2), torch.Generator().manual_seed(0))
    assert (recoloured - x).abs().mean() > 0.01
    white = torch.ones(1, 3, 4, 4)  # no stain: stays white whatever the stain colours
    torch.testing.assert_close(stain_jitter(white, AugmentConfig(hed_shift=0.0), None), white, atol=1e-5, rtol=0)


@pytest.mark.parametrize("quality", [20, 50, 90])
def test_jpeg_like_errs_like_real_jpeg(quality):
    image = _smooth_image()
    ok, encoded = cv2.imencode(".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [
        cv2.IMWRITE_JPEG_QUALITY, quality, cv2.IMWRITE_JPEG_SAMPLING_FACTOR, cv2.IMWRITE_JPEG_SAMPLING_FACTOR_444])
    real = cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB).astype(float)
    mine = jpeg_like(torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255, torch.tensor([quality]))
    mine = mine[0].permute(1, 2, 0).numpy() * 255
    real_error, my_error = np.abs(real - image).mean(), np.abs(mine - image).mean()
    assert my_error == pytest.approx(real_error, rel=0.25)
    assert np.abs(mine - real).mean() < 0.5 * real_error + 1.0


def test_blur_smooths_per_image():
    x = torch.zeros(2, 3, 21, 21)
    x[:, :, 10, 10] = 1.0
    out = gaussian_blur(x, torch.tensor([0.5, 2.0]))
    assert out[0, 0, 10, 10] > out[1, 0, 10, 10] > 0
    torch.testing.assert_close(out.sum(dim=(2, 3)), torch.ones(2, 3), atol=1e-4, rtol=0)


def test_geometry_off_is_the_centre_crop_and_rotation_keeps_a_centred_disc():
    cache = torch.zeros(2, 40, 40, 3, dtype=torch.uint8)
    cache[:, 12:28, 12:28] = 255
    same, zoom = geometric(to_float(cache), 32, OFF, None)
    torch.testing.assert_close(same, center_batch(cache, 32), atol=1e-5, rtol=0)
    assert zoom.tolist() == [1.0, 1.0]
    turned, _ = geometric(to_float(cache), 32, AugmentConfig(scale_jitter=0.0, translate=0.0), torch.Generator().manual_seed(3))
    assert float(turned[:, :, 16, 16].min()) == pytest.approx(1.0)  # the centre stays inside the square
    assert float(turned[:, :, 0, 0].max()) == pytest.approx(0.0)


def test_zoom_is_reported_and_magnifies_the_cell():
    cache = torch.zeros(64, 40, 40, 3, dtype=torch.uint8)
    cache[:, 16:24, 16:24] = 255  # an 8 px square at the cache's scale
    cfg = AugmentConfig(scale_jitter=0.5, rotate=False, flip=False, translate=0.0)
    out, zoom = geometric(to_float(cache), 32, cfg, torch.Generator().manual_seed(0))
    assert float(zoom.min()) >= 1 / 1.5 - 1e-6 and float(zoom.max()) <= 1.5 + 1e-6 and zoom.std() > 0.1
    widths = (out[:, 0, 16] > 0.5).sum(dim=1).float()  # the middle row of each crop
    assert torch.corrcoef(torch.stack([widths, zoom]))[0, 1] > 0.9


def test_augment_batch_is_deterministic_for_a_seed_and_in_range():
    cache = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (4, 40, 40, 3), dtype=np.uint8))
    cfg = AugmentConfig(blur_prob=1.0, jpeg_prob=1.0)
    a, zoom_a = augment_batch(cache, 32, cfg, torch.Generator().manual_seed(5))
    b, zoom_b = augment_batch(cache, 32, cfg, torch.Generator().manual_seed(5))
    c, _ = augment_batch(cache, 32, cfg, torch.Generator().manual_seed(6))
    assert a.shape == (4, 3, 32, 32) and float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    torch.testing.assert_close(a, b)
    torch.testing.assert_close(zoom_a, zoom_b)
    assert (a - c).abs().mean() > 0.01


def test_centre_crop_refuses_crops_smaller_than_the_input():
    with pytest.raises(ValueError, match="smaller than the input"):
        center_batch(torch.zeros(1, 16, 16, 3, dtype=torch.uint8), 32)


def test_colour_matching_gives_the_reference_moments_and_keeps_structure():
    source = torch.from_numpy(np.stack([_smooth_image(1), _smooth_image(2)]))
    reference = torch.from_numpy(np.stack([_smooth_image(3), _smooth_image(4)]) // 2 + 60)
    target = optical_density_moments(reference)
    matched = match_colour_moments(to_float(source), target)
    got = optical_density_moments((matched * 255).round().to(torch.uint8).permute(0, 2, 3, 1))
    np.testing.assert_allclose(got.numpy(), target.numpy(), atol=0.02)
    # per channel an increasing map: the ranking of pixel intensities survives
    before, after = to_float(source)[0, 0].flatten(), matched[0, 0].flatten()
    assert torch.corrcoef(torch.stack([before.argsort().argsort().float(), after.argsort().argsort().float()]))[0, 1] > 0.99


def test_only_synthetic_crops_take_reference_colours():
    crops = torch.from_numpy(np.stack([_smooth_image(5), _smooth_image(6)]))
    references = optical_density_moments(torch.from_numpy(_smooth_image(7)[None] // 3 + 100))
    config = AugmentConfig(**{**OFF.__dict__, "reference_colour_prob": 1.0})
    synthetic = torch.tensor([True, False])
    out, _ = augment_batch(crops, 64, config, torch.Generator().manual_seed(0), synthetic, references)
    plain, _ = augment_batch(crops, 64, OFF)
    assert torch.equal(out[1], plain[1])
    assert (out[0] - plain[0]).abs().mean() > 0.05
    np.testing.assert_allclose(optical_density_moments((out[:1] * 255).round().to(torch.uint8).permute(0, 2, 3, 1)).numpy(),
                               references.numpy(), atol=0.02)
