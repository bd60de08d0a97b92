"""What the analysis of one capture produces: its cells with their calls, and the capture's facts."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

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


@dataclass
class CellResult:
    """One detected cell: box in capture pixels, type, attributes and the explanation."""

    box_xyxy: tuple[float, float, float, float]
    detection_score: float
    cell_type: str
    group: str
    type_probability: float
    top_types: dict[str, float]
    attributes: dict[str, str]
    attribute_probabilities: dict[str, float]
    rationale: str
    consistency: float | None  # None when no type-typical profile describes the type
    review: bool
    review_reasons: list[str] = field(default_factory=list)

    @property
    def colour(self) -> tuple[int, int, int]:
        """The display colour of this cell's group."""
        return GROUP_COLOURS.get(self.group, DEFAULT_COLOUR)


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
            [c.cell_type for c in self.cells],
            [c.review for c in self.cells],
            out_of_focus=self.out_of_focus,
            scale_uncertain=self.scale_uncertain,
        )

    def as_dict(self) -> dict:
        """Plain data for JSON outputs."""
        data = asdict(self)
        data["differential"] = self.differential().as_dict()
        return data
