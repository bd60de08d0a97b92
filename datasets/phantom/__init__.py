"""Synthetic peripheral blood smears with known ground truth, in the shape of LeukemiaAttri.

A :class:`Slide` is the physical scene (cells in micrometres with their class, seven
attributes and texture seeds); :func:`render_field` shows a part of it through one of the
twelve LeukemiaAttri domains (microscope H/L, 100X/40X/10X, camera C1/C2) and returns the
image with its ground truth. Looks and optics live in ``configs/phantom.yaml``.
"""

from smearscope.datasets.phantom.capture import render_capture, save_capture
from smearscope.datasets.phantom.cellspec import Cell
from smearscope.datasets.phantom.domains import DOMAIN_NAMES, DomainSpec, domain_spec, parse_domains
from smearscope.datasets.phantom.field import View, centred_view, render_field, render_view, view_truth
from smearscope.datasets.phantom.layout import generate_leukemiaattri
from smearscope.datasets.phantom.sheet import contact_sheet
from smearscope.datasets.phantom.slide import Slide, make_slide, single_cell_slide

__all__ = [
    "DOMAIN_NAMES", "Cell", "DomainSpec", "Slide", "View", "centred_view", "contact_sheet", "domain_spec",
    "generate_leukemiaattri", "make_slide", "parse_domains", "render_capture", "render_field", "render_view",
    "save_capture", "single_cell_slide", "view_truth",
]
