"""Explanations of cell calls through their morphology, and the cells to send for review.

For each cell: the type with its probability (the most probable group first, then its most
probable member), each attribute's value with its probability,
and a rationale naming the attributes that matter most for that type (those whose
type-typical profile in ``configs/morphology.yaml`` differs most from the other types'),
e.g. ``lymphoblast: open chromatin (0.93), prominent nucleoli (0.88), scanty cytoplasm (0.91)``.

Consistency: for every profiled type t of a schema, the agreement of each predicted
attribute distribution q with t's profile P is ``sum_v q(v) P_t(v)``; a type's support is
the geometric mean of its agreements. Consistency is the predicted type's support over the
best-supported type's (1 = the attributes fit the call best; lowest over schemas). A cell
whose group probability or margin is low, or whose consistency is low, is flagged for
review with the reason, like the "unidentified" bin of commercial analysers.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from smearscope.attributes.schema import TYPE_HEAD, attribute_heads, decide_types, type_group
from smearscope.datasets.schema import morphology_profiles, taxonomy

# How an attribute value reads in a rationale: a template with {value}, or a phrase per value.
PHRASES: dict[str, str | dict[str, str]] = {
    "leukemiaattri_cell_size": "{value} cell",
    "leukemiaattri_nuclear_chromatin": "{value} chromatin",
    "leukemiaattri_nuclear_shape": "{value} nucleus",
    "leukemiaattri_nucleolus": "{value} nucleoli",
    "leukemiaattri_cytoplasm": "{value} cytoplasm",
    "leukemiaattri_cytoplasmic_basophilia": "{value} cytoplasmic basophilia",
    "leukemiaattri_cytoplasmic_vacuoles": {"absent": "no vacuoles", "prominent": "prominent vacuoles"},
    "wbcatt_cell_size": "{value} cell",
    "wbcatt_cell_shape": "{value} outline",
    "wbcatt_nucleus_shape": "{value} nucleus",
    "wbcatt_nuclear_cytoplasmic_ratio": "{value} N:C ratio",
    "wbcatt_chromatin_density": "{value} packed chromatin",
    "wbcatt_cytoplasm_vacuole": {"no": "no vacuoles", "yes": "vacuoles"},
    "wbcatt_cytoplasm_texture": "{value} cytoplasm",
    "wbcatt_cytoplasm_colour": "{value} cytoplasm colour",
    "wbcatt_granule_type": {"nil": "no granules", "small": "small granules", "round": "round granules",
                            "coarse": "coarse granules"},
    "wbcatt_granule_colour": {"nil": "no granule colour", "pink": "pink granules", "red": "red granules",
                              "purple": "purple granules"},
    "wbcatt_granularity": {"no": "agranular", "yes": "granular"},
}
PROFILE_FLOOR = 0.02  # a profile probability below this counts as this (no value is impossible)


@dataclass
class ExplainConfig:
    """Thresholds of the review flags and the length of the rationale."""

    top_attributes: int = 3
    min_group_probability: float = 0.6
    min_group_margin: float = 0.2
    min_consistency: float = 0.5
    # A predicted value is atypical when its agreement with the called type is below this
    # share of its agreement with the best-supported type.
    atypical_ratio: float = 0.5
    top_types: int = 3


@dataclass
class CellExplanation:
    """One cell's call and why: type, attributes, the rationale linking them, and review flags."""

    cell_type: str
    group: str
    type_probability: float
    top_types: dict[str, float]
    attributes: dict[str, str]
    attribute_probabilities: dict[str, float]
    rationale: str
    consistency: float | None  # None when no profile describes the type
    review: bool
    review_reasons: list[str] = field(default_factory=list)
    best_supported_type: str | None = None


def phrase(attribute: str, value: str) -> str:
    """How ``value`` of ``attribute`` reads in a rationale (``open chromatin``)."""
    rule = PHRASES.get(attribute)
    if isinstance(rule, dict):
        return rule.get(value, f"{attribute.split('_', 1)[-1].replace('_', ' ')} {value}")
    if isinstance(rule, str):
        return rule.format(value=value)
    return f"{attribute.split('_', 1)[-1].replace('_', ' ')}: {value}"


def profile_of(cell_type: str, schema: str) -> dict[str, tuple[float, ...]] | None:
    """The type-typical profile of a type in a schema: its own, else its group's."""
    table = morphology_profiles().get(schema, {})
    return table.get(cell_type) or table.get(type_group(cell_type))


def _schema_of(head: str) -> str:
    return head.split("_", 1)[0]


def distinctive_attributes(cell_type: str, heads: Sequence[str]) -> list[str]:
    """``heads`` ordered by how much the type's profile differs from its schema's average profile (KL)."""
    scores = {}
    for head in heads:
        schema = _schema_of(head)
        mine = profile_of(cell_type, schema)
        if mine is None or head not in mine:
            continue
        everyone = np.array([p[head] for p in morphology_profiles()[schema].values() if head in p])
        p = np.maximum(np.array(mine[head]), 1e-6)
        q = np.maximum(everyone.mean(axis=0), 1e-6)
        scores[head] = float(np.sum(p * np.log(p / q)))
    return sorted(scores, key=lambda h: -scores[h])


def _support(
    cell_type: str, schema: str, attribute_probs: Mapping[str, np.ndarray]
) -> tuple[float, dict[str, float]] | None:
    """Geometric-mean agreement of predicted attributes with a type's profile, and each agreement."""
    profile = profile_of(cell_type, schema)
    if profile is None:
        return None
    agreements = {}
    for head, probs in attribute_probs.items():
        if _schema_of(head) == schema and head in profile:
            agreements[head] = float(np.dot(probs, np.maximum(profile[head], PROFILE_FLOOR)))
    if not agreements:
        return None
    return float(np.exp(np.mean(np.log(list(agreements.values()))))), agreements


def consistency(
    cell_type: str, attribute_probs: Mapping[str, np.ndarray]
) -> tuple[float | None, str | None, dict[str, float], dict[str, float]]:
    """(consistency in [0, 1] or None, best-supported type, per-attribute agreement with the
    type, per-attribute agreement with the best-supported type of the same schema)."""
    worst, best_type, own_agreements, best_agreements = None, None, {}, {}
    for schema in sorted({_schema_of(h) for h in attribute_probs}):
        own = _support(cell_type, schema, attribute_probs)
        if own is None:
            continue
        others = {t: _support(t, schema, attribute_probs) for t in morphology_profiles()[schema]}
        leader = max(others, key=lambda t: others[t][0])
        ratio = min(own[0] / max(others[leader][0], 1e-12), 1.0)
        own_agreements.update(own[1])
        best_agreements.update(others[leader][1])
        if worst is None or ratio < worst:
            worst, best_type = ratio, leader
    return worst, best_type, own_agreements, best_agreements


def _group_probabilities(type_probs: np.ndarray, vocabulary: Sequence[str]) -> dict[str, float]:
    groups: dict[str, float] = {}
    for t, p in zip(vocabulary, type_probs):
        groups[type_group(t)] = groups.get(type_group(t), 0.0) + float(p)
    return dict(sorted(groups.items(), key=lambda kv: -kv[1]))


def explain_cell(
    probs: Mapping[str, np.ndarray],
    heads: Mapping[str, Sequence[str]],
    config: ExplainConfig | None = None,
) -> CellExplanation:
    """Explain one cell from its per-head probabilities (``{head: (K,)}``, heads as in ``heads``).

    Pass only trained heads: an untrained head's output would be read as evidence.
    """
    config = config or ExplainConfig()
    vocabulary = list(heads[TYPE_HEAD])
    type_probs = np.asarray(probs[TYPE_HEAD], dtype=np.float64)
    called = int(decide_types(type_probs, vocabulary)[0])
    cell_type = vocabulary[called]
    order = np.argsort(-type_probs)
    attribute_probs = {h: np.asarray(probs[h], dtype=np.float64) for h in attribute_heads(heads) if h in probs}
    values = {h: heads[h][int(np.argmax(p))] for h, p in attribute_probs.items()}
    value_probs = {h: float(np.max(p)) for h, p in attribute_probs.items()}
    score, best_type, own, best = consistency(cell_type, attribute_probs)
    evidence = lambda h: f"{phrase(h, values[h])} ({value_probs[h]:.2f})"  # noqa: E731
    shown = distinctive_attributes(cell_type, list(attribute_probs))[: config.top_attributes]
    rationale = cell_type.replace("_", " ") + (": " + ", ".join(evidence(h) for h in shown) if shown else "")
    reasons = [_uncertainty(type_probs, vocabulary, cell_type, config)]
    if score is not None and score < config.min_consistency:
        atypical = sorted((h for h in own if own[h] < config.atypical_ratio * best[h]), key=lambda h: own[h] / best[h])
        reasons.append(_contradiction(cell_type, score, best_type, [evidence(h) for h in atypical[:3]]))
    reasons = [r for r in reasons if r]
    return CellExplanation(
        cell_type=cell_type,
        group=type_group(cell_type),
        type_probability=float(type_probs[called]),
        top_types={vocabulary[k]: float(type_probs[k]) for k in order[: config.top_types]},
        attributes=values,
        attribute_probabilities=value_probs,
        rationale=rationale,
        consistency=score,
        review=bool(reasons),
        review_reasons=reasons,
        best_supported_type=best_type,
    )


def _uncertainty(type_probs: np.ndarray, vocabulary: Sequence[str], cell_type: str, config: ExplainConfig) -> str | None:
    """Why a white cell's group is uncertain (low top probability or small margin), if it is."""
    if not taxonomy().is_wbc.get(cell_type, False):
        return None
    groups = _group_probabilities(type_probs, vocabulary)
    (first, p1), (second, p2) = (list(groups.items()) + [("-", 0.0)])[:2]
    if p1 < config.min_group_probability or p1 - p2 < config.min_group_margin:
        return f"uncertain type: {first} {p1:.2f} vs {second} {p2:.2f}"
    return None


def _contradiction(cell_type: str, score: float, best_type: str | None, atypical: list[str]) -> str:
    """Why the attributes contradict the call: the atypical values and the type they fit better."""
    reason = f"attributes contradict {cell_type.replace('_', ' ')} (consistency {score:.2f})"
    if atypical:
        reason += f": {', '.join(atypical)} atypical"
    if best_type and best_type != cell_type:
        reason += f"; they fit {best_type.replace('_', ' ')} better"
    return reason


def explain_cells(
    probs: Mapping[str, np.ndarray],
    heads: Mapping[str, Sequence[str]],
    config: ExplainConfig | None = None,
) -> list[CellExplanation]:
    """Explain N cells from batched probabilities ``{head: (N, K)}``."""
    count = len(probs[TYPE_HEAD])
    return [explain_cell({h: p[i] for h, p in probs.items()}, heads, config) for i in range(count)]


def trained_heads(model_heads: Mapping[str, Sequence[str]], trained: Sequence[str]) -> dict[str, list[str]]:
    """The head table restricted to heads that had labels in training (the type head always)."""
    keep = set(trained) | {TYPE_HEAD}
    return {name: list(values) for name, values in model_heads.items() if name in keep}
