"""Real DICOM peers for the PACS tests and benchmark: Debian's Orthanc, and synthetic series.

Everything listens on 127.0.0.1 only, on free ports, with temporary storage.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid

ORTHANC_AE = "ORTHANCTEST"
# dcmtk (inside Orthanc, storescu, getscu) leaves Nagle's algorithm on unless told; with it each
# small DIMSE message waits for a delayed ACK (~40 ms per instance). Peers run at their best.
DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}


def orthanc_binary() -> str | None:
    return shutil.which("Orthanc") or shutil.which("orthanc")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Orthanc:
    """One Orthanc process with its own config, ports and storage; `stop()` or `kill()` ends it."""

    workdir: Path
    modalities: dict[str, tuple[str, int]]  # name -> (AE title, port) on 127.0.0.1
    ae_title: str = ORTHANC_AE
    http_port: int = field(default_factory=free_port)
    dicom_port: int = field(default_factory=free_port)
    process: subprocess.Popen | None = None

    def start(self) -> Orthanc:
        binary = orthanc_binary()
        assert binary, "Orthanc is not installed"
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = {
            "Name": "workstation-tests",
            "StorageDirectory": str(self.workdir / "storage"),
            "IndexDirectory": str(self.workdir / "storage"),
            "HttpPort": self.http_port,
            "DicomPort": self.dicom_port,
            "DicomAet": self.ae_title,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": False,
            "Plugins": [],
            "DicomModalities": {
                name: [ae, "127.0.0.1", port] for name, (ae, port) in self.modalities.items()
            },
            "DicomCheckModalityHost": True,
            "DicomAssociationCloseDelay": 0,
            "SaveJobs": False,
            "StorageCompression": False,
            "SyncStorageArea": False,  # like the workstation: atomic rename, no fsync per file
            "OverwriteInstances": True,
            "DicomScpTimeout": 30,
        }
        path = self.workdir / "orthanc.json"
        path.write_text(json.dumps(config, indent=2))
        log = open(self.workdir / "orthanc.log", "wb")  # noqa: SIM115 - lives with the process
        self.process = subprocess.Popen(
            [binary, str(path)],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=self.workdir,
            env=DCMTK_ENV,
        )
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"Orthanc exited: see {self.workdir / 'orthanc.log'}")
            try:
                self.rest("/system")
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"Orthanc did not start in 20 s: see {self.workdir / 'orthanc.log'}")

    def rest(self, path: str, data: bytes | None = None, method: str | None = None):
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.http_port}{path}", data=data, method=method
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            body = response.read()
        return json.loads(body) if body[:1] in (b"{", b"[") else body

    def upload(self, paths: list[Path]) -> None:
        for p in paths:
            self.rest("/instances", data=Path(p).read_bytes(), method="POST")

    def clear(self) -> None:
        for patient in self.rest("/patients"):
            self.rest(f"/patients/{patient}", method="DELETE")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None

    def kill(self) -> None:
        """SIGKILL: the peer dies without closing anything, as a crashed PACS would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


IDENTITY = {
    "PatientName": "Doe^Jane^Quinn",
    "PatientID": "MRN-4471923",
    "PatientBirthDate": "19610417",
    "PatientSex": "F",
    "PatientAge": "062Y",
    "PatientWeight": "71.5",
    "PatientAddress": "12 Harbour Lane, Kingsport",
    "OtherPatientIDs": "ALT-99812",
    "AccessionNumber": "ACC20240315X",
    "StudyID": "ST7781",
    "StudyDate": "20240315",
    "StudyTime": "101500",
    "StudyDescription": "CT THORAX FOR JANE DOE",
    "SeriesDescription": "AXIAL LUNG KINGSPORT",
    "InstitutionName": "Kingsport General Hospital",
    "InstitutionAddress": "1 Hospital Road, Kingsport",
    "ReferringPhysicianName": "Hartley^Gregory",
    "OperatorsName": "Ramirez^Lucia",
    "PerformingPhysicianName": "Okafor^Chidi",
    "StationName": "KGH-CT-02",
    "DeviceSerialNumber": "SN-55-8812",
    "ImageComments": "patient Jane Doe moved during scan",
    "ProtocolName": "KGH THORAX ROUTINE",
}


def write_ct_series(
    folder: Path,
    count: int,
    size: int = 32,
    study_uid: str | None = None,
    series_uid: str | None = None,
    identity: dict[str, str] | None = None,
    series_number: int = 1,
) -> list[Path]:
    """A small axial CT series with identifying values everywhere a real one has them."""
    folder.mkdir(parents=True, exist_ok=True)
    study_uid = study_uid or generate_uid()
    series_uid = series_uid or generate_uid()
    frame_uid = generate_uid()
    values = {**IDENTITY, **(identity or {})}
    rng = np.random.default_rng(series_number)
    paths = []
    for index in range(count):
        sop_uid = generate_uid()
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = CTImageStorage
        meta.MediaStorageSOPInstanceUID = sop_uid
        meta.TransferSyntaxUID = ExplicitVRLittleEndian
        ds = Dataset()
        ds.file_meta = meta
        ds.SOPClassUID = CTImageStorage
        ds.SOPInstanceUID = sop_uid
        ds.StudyInstanceUID = study_uid
        ds.SeriesInstanceUID = series_uid
        ds.FrameOfReferenceUID = frame_uid
        ds.Modality = "CT"
        ds.SeriesNumber = series_number
        ds.InstanceNumber = index + 1
        for keyword, value in values.items():
            setattr(ds, keyword, value)
        ds.ImagePositionPatient = [-100.0, -100.0, float(index) * 2.5]
        ds.ImageOrientationPatient = [1, 0, 0, 0, 1, 0]
        ds.PixelSpacing = [0.8, 0.8]
        ds.SliceThickness = 2.5
        ds.Rows = ds.Columns = size
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated = ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 1
        ds.RescaleSlope = 1
        ds.RescaleIntercept = -1024
        ds.BurnedInAnnotation = "NO"
        pixels = rng.integers(0, 2000, (size, size), dtype=np.int16)
        ds.PixelData = pixels.tobytes()
        block = ds.private_block(0x0009, "KGH SITE DATA", create=True)
        block.add_new(0x01, "LO", "Jane Doe private note")
        path = folder / f"ct{series_number:02d}_{index:04d}.dcm"
        ds.save_as(path, enforce_file_format=True)
        paths.append(path)
    return paths


def identifying_values(ds: Dataset) -> list[str]:
    """Every identifying value a synthetic series carries (long enough to search for in bytes):
    the identity above, the UIDs that tie it to the source, and the private note."""
    values = [str(ds.get(keyword, "")) for keyword in IDENTITY]
    values += [
        str(ds.StudyInstanceUID),
        str(ds.SeriesInstanceUID),
        str(ds.SOPInstanceUID),
        str(ds.FrameOfReferenceUID),
        "Jane Doe private note",
        "Doe^Jane",
        "Kingsport",
    ]
    return [v for v in values if len(v) >= 4]
