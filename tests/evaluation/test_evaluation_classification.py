"""`workstation evaluate` on a classification analysis: ROC AUC and confusion metrics, errors."""

from __future__ import annotations

import csv
import importlib
import json
import textwrap
import uuid
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from workstation.core.volume import Volume
from workstation.evaluation import DatasetProblem, evaluate
from workstation.plugins.manager import load_registry

# Reports P(abnormal) = the image's mean value, so each case's score is set by its image.
FAKE_CLASSIFIER = """
import numpy as np
from workstation.plugins.api import AnalysisSpec, Classification, hookimpl

WORKSTATION_PLUGIN_API = "1.0"

@hookimpl
def workstation_analyses():
    return [AnalysisSpec(id="fake.classify", title="fake", version="0.1", entry=f"{__name__}:run",
                         description="mean value as probability", returns=["classification"],
                         device="cpu")]

def run(ctx):
    p = float(ctx.volume.array.mean())
    return [Classification(name="c", labels=["normal", "abnormal"], probabilities=[1 - p, p])]
"""

# (truth, score): positives 0.8, 0.4; negatives 0.1, 0.6, 0.3.
CASES = [(0, 0.1), (0, 0.6), (0, 0.3), (1, 0.8), (1, 0.4)]


@pytest.fixture
def classifier_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    name = f"ws_eval_classifier_{uuid.uuid4().hex[:8]}"
    folder = tmp_path / "modules"
    folder.mkdir()
    (folder / f"{name}.py").write_text(textwrap.dedent(FAKE_CLASSIFIER))
    monkeypatch.syspath_prepend(str(folder))
    importlib.invalidate_caches()
    return load_registry(plugins=[importlib.import_module(name)])


def write_case(folder: Path, name: str, value: float) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    volume = Volume(np.full((3, 4, 4), value, np.float32))
    nib.save(volume.to_nifti(), str(folder / f"{name}.nii.gz"))
    return f"images/{name}.nii.gz"


def write_datalist(root: Path, entries: list[dict]) -> Path:
    path = root / "datalist.json"
    path.write_text(json.dumps({"validation": entries}))
    return path


def test_roc_auc_and_confusion_metrics_match_hand_computation(tmp_path, classifier_registry):
    root = tmp_path / "data"
    entries = [
        {"image": write_case(root / "images", f"c{i}", score), "label": truth}
        for i, (truth, score) in enumerate(CASES)
    ]
    out = tmp_path / "eval"
    summary = evaluate(
        "fake.classify", write_datalist(root, entries), out, registry=classifier_registry
    )
    assert summary.ok and summary.task == "classification"
    metrics = summary.metrics
    # Pairs (positive, negative) ranked right: 0.8 beats all 3, 0.4 beats 0.1 and 0.3 -> 5/6.
    assert metrics["roc_auc"] == pytest.approx(5 / 6)
    # Arg-max prediction [0, 1, 0, 1, 0]: TP 1, FP 1, FN 1, TN 2.
    assert metrics["accuracy"] == pytest.approx(3 / 5)
    assert metrics["recall"] == pytest.approx(1 / 2)
    assert metrics["specificity"] == pytest.approx(2 / 3)
    assert metrics["precision"] == pytest.approx(1 / 2)
    assert metrics["f1"] == pytest.approx(1 / 2)
    assert metrics["confusion_matrix"] == [[2, 1], [1, 1]]
    # summary.json says what the figures are of
    assert metrics["positive_class"] == "abnormal"
    assert "rows: true class, columns: predicted class" in metrics["confusion_matrix_layout"]
    with (out / "cases.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["predicted"] for r in rows] == ["normal", "abnormal", "normal", "abnormal", "normal"]
    assert float(rows[3]["p_abnormal"]) == pytest.approx(0.8)
    assert (out / "roc.png").stat().st_size > 0
    written = json.loads((out / "summary.json").read_text())
    assert written["metrics"]["roc_auc"] == pytest.approx(5 / 6)


def test_unreadable_image_and_bad_label_name_the_case_and_the_rest_is_scored(
    tmp_path, classifier_registry
):
    root = tmp_path / "data"
    entries = [
        {"image": write_case(root / "images", "good0", 0.2), "label": 0},
        {"image": write_case(root / "images", "good1", 0.9), "label": 1},
        {"image": write_case(root / "images", "badclass", 0.5), "label": 7},
    ]
    (root / "images" / "broken.nii.gz").write_bytes(b"not a nifti file")
    entries.append({"image": "images/broken.nii.gz", "label": 0})
    summary = evaluate(
        "fake.classify",
        write_datalist(root, entries),
        tmp_path / "eval",
        registry=classifier_registry,
    )
    failed = dict(summary.failed)
    assert set(failed) == {"badclass", "broken"}
    assert "case 3 (badclass)" in failed["badclass"]
    assert "label 7 is not a class index" in failed["badclass"]
    assert "broken.nii.gz" in failed["broken"] and "cannot be read" in failed["broken"]
    assert [r["status"] for r in summary.rows] == ["scored", "scored", "failed", "failed"]
    assert summary.metrics["accuracy"] == pytest.approx(1.0)


def test_missing_images_are_all_named_before_any_case_runs(tmp_path, classifier_registry):
    root = tmp_path / "data"
    entries = [
        {"image": write_case(root / "images", "good0", 0.2), "label": 0},
        {"image": "images/missing.nii.gz", "label": 1},
        {"image": "images/gone.nii.gz", "label": 0},
    ]
    with pytest.raises(DatasetProblem) as raised:
        evaluate(
            "fake.classify",
            write_datalist(root, entries),
            tmp_path / "eval",
            registry=classifier_registry,
        )
    message = str(raised.value)
    assert "2 file(s) of the data set are missing; nothing was run" in message
    assert f"case 2 (missing): image {root / 'images' / 'missing.nii.gz'}: no such file" in message
    assert f"case 3 (gone): image {root / 'images' / 'gone.nii.gz'}: no such file" in message
    assert not (tmp_path / "eval").exists()


def test_unusable_datalists_are_refused_naming_the_file(tmp_path, classifier_registry):
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    with pytest.raises(DatasetProblem, match=r"broken\.json: not a readable JSON datalist"):
        evaluate("fake.classify", broken, tmp_path / "out", registry=classifier_registry)
    no_list = tmp_path / "nolist.json"
    no_list.write_text(json.dumps({"training": []}))
    with pytest.raises(DatasetProblem, match=r"nolist\.json: no case list"):
        evaluate("fake.classify", no_list, tmp_path / "out", registry=classifier_registry)
    no_label = tmp_path / "nolabel.json"
    no_label.write_text(json.dumps({"testing": [{"image": "a.nii.gz"}]}))
    with pytest.raises(DatasetProblem, match=r"testing\[0\]: each case needs 'image' and 'label'"):
        evaluate("fake.classify", no_label, tmp_path / "out", registry=classifier_registry)
    with pytest.raises(DatasetProblem, match="needs images/ and labels/"):
        evaluate("fake.classify", tmp_path, tmp_path / "out", registry=classifier_registry)


def test_segmentation_with_a_class_label_names_the_case(tmp_path):
    root = tmp_path / "data"
    entries = [{"image": write_case(root / "images", "only", 400.0), "label": 1}]
    summary = evaluate("threshold.segment", write_datalist(root, entries), tmp_path / "eval")
    assert summary.failed == [
        ("only", "case 1 (only): label is the class 1; segmentation needs a label-map file")
    ]
