"""A PACS that dies in the middle of sending an object: run as its own process by the tests.

    python dying_peer.py FOLDER PORT AE_TITLE KILL_AT [strict] [move=DESTINATION_PORT]

It serves the DICOM files in FOLDER (C-FIND at series and image level, C-GET of a study or
series, and with "move=" C-MOVE to 127.0.0.1 at DESTINATION_PORT) and, while sending the
KILL_AT-th object of a retrieval (0: never), writes the first half of the P-DATA PDU that
carries its data set and then SIGKILLs itself: the client is left with a half-sent object on
the wire and a dead peer, as when a PACS crashes mid-retrieval. Orthanc cannot be killed at a
chosen object when the client (dcmtk's getscu) runs far ahead of the test's callbacks. With
"strict" it refuses image-level queries without a series UID, as a strictly hierarchical PACS
does.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pynetdicom.transport
from pydicom import dcmread
from pydicom.dataset import Dataset
from pynetdicom import AE, StoragePresentationContexts, evt
from pynetdicom.sop_class import (
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
)

_armed = {"now": False}
_send = pynetdicom.transport.AssociationSocket.send


def _send_then_die(self, bytestream: bytes) -> None:
    # P-DATA-TF (type 4) whose first value item carries data set bytes (control bit 0 clear)
    if _armed["now"] and bytestream[:1] == b"\x04" and not bytestream[11] & 0x01:
        self.socket.sendall(bytestream[: len(bytestream) // 2])
        os.kill(os.getpid(), signal.SIGKILL)
    _send(self, bytestream)


def main() -> None:
    folder, port, ae_title, kill_at = (
        Path(sys.argv[1]),
        int(sys.argv[2]),
        sys.argv[3],
        int(sys.argv[4]),
    )
    options = sys.argv[5:]
    strict = "strict" in options
    move_to = next((int(o.removeprefix("move=")) for o in options if o.startswith("move=")), 0)
    datasets = [dcmread(p) for p in sorted(folder.glob("*.dcm"))]
    pynetdicom.transport.AssociationSocket.send = _send_then_die

    def matching(identifier: Dataset) -> list[Dataset]:
        study = identifier.get("StudyInstanceUID", "")
        series = identifier.get("SeriesInstanceUID", "")
        return [
            ds
            for ds in datasets
            if ds.StudyInstanceUID == study and (not series or ds.SeriesInstanceUID == series)
        ]

    def on_find(event):
        level = event.identifier.QueryRetrieveLevel
        keywords = ["StudyInstanceUID", "SeriesInstanceUID"]
        if level == "IMAGE":
            keywords += ["SOPInstanceUID", "SOPClassUID", "InstanceNumber"]
        elif level != "SERIES":
            yield 0xA900, None  # only what a retrieval asks for
            return
        if level == "IMAGE" and strict and not event.identifier.get("SeriesInstanceUID", ""):
            yield 0xA900, None  # identifier does not match the SOP class (no series UID)
            return
        answered = set()
        for ds in matching(event.identifier):
            answer = Dataset()
            answer.QueryRetrieveLevel = level
            for keyword in keywords:
                setattr(answer, keyword, getattr(ds, keyword))
            key = tuple(str(getattr(answer, k)) for k in keywords)
            if key not in answered:
                answered.add(key)
                yield 0xFF00, answer

    def send_matching(identifier: Dataset):
        found = matching(identifier)
        # The client lists the study alongside the retrieval; let that listing finish first, so
        # the test is about dying mid-object, not about dying before the study could be listed.
        time.sleep(0.2)
        yield len(found)
        for number, ds in enumerate(found, start=1):
            _armed["now"] = number == kill_at
            yield 0xFF00, ds

    def on_get(event):
        yield from send_matching(event.identifier)

    def on_move(event):
        yield "127.0.0.1", move_to
        yield from send_matching(event.identifier)

    ae = AE(ae_title=ae_title)
    ae.maximum_pdu_size = 16384
    ae.add_supported_context(StudyRootQueryRetrieveInformationModelFind)
    ae.add_supported_context(StudyRootQueryRetrieveInformationModelGet)
    for context in StoragePresentationContexts:
        ae.add_supported_context(context.abstract_syntax, scp_role=True, scu_role=False)
    handlers = [(evt.EVT_C_FIND, on_find), (evt.EVT_C_GET, on_get)]
    if move_to:
        ae.add_supported_context(StudyRootQueryRetrieveInformationModelMove)
        for context in StoragePresentationContexts[:120]:  # as the move's storage SCU
            ae.add_requested_context(context.abstract_syntax)
        handlers.append((evt.EVT_C_MOVE, on_move))
    print("ready", flush=True)
    ae.start_server(("127.0.0.1", port), evt_handlers=handlers)


if __name__ == "__main__":
    main()
