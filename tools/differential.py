"""The differential count of a capture (or a batch) and the flags hematologists read first."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from smearscope.datasets.schema import taxonomy

MIN_RELIABLE_WBCS = 100
REVIEW_FRACTION_FLAG = 0.10
BLAST_THRESHOLD = 0.20
# Types counted with blasts ("blasts and blast equivalents").
BLAST_EQUIVALENTS = ("abnormal_promyelocyte",)
# Nucleated red cells: outside the WBC count, reported per 100 WBCs.
NRBC_TYPE = "erythroblast"


@dataclass
class Differential:
    """Counts and percentages of white cells by type and group, with flags."""

    counts: dict[str, int]
    group_counts: dict[str, int]
    total_wbc: int
    blast_count: int
    review_count: int
    non_wbc_counts: dict[str, int] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)

    def percent(self, count: int) -> float:
        """``count`` as a percentage of all white cells counted."""
        return 100.0 * count / self.total_wbc if self.total_wbc else 0.0

    @property
    def nrbc_per_100_wbc(self) -> float:
        """Nucleated red cells per 100 white cells, as a manual differential reports them."""
        nrbc = self.non_wbc_counts.get(NRBC_TYPE, 0)
        return 100.0 * nrbc / self.total_wbc if self.total_wbc else 0.0

    @property
    def blast_percent(self) -> float:
        """Blasts and blast equivalents as a percentage of white cells."""
        return self.percent(self.blast_count)

    def as_dict(self) -> dict:
        """Plain data for JSON outputs."""
        return {
            "total_wbc": self.total_wbc,
            "counts": self.counts,
            "percent": {t: round(self.percent(n), 2) for t, n in self.counts.items()},
            "group_counts": self.group_counts,
            "group_percent": {g: round(self.percent(n), 2) for g, n in self.group_counts.items()},
            "blast_count": self.blast_count,
            "blast_percent": round(self.blast_percent, 2),
            "review_count": self.review_count,
            "non_wbc_counts": self.non_wbc_counts,
            "nrbc_per_100_wbc": round(self.nrbc_per_100_wbc, 2),
            "flags": self.flags,
        }


def differential_count(
    cell_types: list[str],
    review: list[bool],
    out_of_focus: bool = False,
    scale_uncertain: bool = False,
) -> Differential:
    """Count white cells by unified type and raise the usual flags.

    Non-white cells (smudge cells, artifacts, platelets) are counted apart and never enter
    the percentages, as in a manual differential.
    """
    if len(cell_types) != len(review):
        raise ValueError(f"cell_types has {len(cell_types)} entries but review has {len(review)}")
    tax = taxonomy()
    wbc_mask = [tax.is_wbc.get(t, False) for t in cell_types]
    wbc_types = [t for t, is_wbc in zip(cell_types, wbc_mask) if is_wbc]
    counts = dict(sorted(Counter(wbc_types).items(), key=lambda kv: (-kv[1], kv[0])))
    groups = Counter(tax.groups[t] for t in wbc_types)
    group_counts = dict(sorted(groups.items(), key=lambda kv: (-kv[1], kv[0])))
    non_wbc = Counter(t for t, is_wbc in zip(cell_types, wbc_mask) if not is_wbc)
    blast_count = groups.get("blast", 0) + sum(counts.get(t, 0) for t in BLAST_EQUIVALENTS)
    review_count = sum(1 for r, is_wbc in zip(review, wbc_mask) if r and is_wbc)
    result = Differential(
        counts=counts,
        group_counts=group_counts,
        total_wbc=len(wbc_types),
        blast_count=blast_count,
        review_count=review_count,
        non_wbc_counts=dict(sorted(non_wbc.items())),
    )
    result.flags = _flags(result, out_of_focus, scale_uncertain)
    return result


def _flags(diff: Differential, out_of_focus: bool, scale_uncertain: bool) -> list[str]:
    """The flags of a differential, most important first."""
    flags: list[str] = []
    if diff.blast_count:
        flags.append(f"Blasts present: {diff.blast_count} ({diff.blast_percent:.1f}% of WBCs); smear review advised")
        if diff.total_wbc and diff.blast_count / diff.total_wbc >= BLAST_THRESHOLD:
            flags.append(f"Blasts and equivalents at or above {BLAST_THRESHOLD:.0%} of WBCs")
    if diff.counts.get("abnormal_promyelocyte"):
        flags.append("Abnormal promyelocytes present: exclude acute promyelocytic leukaemia")
    if diff.counts.get("atypical_lymphocyte"):
        flags.append("Atypical lymphocytes present")
    if diff.total_wbc < MIN_RELIABLE_WBCS:
        flags.append(f"Fewer than {MIN_RELIABLE_WBCS} WBCs counted ({diff.total_wbc}): percentages are imprecise")
    if diff.total_wbc and diff.review_count / diff.total_wbc > REVIEW_FRACTION_FLAG:
        flags.append(f"Many cells flagged for review: {diff.review_count} of {diff.total_wbc}")
    nrbc = diff.non_wbc_counts.get(NRBC_TYPE, 0)
    if nrbc:
        per_100 = f"{diff.nrbc_per_100_wbc:.1f} per 100 WBCs" if diff.total_wbc else "no WBCs counted"
        flags.append(f"Nucleated red cells present: {nrbc} ({per_100})")
    if diff.non_wbc_counts.get("smudge_cell"):
        flags.append(f"Smudge cells present: {diff.non_wbc_counts['smudge_cell']}")
    if out_of_focus:
        flags.append("Capture out of focus: morphology may be unreliable")
    if scale_uncertain:
        flags.append("Scale uncertain: cell sizes may be misjudged; give --um-per-px or --magnification")
    return flags
