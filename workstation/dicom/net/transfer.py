"""Transfer syntaxes we offer and accept, and the presentation contexts built from them."""

from __future__ import annotations

from pydicom.uid import (
    AllTransferSyntaxes,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)

# Accept every syntax pydicom knows: we store what arrives byte for byte, and the loader decodes
# compressed pixel data itself. Uncompressed little endian first, so a peer converts only if asked.
ALL_SYNTAXES: list[str] = [ExplicitVRLittleEndian, ImplicitVRLittleEndian] + [
    str(uid)
    for uid in AllTransferSyntaxes
    if uid not in (ExplicitVRLittleEndian, ImplicitVRLittleEndian)
]

# The largest PDU we accept. Advertising "no limit" (0) makes dcmtk-based peers fall back to
# 16 KiB PDUs; a large limit lets them send big ones, which roughly doubles throughput because
# pynetdicom's cost is per PDU rather than per byte.
MAX_PDU = 4 * 1024 * 1024

# pynetdicom's network thread sleeps 1 ms whenever it finds nothing to do, including between
# receiving an object and sending our answer; a peer that waits for each answer before sending
# the next object (C-GET from Orthanc, storescu) then waits ~1 ms more per object. 0.1 ms took a
# 400-image C-GET from ~70 to ~95 instances/s for a little more CPU while an association is open.
DUL_POLL_SECONDS = 0.0001


def quicken(assoc) -> None:
    """Shorten the idle poll of an association's network thread (see DUL_POLL_SECONDS)."""
    dul = getattr(assoc, "dul", None)
    if dul is not None and hasattr(dul, "_run_loop_delay"):
        dul._run_loop_delay = DUL_POLL_SECONDS
