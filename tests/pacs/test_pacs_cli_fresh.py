"""The PACS and export commands as a user runs them: `python -m workstation.cli` in a fresh
process (no module imported beforehand by a test), with relative store paths, against a real
Orthanc and dcmtk."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydicom import dcmread

pytestmark = pytest.mark.network
OUR_AE = "WSTEST"
ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    environment = {**os.environ, **(env or {})}
    environment["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(ROOT), environment.get("PYTHONPATH", "")) if p
    )
    return subprocess.run(
        [sys.executable, "-m", "workstation.cli", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_export_dicom_module_imports_on_its_own():
    result = subprocess.run(
        [sys.executable, "-c", "import workstation.dicom.export_dicom"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_export_and_send_from_a_fresh_process(tmp_path, orthanc_factory, ct_series):
    server = orthanc_factory({"workstation": (OUR_AE, 104)})
    source = ct_series(tmp_path / "src", 3)
    series_uid = str(dcmread(source[0]).SeriesInstanceUID)
    store = ["--store", "store"]  # relative to cwd=tmp_path
    assert _cli(*store, "index", "src", cwd=tmp_path).returncode == 0

    plain = _cli(*store, "export", series_uid, "out/plain", "--format", "dicom", cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr
    assert "wrote 3 DICOM file(s)" in plain.stdout
    assert sorted(p.name for p in (tmp_path / "out/plain").iterdir()) == [
        "IMG0001.dcm",
        "IMG0002.dcm",
        "IMG0003.dcm",
    ]
    anonymous = _cli(
        *store, "export", series_uid, "out/anon", "--format", "dicom", "--deidentify", cwd=tmp_path
    )
    assert anonymous.returncode == 0, anonymous.stderr
    assert dcmread(tmp_path / "out/anon/IMG0001.dcm").PatientIdentityRemoved == "YES"

    port = str(server.dicom_port)
    added = _cli(
        *store, "pacs", "add-node", "research", server.ae_title, "127.0.0.1", port, cwd=tmp_path
    )
    assert added.returncode == 0, added.stderr
    sent = _cli(
        *store, "pacs", "send", "research", series_uid, "--deidentify", "--ae-title", OUR_AE,
        cwd=tmp_path,
    )  # fmt: skip
    assert sent.returncode == 0, sent.stderr
    assert "sent 3 file(s) to research (de-identified)" in sent.stdout
    assert len(server.rest("/instances")) == 3


def test_get_with_a_relative_store_through_dcmtk(tmp_path, pacs):
    from workstation.dicom.net import dcmtk_get

    if not dcmtk_get.available():
        pytest.skip("dcmtk's getscu and findscu are not installed (apt-get install dcmtk)")
    node = ("pacs", pacs.orthanc.ae_title, "127.0.0.1", str(pacs.orthanc.dicom_port))
    study = ["--study", pacs.study_uid, "--ae-title", OUR_AE, "--backend", "dcmtk"]

    assert _cli("--store", "store9", "pacs", "add-node", *node, cwd=tmp_path).returncode == 0
    got = _cli("--store", "store9", "pacs", "get", "pacs", *study, cwd=tmp_path)
    assert got.returncode == 0, got.stderr
    assert "10 of 10 instances received and indexed" in got.stdout
    assert len(list((tmp_path / "store9").rglob("*.dcm"))) == 10

    # the default store, from a relative WORKSTATION_HOME
    home = {"WORKSTATION_HOME": "home10"}
    assert _cli("pacs", "add-node", *node, cwd=tmp_path, env=home).returncode == 0
    got = _cli("pacs", "get", "pacs", *study, cwd=tmp_path, env=home)
    assert got.returncode == 0, got.stderr
    assert "10 of 10 instances received and indexed" in got.stdout


def test_retrieve_api_with_a_relative_store_through_dcmtk(tmp_path, pacs, monkeypatch):
    from workstation.dicom.net import NodeStore, dcmtk_get, retrieve

    if not dcmtk_get.available():
        pytest.skip("dcmtk's getscu and findscu are not installed (apt-get install dcmtk)")
    monkeypatch.chdir(tmp_path)
    nodes = NodeStore(Path("relstore"))
    node = nodes.add("pacs", pacs.orthanc.ae_title, "127.0.0.1", pacs.orthanc.dicom_port)
    nodes.close()
    report = retrieve(
        Path("relstore"), node, pacs.study_uid, pacs.series_uids[1], ae_title=OUR_AE,
        backend="dcmtk",
    )  # fmt: skip
    assert report.complete, report.to_dict()
    assert len(report.received) == 4
    assert all(p.is_absolute() and p.is_file() for p in report.paths)
