"""What a microscope and a camera make of a stained slide: light, blur, colour, noise, JPEG.

Microscope H gives sharp, even, white light; L blurs, veils (lower contrast), tints and
darkens the corners. Each camera has its own colour response, gamma, noise and JPEG
quality. Everything is addressed in image pixels, so a window of a large image gets the
same pixels whether the image is rendered whole or in strips.
"""

from __future__ import annotations

import cv2
import numpy as np

from smearscope.datasets.phantom.background import smooth_field
from smearscope.datasets.phantom.domains import DomainSpec
from smearscope.datasets.phantom.noise import band_normals, lattice_noise
from smearscope.datasets.phantom.params import PhantomConfig, phantom_config

JPEG_BLOCK = 16  # windows start at multiples of this so JPEG blocks line up with the whole image


def blur_sigma_px(domain: DomainSpec, config: PhantomConfig | None = None) -> float:
    """Optical blur (Gaussian sigma, pixels) of the domain's objective and microscope."""
    config = config or phantom_config()
    if domain.magnification not in config.psf_sigma_um:
        raise ValueError(f"phantom.yaml: no optics for magnification {domain.magnification}")
    if domain.microscope not in config.microscopes:
        raise ValueError(f"phantom.yaml: no optics for microscope {domain.microscope}")
    scope = config.microscopes[domain.microscope]
    return (config.psf_sigma_um[domain.magnification] * scope.blur + scope.defocus_um) / domain.um_per_px


def illumination(domain: DomainSpec, seed: int, window: tuple[int, int, int, int], image_size: tuple[int, int],
                 config: PhantomConfig) -> np.ndarray:
    """Lamp light (h, w, 3) reaching the camera through an empty slide, vignetting included."""
    scope = config.microscopes[domain.microscope]
    x0, y0, x1, y1 = window
    width, height = image_size
    xs = (np.arange(x0, x1) + 0.5 - width / 2) / (0.5 * np.hypot(width, height))
    ys = (np.arange(y0, y1) + 0.5 - height / 2) / (0.5 * np.hypot(width, height))
    falloff = 1.0 - scope.vignetting * (ys[:, None] ** 2 + xs[None, :] ** 2)
    uneven = smooth_field(lambda x, y: lattice_noise(seed + 3, x, y, 0.6 * max(width, height)),
                          (float(x0), float(y0)), (y1 - y0, x1 - x0), 1.0)
    light = scope.brightness * falloff * (1.0 + scope.unevenness * uneven)
    return light[:, :, None].astype(np.float32) * np.asarray(scope.lamp, dtype=np.float32)


def expose(density: np.ndarray, domain: DomainSpec, seed: int, window: tuple[int, int, int, int],
           image_size: tuple[int, int], config: PhantomConfig | None = None) -> np.ndarray:
    """RGB uint8 picture of an optical-density window ``(x0, y0, x1, y1)`` of an image of ``image_size``."""
    config = config or phantom_config()
    scope = config.microscopes[domain.microscope]
    camera = config.cameras.get(domain.camera)
    if camera is None:
        raise ValueError(f"phantom.yaml: no response for camera {domain.camera}")
    transmitted = np.exp(-density)
    sigma = blur_sigma_px(domain, config)
    if sigma > 0.05:
        transmitted = cv2.GaussianBlur(transmitted, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)
    light = illumination(domain, seed, window, image_size, config)
    signal = light * transmitted
    veil = scope.flare * scope.brightness * np.asarray(scope.lamp, dtype=np.float32) * 0.85
    signal = signal * (1.0 - scope.flare) + veil
    matrix = np.asarray(camera.colour_matrix, dtype=np.float32)
    signal = cv2.transform(signal, matrix * np.asarray(camera.white_balance, dtype=np.float32)[:, None])
    x0, y0, x1, y1 = window
    normals = band_normals(seed + 11, y0, y1, x0, x1)
    spread = scope.noise * np.sqrt(camera.read_noise ** 2 + camera.shot_noise ** 2 * np.clip(signal, 0.0, None))
    signal = np.clip(signal + spread * normals, 0.0, 1.0)
    encoded = np.clip(signal ** (1.0 / camera.gamma) * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if camera.jpeg_quality > 0:
        ok, data = cv2.imencode(".jpg", cv2.cvtColor(encoded, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, camera.jpeg_quality])
        if not ok:
            raise ValueError(f"JPEG encoding failed for domain {domain.name}")
        encoded = cv2.cvtColor(cv2.imdecode(data, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)
    return encoded
