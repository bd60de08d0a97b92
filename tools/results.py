"""What the analysis of one capture produces: its cells with their calls, and the capture's facts."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

from smearscope.attributes.explain import CellExplanation
from smearscope.tools.differential import Differential, differential_count

# One colour (RGB) per cell-type group, for overlays, reports and GeoJSON.
GROUP_COLOURS: dict[str, tuple[int, int, int]] = {
    "neutrophil": (52, 120, 246),
    "lymphocyte": (46, 160, 67),
    "atypical_lymphocyte": (120, 190, 60),
    "monocyte": (148, 103, 189),
    "eosinophil": (240, 120, 40),
    "basophil": (90, 60, 160),
    "immature_granulocyte": (23, 190, 207),
    "blast": (220, 30, 50),
    "abnormal_promyelocyte": (255, 0, 160),
    "hematogone": (140, 86, 75),
    "wbc": (128, 128, 128),
    "erythroblast": (188, 189, 34),
    "smudge_cell": (160, 160, 160),
    "artifact": (90, 90, 90),
}
DEFAULT_COLOUR = (200, 200, 200)
# Explanation fields left out of result.json (each cell's entry keeps its established keys).
UNWRITTEN_EXPLANATION_FIELDS = ("best_supported_type",)


@dataclass
class CellResult:
    """One detected cell: its box in capture pixels, the detector's score, and its explained call."""

    box_xyxy: tuple[float, float, float, float]
    detection_score: float
    explanation: CellExplanation

    @property
    def colour(self) -> tuple[int, int, int]:
        """The display colour of this cell's group."""
        return GROUP_COLOURS.get(self.explanation.group, DEFAULT_COLOUR)

    def as_dict(self) -> dict:
        """Plain data for JSON outputs: box and score, then the explanation's fields."""
        explanation = asdict(self.explanation)
        for name in UNWRITTEN_EXPLANATION_FIELDS:
            del explanation[name]
        return {"box_xyxy": self.box_xyxy, "detection_score": self.detection_score, **explanation}


@dataclass
class CaptureResult:
    """Everything smearscope found in one capture."""

    capture: str
    width: int
    height: int
    um_per_px: float
    scale_source: str
    scale_confidence: float
    focus: float | None  # None when the capture has no cells to measure
    out_of_focus: bool
    cells: list[CellResult]
    seconds: float = 0.0

    @property
    def scale_uncertain(self) -> bool:
        """True when the scale was estimated with low confidence."""
        return self.scale_source not in ("given", "preset") and self.scale_confidence < 0.5

    def differential(self) -> Differential:
        """The differential count of this capture's cells."""
        return differential_count(
            [c.explanation.cell_type for c in self.cells],
            [c.explanation.review for c in self.cells],
            out_of_focus=self.out_of_focus,
            scale_uncertain=self.scale_uncertain,
        )

    def as_dict(self) -> dict:
        """Plain data for JSON outputs."""
        data = {f.name: getattr(self, f.name) for f in fields(self)}
        data["cells"] = [c.as_dict() for c in self.cells]
        data["differential"] = self.differential().as_dict()
        return data
