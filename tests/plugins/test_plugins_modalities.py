"""An analysis declares the modalities it is made for; the host refuses a series of another
modality before any work (naming the series, its modality and what the analysis takes), runs a
series whose modality it cannot tell with a note, and lists the modalities."""

from __future__ import annotations

import importlib
from pathlib import Path

import numpy as np
import pytest

from workstation.cli import main
from workstation.core.refs import SeriesRef
from workstation.core.volume import Volume
from workstation.plugins.context import AnalysisInputs
from workstation.plugins.declarations import AnalysisSpec, DeclarationError
from workstation.plugins.manager import load_registry
from workstation.plugins.runner import Runner

CT_ONLY_PLUGIN = """
from pathlib import Path

from workstation.plugins.api import AnalysisSpec, Report, hookimpl

WORKSTATION_PLUGIN_API = "1.2"
RAN = []


@hookimpl
def workstation_analyses():
    return [
        AnalysisSpec(id="organs.ct", title="CT only", version="1.0", entry=f"{__name__}:run",
                     description="made for CT", returns=["report"], modalities=("CT",)),
        AnalysisSpec(id="organs.ct_mr", title="CT or MR", version="1.0",
                     entry=f"{__name__}:run", description="CT and MR", returns=["report"],
                     modalities=["ct", "MR"]),
    ]


def run(ctx):
    RAN.append(ctx.analysis_id)
    return Report(name="ran", text=ctx.analysis_id)
"""


@pytest.fixture
def ct_only(write_module):
    return importlib.import_module(write_module(CT_ONLY_PLUGIN))


def volume_of(modality: str) -> Volume:
    ref = SeriesRef(series_uid="2.25.7", study_uid="2.25.8", modality=modality)
    return Volume(np.zeros((3, 8, 8), np.int16), source=ref, metadata={"modality": modality})


@pytest.mark.parametrize("isolated", [False, True], ids=["in-process", "isolated"])
def test_a_series_of_another_modality_is_refused_before_the_analysis_runs(ct_only, isolated):
    inputs = AnalysisInputs(volume=volume_of("MR"), series=volume_of("MR").source)
    with Runner(load_registry([ct_only]), isolated=isolated) as runner:
        outcome = runner.run("organs.ct", inputs)
    assert outcome.outcome == "refused" and outcome.user_facing
    assert outcome.error == (
        "organs.ct is made for CT series; series 2.25.7 is MR. Choose a CT series."
    )
    assert ct_only.RAN == []


def test_a_series_of_a_declared_modality_runs(ct_only):
    with Runner(load_registry([ct_only])) as runner:
        for modality, analysis in [("CT", "organs.ct"), ("MR", "organs.ct_mr")]:
            volume = volume_of(modality)
            outcome = runner.run(analysis, AnalysisInputs(volume=volume, series=volume.source))
            assert outcome.ok, outcome.error
            assert outcome.notes == []
    assert ct_only.RAN == ["organs.ct", "organs.ct_mr"]


def test_a_series_of_unknown_modality_runs_with_a_note(ct_only):
    inputs = AnalysisInputs(volume=Volume(np.zeros((3, 8, 8))), source_path="/data/case1.nii.gz")
    with Runner(load_registry([ct_only])) as runner:
        outcome = runner.run("organs.ct", inputs)
    assert outcome.ok
    assert outcome.notes == [
        "the modality of /data/case1.nii.gz is not known; organs.ct is made for CT series"
    ]


def test_modalities_are_dicom_codes_in_upper_case():
    spec = AnalysisSpec(id="a.b", title="t", version="1", entry="m:f", modalities=["ct", "Mr"])
    assert spec.modalities == ("CT", "MR")
    assert spec.to_dict()["modalities"] == ["CT", "MR"]
    assert spec.takes_modality("mr") and spec.takes_modality("") and not spec.takes_modality("PT")
    with pytest.raises(DeclarationError, match="not DICOM modality codes"):
        AnalysisSpec(id="a.b", title="t", version="1", entry="m:f", modalities=["computed tomo"])


@pytest.fixture
def installed(fake_distribution):
    fake_distribution(
        "workstation-ct-only", "1.0", {"ws_ct_only": CT_ONLY_PLUGIN}, {"ctonly": "ws_ct_only"}
    )


def test_workstation_run_refuses_an_mr_series_for_a_ct_analysis(installed, tmp_path, capsys):
    from workstation.testing.phantoms import write_volume_series

    folder = tmp_path / "mr"
    write_volume_series(
        folder, np.full((3, 16, 16), 300, np.int16), spacing=(1, 1, 3), modality="MR"
    )
    code = main(
        [
            "--store",
            str(tmp_path / "s"),
            "run",
            "organs.ct",
            "--input",
            str(folder),
            "--out",
            str(tmp_path / "o"),
        ]
    )
    assert code == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    line = next(line for line in err.splitlines() if line.startswith("workstation: error:"))
    assert line.startswith("workstation: error: organs.ct refused: organs.ct is made for CT")
    assert f"({folder}) is MR" in line
    assert not Path(tmp_path / "o" / "run.json").exists()

    capsys.readouterr()
    assert main(["plugins"]) == 0
    assert "inputs: image_series (CT, MR);" in capsys.readouterr().out
