"""Fixtures for the PACS tests: a real Orthanc on 127.0.0.1 with seeded synthetic series."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from pacs_peers import Orthanc, free_port, orthanc_binary, write_ct_series

OUR_AE = "WSTEST"
STORESCU_AE = "STORESCU"


@dataclass
class SeededPacs:
    orthanc: Orthanc
    listener_port: int  # the port Orthanc believes our listener (AE WSTEST) is on
    study_uid: str
    series_uids: list[str]  # two series in the study
    counts: dict[str, int]
    other_study_uid: str


def _require_orthanc() -> None:
    if orthanc_binary() is None:
        pytest.skip(
            "Debian's Orthanc is not installed (apt-get install orthanc dcmtk): "
            "the PACS tests need a real peer"
        )


@pytest.fixture(scope="session")
def pacs(tmp_path_factory: pytest.TempPathFactory) -> SeededPacs:
    """One Orthanc for the session, knowing our listener's AE, seeded with two patients."""
    _require_orthanc()
    work = tmp_path_factory.mktemp("orthanc")
    listener_port = free_port()
    server = Orthanc(work / "server", {"workstation": (OUR_AE, listener_port)}).start()
    data = work / "data"
    first = write_ct_series(data / "a", 6, series_number=1)
    study = _uid(first[0], "StudyInstanceUID")
    second = write_ct_series(data / "b", 4, study_uid=study, series_number=2)
    other = write_ct_series(
        data / "c",
        3,
        identity={
            "PatientName": "Roe^Richard",
            "PatientID": "MRN-5550001",
            "StudyDate": "20230101",
        },
        series_number=3,
    )
    server.upload(first + second + other)
    series = [_uid(first[0], "SeriesInstanceUID"), _uid(second[0], "SeriesInstanceUID")]
    yield SeededPacs(
        server,
        listener_port,
        study,
        series,
        {series[0]: 6, series[1]: 4},
        _uid(other[0], "StudyInstanceUID"),
    )
    server.stop()


@pytest.fixture
def orthanc_factory(tmp_path: Path):
    """Start extra Orthanc instances (for tests that kill one); all are stopped afterwards."""
    _require_orthanc()
    started: list[Orthanc] = []

    def start(modalities: dict[str, tuple[str, int]] | None = None) -> Orthanc:
        server = Orthanc(tmp_path / f"orthanc{len(started)}", modalities or {}).start()
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()


@pytest.fixture(params=["dcmtk", "pynetdicom"])
def retrieval_backend(request) -> str:
    """Each C-GET test runs through dcmtk's getscu and through pynetdicom."""
    if request.param == "dcmtk":
        from workstation.dicom.net import dcmtk_get

        if not dcmtk_get.available():
            pytest.skip("dcmtk's getscu and findscu are not installed (apt-get install dcmtk)")
    return request.param


@pytest.fixture
def ct_series():
    return write_ct_series


def _uid(path: Path, keyword: str) -> str:
    from pydicom import dcmread

    return str(getattr(dcmread(path, stop_before_pixels=True), keyword))
