"""What a written object says about the analysis behind it stays whole where it matters: the
demo note and the weights survive any parameter list, descriptions end at a word."""

from __future__ import annotations

from workstation.dicom.write.provenance import DEMO_NOTE, Provenance


def test_a_long_parameter_list_is_cut_but_the_demo_note_and_weights_are_kept() -> None:
    provenance = Provenance(
        "demo.analysis",
        "1.0",
        parameters={f"option_{n:03d}": "x" * 20 for n in range(80)},
        demo_weights=True,
        weights="model.pt sha256 fe29f91343f13fa1 (demo)",
    )
    text = provenance.derivation()
    assert len(text) <= 1024
    assert text.endswith(f"; {DEMO_NOTE}; weights: model.pt sha256 fe29f91343f13fa1 (demo)")
    assert "parameters: option_000=" in text and "..." in text


def test_a_short_description_is_whole_and_a_long_one_ends_at_a_word() -> None:
    short = Provenance("threshold.segment", "0.3", title="Threshold").describe("Segmentation")
    assert short == "Segmentation by Threshold 0.3"
    title = "A very long analysis title " * 3
    text = Provenance("a.b", "2.0", title=title, demo_weights=True).describe("Segmentation")
    whole = f"{DEMO_NOTE}: Segmentation by {title} 2.0"
    kept = text.removesuffix("...")
    assert len(text) <= 64 and text.endswith("...")
    assert whole.startswith(kept) and whole[len(kept)] == " "  # cut between two words
