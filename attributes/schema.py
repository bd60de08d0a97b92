"""Head vocabularies of the cell model and the encoding of labels into training targets.

One head predicts the cell type over the fine unified WBC types plus the non-WBC objects a
detector also boxes (erythroblast, smudge cell, artifact). A label that is a coarse type
("neutrophil", "blast", "wbc") is a partial label: the set of its members in the head. Each
morphological attribute of each schema (``configs/attributes.yaml``) has its own head over
its values; ``unknown`` means no label (no loss).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from smearscope.datasets.schema import SCHEMAS, UNKNOWN, schema_attributes, taxonomy

TYPE_HEAD = "cell_type"
NON_WBC_TYPES = ("erythroblast", "smudge_cell", "artifact")
NO_ATTRIBUTE_LABEL = -1
# Attributes that describe the cell's physical size: a zoomed crop no longer shows them.
SIZE_ATTRIBUTES = ("leukemiaattri_cell_size", "wbcatt_cell_size")


def default_type_vocabulary() -> tuple[str, ...]:
    """Fine WBC types (the members of the coarse type ``wbc``) then the non-WBC objects."""
    return tuple(taxonomy().members("wbc")) + NON_WBC_TYPES


def default_heads(schemas: Sequence[str] = SCHEMAS) -> dict[str, list[str]]:
    """``{head name: values}``: the type head first, then every attribute of ``schemas``."""
    heads = {TYPE_HEAD: list(default_type_vocabulary())}
    for schema in schemas:
        for spec in schema_attributes(schema):
            heads[spec.qualified] = list(spec.values)
    return heads


def attribute_heads(heads: Mapping[str, Sequence[str]]) -> list[str]:
    """The attribute head names of a head table (every head but the type head), in order."""
    return [name for name in heads if name != TYPE_HEAD]


def type_label_mask(label: str, vocabulary: Sequence[str]) -> np.ndarray:
    """Boolean mask over ``vocabulary`` of the types a label allows (all False for unknown).

    A fine type allows itself; a coarse type allows its members that the head knows.
    ``ValueError`` when the label is no type or none of its members is in the head.
    """
    mask = np.zeros(len(vocabulary), dtype=bool)
    if label == UNKNOWN:
        return mask
    tax = taxonomy()
    if label not in tax.types:
        raise ValueError(f"cell type {label!r} is not a unified type")
    index = {t: i for i, t in enumerate(vocabulary)}
    for member in tax.members(label):
        if member in index:
            mask[index[member]] = True
    if label in index:
        mask[index[label]] = True
    if not mask.any():
        raise ValueError(f"cell type {label!r} has no member in the type head ({', '.join(vocabulary)})")
    return mask


def attribute_label_index(value: str, values: Sequence[str], head: str = "attribute") -> int:
    """Index of ``value`` in ``values``; ``NO_ATTRIBUTE_LABEL`` for unknown; else ``ValueError``."""
    if value == UNKNOWN:
        return NO_ATTRIBUTE_LABEL
    try:
        return list(values).index(value)
    except ValueError:
        raise ValueError(f"{head}: value {value!r} is not one of {', '.join(values)}") from None


def encode_targets(
    cell_types: Sequence[str],
    attributes: Sequence[Mapping[str, str]],
    heads: Mapping[str, Sequence[str]],
) -> tuple[np.ndarray, np.ndarray]:
    """Targets of N cells: type masks ``(N, T)`` bool and attribute indices ``(N, A)`` int64.

    ``attributes[i]`` maps qualified attribute names to values; a head missing from it is
    unknown for that cell.
    """
    if len(cell_types) != len(attributes):
        raise ValueError(f"{len(cell_types)} cell types but {len(attributes)} attribute maps")
    vocabulary = list(heads[TYPE_HEAD])
    names = attribute_heads(heads)
    type_masks = np.zeros((len(cell_types), len(vocabulary)), dtype=bool)
    attribute_targets = np.full((len(cell_types), len(names)), NO_ATTRIBUTE_LABEL, dtype=np.int64)
    for i, (cell_type, values) in enumerate(zip(cell_types, attributes)):
        type_masks[i] = type_label_mask(cell_type, vocabulary)
        for j, name in enumerate(names):
            attribute_targets[i, j] = attribute_label_index(values.get(name, UNKNOWN), heads[name], name)
    return type_masks, attribute_targets


def type_group(cell_type: str) -> str:
    """The taxonomy group of a unified type (e.g. ``segmented_neutrophil`` -> ``neutrophil``)."""
    return taxonomy().groups.get(cell_type, cell_type)


def decide_types(type_probs: np.ndarray, vocabulary: Sequence[str]) -> np.ndarray:
    """Index of the called type per row of ``(N, T)`` probabilities: the group with the
    largest summed probability first, then its most probable member.

    Deciding the group first keeps a group whose mass is split between members (segmented
    and band neutrophils) from losing to a single-type group with less mass.
    """
    probs = np.asarray(type_probs, dtype=np.float64).reshape(-1, len(vocabulary))
    groups = [type_group(t) for t in vocabulary]
    names = list(dict.fromkeys(groups))
    membership = np.array([[g == name for name in names] for g in groups], dtype=np.float64)
    best_group = (probs @ membership).argmax(axis=1)
    within = np.where(membership[:, best_group].T > 0, probs, -1.0)
    return within.argmax(axis=1)
