"""The file meta we write by hand for received objects must match what pynetdicom would write."""

from __future__ import annotations

from io import BytesIO

import pytest
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.filebase import DicomBytesIO
from pydicom.filewriter import write_dataset
from pydicom.uid import (
    BasicTextSRStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
)
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.events import EVT_C_STORE, Event
from pynetdicom.presentation import build_context

from workstation.dicom.net.receive import check_request

STUDY, SERIES = "1.2.3.1", "1.2.3.2"
SOP_CLASS = BasicTextSRStorage  # not an image: the file meta is what this is about


class _Association:
    """Event only needs something to hang the event on."""


def _data_set(sop_instance: str, syntax: str) -> bytes:
    """A data set encoded as a peer sends it in `syntax` (no file meta)."""
    ds = Dataset()
    ds.SOPClassUID = SOP_CLASS
    ds.SOPInstanceUID = sop_instance
    ds.StudyInstanceUID = STUDY
    ds.SeriesInstanceUID = SERIES
    encoded = DicomBytesIO()
    encoded.is_little_endian = True
    encoded.is_implicit_VR = syntax == ImplicitVRLittleEndian
    write_dataset(encoded, ds)
    return encoded.getvalue()


SYNTAXES = [ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEGBaseline8Bit]


@pytest.mark.parametrize("syntax", SYNTAXES)
@pytest.mark.parametrize("sop_instance", ["1.2.3.45", "1.2.3.4"])  # odd and even lengths
def test_received_object_file_meta_matches_pynetdicom(syntax: str, sop_instance: str) -> None:
    data_set = _data_set(sop_instance, syntax)
    request = C_STORE()
    request.AffectedSOPClassUID = SOP_CLASS
    request.AffectedSOPInstanceUID = sop_instance
    request.DataSet = BytesIO(data_set)
    context = build_context(SOP_CLASS, syntax)
    context.context_id = 1
    event = Event(_Association(), EVT_C_STORE, {"request": request, "context": context.as_tuple})

    header, received, uids = check_request(event)  # what the listener writes to the store
    ours = header + bytes(received)

    assert uids == (STUDY, SERIES, sop_instance)
    assert ours == event.encoded_dataset(include_meta=True)
    meta = dcmread(BytesIO(ours), stop_before_pixels=True).file_meta
    assert meta.MediaStorageSOPInstanceUID == sop_instance
    assert meta.TransferSyntaxUID == syntax
    assert ours.endswith(data_set)
