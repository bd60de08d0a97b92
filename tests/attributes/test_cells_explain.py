"""Explanations read as specified; contradictions and uncertain calls are flagged for review."""

from __future__ import annotations

import numpy as np
import pytest

from smearscope.attributes.explain import (
    ExplainConfig,
    consistency,
    distinctive_attributes,
    explain_cell,
    explain_cells,
    phrase,
    trained_heads,
)
from smearscope.attributes.schema import default_heads


def _heads(schema: str = "leukemiaattri") -> dict[str, list[str]]:
    return {k: v for k, v in default_heads().items() if k == "cell_type" or k.startswith(schema)}


def _prediction(heads: dict, cell_type: dict[str, float], values: dict[str, tuple[str, float]]) -> dict[str, np.ndarray]:
    """Probabilities per head: named types get their probability, the rest share what is left."""
    out = {}
    for head, names in heads.items():
        wanted = cell_type if head == "cell_type" else {values[head][0]: values[head][1]} if head in values else {}
        probs = np.array([wanted.get(n, 0.0) for n in names])
        rest = [i for i, n in enumerate(names) if n not in wanted]
        probs[rest] = (1.0 - probs.sum()) / max(len(rest), 1)
        out[head] = probs
    return out


BLAST = {
    "leukemiaattri_cell_size": ("medium", 0.8),
    "leukemiaattri_nuclear_chromatin": ("open", 0.93),
    "leukemiaattri_nuclear_shape": ("regular", 0.9),
    "leukemiaattri_nucleolus": ("prominent", 0.88),
    "leukemiaattri_cytoplasm": ("scanty", 0.91),
    "leukemiaattri_cytoplasmic_basophilia": ("moderate", 0.8),
    "leukemiaattri_cytoplasmic_vacuoles": ("absent", 0.95),
}


def test_a_typical_lymphoblast_reads_as_specified_and_is_not_flagged():
    heads = _heads()
    cell = explain_cell(_prediction(heads, {"lymphoblast": 0.9}, BLAST), heads)
    assert cell.cell_type == "lymphoblast" and cell.group == "blast"
    assert cell.type_probability == pytest.approx(0.9)
    assert cell.rationale == "lymphoblast: scanty cytoplasm (0.91), open chromatin (0.93), prominent nucleoli (0.88)"
    assert cell.attributes["leukemiaattri_nucleolus"] == "prominent"
    assert cell.attribute_probabilities["leukemiaattri_nuclear_chromatin"] == pytest.approx(0.93)
    assert cell.consistency == pytest.approx(1.0) and not cell.review and cell.review_reasons == []
    assert list(cell.top_types)[0] == "lymphoblast"


def test_attributes_that_contradict_the_type_flag_the_cell_with_a_reason():
    heads = _heads()
    # called a lymphoblast, but with the coarse chromatin, no nucleoli, lobed nucleus and abundant cytoplasm of a neutrophil
    mature = {
        "leukemiaattri_cell_size": ("medium", 0.9),
        "leukemiaattri_nuclear_chromatin": ("coarse", 0.95),
        "leukemiaattri_nuclear_shape": ("irregular", 0.95),
        "leukemiaattri_nucleolus": ("inconspicuous", 0.97),
        "leukemiaattri_cytoplasm": ("abundant", 0.95),
        "leukemiaattri_cytoplasmic_basophilia": ("slight", 0.95),
        "leukemiaattri_cytoplasmic_vacuoles": ("absent", 0.95),
    }
    cell = explain_cell(_prediction(heads, {"lymphoblast": 0.95}, mature), heads)
    assert cell.review and cell.consistency < 0.5
    (reason,) = cell.review_reasons
    assert reason.startswith("attributes contradict lymphoblast")
    assert "coarse chromatin (0.95)" in reason and "abundant cytoplasm (0.95)" in reason
    assert cell.best_supported_type in ("neutrophil", "eosinophil", "metamyelocyte")


def test_an_uncertain_group_call_is_flagged_but_a_split_between_members_is_not():
    heads = _heads("wbcatt")
    values = {"wbcatt_granule_type": ("small", 0.9), "wbcatt_granule_colour": ("pink", 0.9)}
    torn = explain_cell(_prediction(heads, {"monocyte": 0.5, "lymphocyte": 0.45}, values), heads)
    assert torn.review and torn.review_reasons[0].startswith("uncertain type: monocyte 0.50 vs lymphocyte 0.45")
    split = explain_cell(_prediction(heads, {"segmented_neutrophil": 0.5, "band_neutrophil": 0.49}, values), heads)
    assert split.group == "neutrophil" and not any(r.startswith("uncertain") for r in split.review_reasons)


def test_types_without_a_profile_get_no_consistency():
    heads = _heads()
    cell = explain_cell(_prediction(heads, {"artifact": 0.99}, BLAST), heads)
    assert cell.consistency is None and cell.rationale == "artifact" and not cell.review


def test_consistency_prefers_the_type_the_attributes_describe():
    heads = _heads()
    probs = _prediction(heads, {"lymphoblast": 1.0}, BLAST)
    attributes = {k: v for k, v in probs.items() if k != "cell_type"}
    blast_score, _, _, _ = consistency("lymphoblast", attributes)
    neutrophil_score, best, _, _ = consistency("segmented_neutrophil", attributes)  # scored through its group's profile
    assert blast_score > 0.9 and neutrophil_score < ExplainConfig().min_consistency
    assert best in ("lymphoblast", "myeloblast")


def test_batched_explanations_and_trained_head_filter():
    heads = _heads()
    one = _prediction(heads, {"lymphoblast": 0.9}, BLAST)
    batch = {k: np.stack([v, v]) for k, v in one.items()}
    cells = explain_cells(batch, heads, ExplainConfig(top_attributes=1))
    assert [c.rationale for c in cells] == ["lymphoblast: scanty cytoplasm (0.91)"] * 2
    assert list(trained_heads(default_heads(), ["wbcatt_cell_size"])) == ["cell_type", "wbcatt_cell_size"]


def test_distinctive_attributes_and_phrases():
    assert distinctive_attributes("eosinophil", list(_heads("wbcatt"))[1:])[:2] == ["wbcatt_granule_colour", "wbcatt_granule_type"]
    assert phrase("wbcatt_granularity", "no") == "agranular"
    assert phrase("leukemiaattri_cytoplasmic_vacuoles", "absent") == "no vacuoles"
    assert phrase("wbcatt_cell_size", "big") == "big cell"
