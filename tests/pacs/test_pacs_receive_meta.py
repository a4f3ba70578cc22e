"""The file meta we write by hand for received objects must match what pynetdicom would write."""

from __future__ import annotations

from io import BytesIO

import pytest
from pydicom import dcmread
from pydicom.uid import (
    CTImageStorage,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEGBaseline8Bit,
)
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.events import EVT_C_STORE, Event
from pynetdicom.presentation import build_context

from workstation.dicom.net.receive import encoded_with_meta

# (0008,0018) SOP Instance UID, explicit VR little endian, as a peer would send it
_DATA_SET = b"\x08\x00\x18\x00UI\x08\x001.2.3.45"


class _Association:
    """Event only needs something to hang the event on."""


SYNTAXES = [ExplicitVRLittleEndian, ImplicitVRLittleEndian, JPEGBaseline8Bit]


@pytest.mark.parametrize("syntax", SYNTAXES)
@pytest.mark.parametrize("sop_instance", ["1.2.3.45", "1.2.3.4"])  # odd and even lengths
def test_received_object_file_meta_matches_pynetdicom(syntax: str, sop_instance: str) -> None:
    request = C_STORE()
    request.AffectedSOPClassUID = CTImageStorage
    request.AffectedSOPInstanceUID = sop_instance
    request.DataSet = BytesIO(_DATA_SET)
    context = build_context(CTImageStorage, syntax)
    context.context_id = 1
    event = Event(_Association(), EVT_C_STORE, {"request": request, "context": context.as_tuple})

    ours = encoded_with_meta(event)

    assert ours == event.encoded_dataset(include_meta=True)
    meta = dcmread(BytesIO(ours), stop_before_pixels=True).file_meta
    assert meta.MediaStorageSOPInstanceUID == sop_instance
    assert meta.TransferSyntaxUID == syntax
    assert ours.endswith(_DATA_SET)
