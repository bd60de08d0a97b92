"""Each LeukemiaAttri attribute of a phantom cell changes its pixels the way it should."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from smearscope.datasets.phantom import centred_view, render_view, single_cell_slide
from smearscope.datasets.phantom.anatomy import anatomy_of

# A plain cell: every attribute fixed, so a test changes exactly one.
PLAIN = {
    "cell_size": "large", "nuclear_chromatin": "open", "nuclear_shape": "regular", "nucleolus": "inconspicuous",
    "cytoplasm": "abundant", "cytoplasmic_basophilia": "slight", "cytoplasmic_vacuoles": "absent",
}


def render_cell(cell_type: str, seed: int = 3, domain: str = "H_100X_C1", size: int = 200, background: bool = False,
                **attributes: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """RGB image of one cell and boolean masks (cell, nucleus, cytoplasm ring) from its anatomy."""
    slide = single_cell_slide(seed, cell_type, {**PLAIN, **attributes}, background=background, extent_um=40.0)
    view = centred_view(slide, domain, size)
    image = render_view(slide, view)
    cell = slide.cells[0]
    anatomy = anatomy_of(cell)
    xs = view.origin_um[0] + (np.arange(size) + 0.5) * view.px - cell.x_um
    ys = view.origin_um[1] + (np.arange(size) + 0.5) * view.px - cell.y_um
    x, y = np.meshgrid(xs, ys)
    margin = max(0.4, 1.5 * view.px)
    inside = anatomy.outline.distance(x, y) < -margin
    nucleus = anatomy.nucleus_distance(x, y)
    return image, {"cell": inside, "nucleus": inside & (nucleus < -margin), "ring": inside & (nucleus > margin)}


def gray(image: np.ndarray) -> np.ndarray:
    return cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float64)


def test_moderate_basophilia_makes_the_cytoplasm_bluer():
    slight, masks = render_cell("myeloblast", cytoplasmic_basophilia="slight")
    moderate, masks_m = render_cell("myeloblast", cytoplasmic_basophilia="moderate")
    assert np.array_equal(masks["ring"], masks_m["ring"])  # same cell otherwise
    blue_minus_red = [(img[..., 2].astype(float) - img[..., 0])[masks["ring"]].mean() for img in (slight, moderate)]
    assert blue_minus_red[1] > blue_minus_red[0] + 25


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_lobed_neutrophil_nucleus_falls_apart_in_a_nucleus_mask(seed):
    def components(image: np.ndarray) -> int:
        mask = (image[..., 1] < 120).astype(np.uint8)  # nuclear purple absorbs green strongly
        _, _, stats, _ = cv2.connectedComponentsWithStats(mask)
        return int((stats[1:, cv2.CC_STAT_AREA] > 60).sum())

    lobed, _ = render_cell("neutrophil", seed=seed, nuclear_shape="irregular")
    round_, _ = render_cell("neutrophil", seed=seed, nuclear_shape="regular")
    assert components(lobed) >= 2
    assert components(round_) == 1


def test_prominent_nucleoli_are_pale_spots_in_the_nucleus():
    plain, masks = render_cell("myeloblast", nucleolus="inconspicuous")
    spotted, _ = render_cell("myeloblast", nucleolus="prominent")
    g0, g1 = gray(plain)[masks["nucleus"]], gray(spotted)[masks["nucleus"]]
    assert g1.std() > 1.5 * g0.std()
    assert np.percentile(g1, 99) > np.percentile(g0, 99) + 15


def test_coarse_chromatin_is_clumped():
    def texture(image: np.ndarray, mask: np.ndarray) -> float:
        g = gray(image)
        return float((g - cv2.GaussianBlur(g, (0, 0), 3))[mask].var())

    open_, masks = render_cell("lymphocyte", nuclear_chromatin="open")
    coarse, _ = render_cell("lymphocyte", nuclear_chromatin="coarse")
    assert texture(coarse, masks["nucleus"]) > 3 * texture(open_, masks["nucleus"])


def test_prominent_vacuoles_are_clear_holes():
    plain, masks = render_cell("monocyte", cytoplasmic_vacuoles="absent")
    holed, _ = render_cell("monocyte", cytoplasmic_vacuoles="prominent")
    background = np.median(gray(plain)[~masks["cell"]])
    clear = [(gray(img)[masks["cell"]] > background - 18).mean() for img in (plain, holed)]
    assert clear[0] < 0.002
    assert clear[1] > 0.01


def test_scanty_cytoplasm_raises_the_nuclear_share():
    def nuclear_share(image: np.ndarray) -> float:
        g = gray(image)
        cell = g < np.median(g) - 12
        nucleus = image[..., 1] < 130
        return nucleus.sum() / cell.sum()

    scanty, _ = render_cell("lymphoblast", cytoplasm="scanty")
    abundant, _ = render_cell("lymphoblast", cytoplasm="abundant")
    assert nuclear_share(scanty) > nuclear_share(abundant) + 0.2


def test_cell_size_classes_differ_in_physical_size():
    areas = {}
    for size in ("small", "medium", "large"):
        image, _ = render_cell("lymphocyte", cell_size=size)
        g = gray(image)
        areas[size] = int((g < np.median(g) - 12).sum())
    assert areas["small"] < areas["medium"] < areas["large"]


def test_artifacts_carry_unknown_attributes():
    from smearscope.datasets.phantom import single_cell_slide

    cell = single_cell_slide(5, "artifact").cells[0]
    assert cell.source_label == "None"
    assert set(cell.values) == {"unknown"}
