"""The differential count: percentages over white cells only, and the flags."""

import pytest

from smearscope.tools.differential import differential_count


def test_counts_and_percentages_exclude_non_white_cells():
    types = ["segmented_neutrophil"] * 6 + ["lymphocyte"] * 3 + ["myeloblast"] + ["artifact", "smudge_cell"]
    diff = differential_count(types, [False] * len(types))
    assert diff.total_wbc == 10
    assert diff.counts == {"segmented_neutrophil": 6, "lymphocyte": 3, "myeloblast": 1}
    assert diff.group_counts["neutrophil"] == 6
    assert diff.percent(diff.counts["lymphocyte"]) == pytest.approx(30.0)
    assert diff.non_wbc_counts == {"artifact": 1, "smudge_cell": 1}
    assert diff.blast_percent == pytest.approx(10.0)


def test_flags_follow_the_counts():
    types = ["lymphoblast"] * 30 + ["lymphocyte"] * 70 + ["abnormal_promyelocyte"]
    review = [True] * 20 + [False] * 81
    diff = differential_count(types, review, out_of_focus=True, scale_uncertain=True)
    text = " | ".join(diff.flags)
    assert diff.blast_count == 31
    assert "Blasts present: 31" in text
    assert "at or above 20%" in text
    assert "Abnormal promyelocytes present" in text
    assert "Fewer than 100" not in text
    assert "Many cells flagged for review: 20 of 101" in text
    assert "out of focus" in text and "Scale uncertain" in text


def test_small_normal_count_is_flagged_as_imprecise_only():
    diff = differential_count(["lymphocyte", "monocyte"], [False, False])
    assert diff.flags == ["Fewer than 100 WBCs counted (2): percentages are imprecise"]


def test_mismatched_lengths_raise():
    with pytest.raises(ValueError, match="review has 1"):
        differential_count(["lymphocyte", "monocyte"], [False])


def test_nucleated_red_cells_are_reported_per_100_white_cells():
    types = ["lymphocyte"] * 150 + ["segmented_neutrophil"] * 50 + ["erythroblast"] * 7
    diff = differential_count(types, [False] * len(types))
    assert diff.total_wbc == 200
    assert diff.nrbc_per_100_wbc == pytest.approx(3.5)
    assert diff.as_dict()["nrbc_per_100_wbc"] == 3.5
    assert diff.flags == ["Nucleated red cells present: 7 (3.5 per 100 WBCs)"]
    assert differential_count(["lymphocyte"], [False]).nrbc_per_100_wbc == 0.0
