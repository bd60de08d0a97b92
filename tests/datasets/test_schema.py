"""Taxonomy, attribute schemas and morphology profiles load and agree with each other."""

import pytest

from smearscope.datasets.schema import attribute_specs, morphology_profiles, schema_attributes, taxonomy


@pytest.mark.parametrize("source, label, expected", [
    ("pbc", "SNE", "segmented_neutrophil"),
    ("pbc", "sne", "segmented_neutrophil"),
    ("aml_lmu", "MYO", "myeloblast"),
    ("cnmc", "hem", "hematogone"),
    ("all_aria", "Pro", "lymphoblast"),
    ("cellavision", 4, "eosinophil"),
    ("leukemiaattri", "None", "artifact"),
    ("leukemiaattri", "Abnormal promyelocyte", "abnormal_promyelocyte"),
    ("raabin", "Large Lymph", "lymphocyte"),
])
def test_every_source_maps_into_the_unified_vocabulary(source, label, expected):
    assert taxonomy().unify(source, label) == expected


def test_unknown_labels_and_sources_are_named():
    with pytest.raises(ValueError, match="unknown pbc label 'XYZ'"):
        taxonomy().unify("pbc", "XYZ")
    with pytest.raises(ValueError, match="unknown source 'nowhere'"):
        taxonomy().unify("nowhere", "x")


def test_coarse_types_expand_to_wbc_members():
    tax = taxonomy()
    assert set(tax.members("blast")) == {"myeloblast", "monoblast", "promonocyte", "lymphoblast"}
    assert tax.members("lymphocyte") == ("lymphocyte",)
    assert all(tax.is_wbc[m] for m in tax.members("wbc"))
    assert "artifact" not in tax.wbc_types()


def test_schemas_have_the_documented_sizes():
    assert len(schema_attributes("leukemiaattri")) == 7
    assert len(schema_attributes("wbcatt")) == 11
    specs = attribute_specs()
    assert specs["leukemiaattri_nuclear_chromatin"].key == "nuclear_chromatio"
    assert specs["leukemiaattri_cell_size"].values != specs["wbcatt_cell_size"].values


def test_profiles_are_distributions_over_the_schema_values():
    profiles = morphology_profiles()["leukemiaattri"]
    tax = taxonomy()
    for cell_type, profile in profiles.items():
        assert cell_type in tax.types
        for name, probs in profile.items():
            assert len(probs) == len(attribute_specs()[name].values)
            assert sum(probs) == pytest.approx(1.0)
    assert profiles["lymphoblast"]["leukemiaattri_nuclear_chromatin"][0] > 0.5  # open
