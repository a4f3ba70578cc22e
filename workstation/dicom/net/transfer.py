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
