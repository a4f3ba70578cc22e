"""The workstation's listener: a C-ECHO / C-STORE SCP that stores and indexes what it receives.

Only registered nodes may connect (their AE titles are re-read from the store at every
association, so a node added while listening is accepted at once), unless `accept_any` is set.
The called AE title must be ours. A refused caller gets an A-ASSOCIATE-RJ with the reason
(calling or called AE title not recognised), so its administrator can tell why. Every refusal
and every rejected object is logged with the peer's AE title and address and the reason, never
with patient data. Callers are told apart by AE title only, not by address.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from pynetdicom import AE, AllStoragePresentationContexts, evt
from pynetdicom.sop_class import Verification

from workstation.dicom.net.nodes import NodeStore, validate_ae_title
from workstation.dicom.net.receive import (
    ArrivalIndexer,
    InstanceReceiver,
    ReceivedInstance,
    clean_incoming,
)
from workstation.dicom.net.transfer import ALL_SYNTAXES, MAX_PDU, quicken

LOG = logging.getLogger("workstation.pacs")

DEFAULT_AE_TITLE = "WORKSTATION"
DEFAULT_PORT = 11112


class Listener:
    """Start with `start()`, stop with `stop()` (or use it as a context manager).

    `on_received(ReceivedInstance)` is called once per object after it is stored and indexed,
    from a background thread: a GUI re-emits it as a Qt signal to refresh the study browser.
    """

    def __init__(
        self,
        store_dir: Path,
        ae_title: str = DEFAULT_AE_TITLE,
        port: int = DEFAULT_PORT,
        host: str = "0.0.0.0",
        accept_any: bool = False,
        on_received: Callable[[ReceivedInstance], None] | None = None,
    ) -> None:
        self.store_dir = Path(store_dir)
        self.ae_title = validate_ae_title(ae_title)
        self.host = host
        self.port = int(port)
        self.accept_any = accept_any
        self.refused: list[tuple[str, str]] = []  # (calling AE, reason)
        self._nodes = NodeStore(self.store_dir)
        self._indexer = ArrivalIndexer(self.store_dir, on_received)
        self.receiver = InstanceReceiver(self.store_dir, self._indexer)
        self._server = None

    # -- lifecycle -------------------------------------------------------------------------
    def start(self) -> Listener:
        removed = clean_incoming(self.store_dir)
        if removed:
            LOG.info("removed %d partial file(s) left by an interrupted transfer", removed)
        ae = AE(ae_title=self.ae_title)
        ae.maximum_pdu_size = MAX_PDU
        ae.add_supported_context(Verification, ALL_SYNTAXES)
        for context in AllStoragePresentationContexts:
            ae.add_supported_context(context.abstract_syntax, ALL_SYNTAXES)
        handlers = [
            (evt.EVT_CONN_OPEN, lambda event: quicken(event.assoc)),
            (evt.EVT_REQUESTED, self._check_association),
            (evt.EVT_C_STORE, self.receiver.handle_store),
            (evt.EVT_C_ECHO, lambda event: 0x0000),
        ]
        self._server = ae.start_server((self.host, self.port), block=False, evt_handlers=handlers)
        LOG.info("listening as %s on %s:%d", self.ae_title, self.host, self.port)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None
        self._indexer.close()
        self._nodes.close()

    def flush(self) -> None:
        """Wait until everything received so far is indexed."""
        self._indexer.flush()

    def __enter__(self) -> Listener:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- association policy ----------------------------------------------------------------
    def _check_association(self, event) -> None:
        primitive = event.assoc.requestor.primitive
        calling = str(primitive.calling_ae_title).strip()
        called = str(primitive.called_ae_title).strip()
        address = event.assoc.requestor.address
        reason, diagnostic = "", 0
        if called != self.ae_title:
            reason, diagnostic = f"called AE {called!r} is not ours ({self.ae_title!r})", 0x07
        elif not self.accept_any and calling not in self._nodes.ae_titles():
            reason, diagnostic = f"calling AE {calling!r} is not a registered node", 0x03
        if reason:
            LOG.warning("refused an association from %s: %s", address, reason)
            self.refused.append((calling, reason))
            # A-ASSOCIATE-RJ, permanent, by the service user, with the reason. kill() waits
            # until the reject has gone out and the peer closed: closing the socket at once
            # (what pynetdicom does after this handler) reaches the peer as "aborted".
            event.assoc.acse.send_reject(0x01, 0x01, diagnostic)
            event.assoc.kill()
