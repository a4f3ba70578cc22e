"""Opening an association with a node, and saying exactly why one could not be opened.

An administrator fixes different things for each cause: a host name that does not resolve,
a PACS that is down or listening on another port, a PACS that does not know our AE title, or
a node configured with the wrong AE title for the PACS. pynetdicom reports a failed TCP
connection as an aborted association, so the causes are told apart here, and every
`PacsError` carries a `kind` that the GUI maps to its own words.
"""

from __future__ import annotations

import socket

from pynetdicom import AE, evt

from workstation.dicom.net.nodes import Node
from workstation.dicom.net.transfer import quicken

# PacsError.kind values: what went wrong, for callers that choose their words by cause
HOST_UNKNOWN = "host_unknown"  # the node's host name does not resolve
UNREACHABLE = "unreachable"  # no TCP connection: nothing listening, wrong port, firewall
CALLING_AE_REJECTED = "calling_ae_rejected"  # the node does not know our AE title
CALLED_AE_REJECTED = "called_ae_rejected"  # the node's AE title is not the one configured
BUSY = "busy"  # the node refused for now (too many associations)
REJECTED = "rejected"  # refused, with another or no reason
ABORTED = "aborted"  # the connection opened, then the node broke the request off
NOT_PERMITTED = "not_permitted"  # associated, then the node would not answer our request
LOST = "lost"  # the association was lost during an operation
MOVE_FAILED = "move_failed"  # the node could not deliver a C-MOVE to our listener
ARRIVED_ELSEWHERE = "arrived_elsewhere"  # C-MOVE delivered, but not into this store
NOT_FOUND = "not_found"  # the node has nothing for the query
INVALID = "invalid"  # our own input is wrong (a date range, a UID); nothing was sent
FAILED = "failed"  # anything else

KINDS = (
    HOST_UNKNOWN,
    UNREACHABLE,
    CALLING_AE_REJECTED,
    CALLED_AE_REJECTED,
    BUSY,
    REJECTED,
    ABORTED,
    NOT_PERMITTED,
    LOST,
    MOVE_FAILED,
    ARRIVED_ELSEWHERE,
    NOT_FOUND,
    INVALID,
    FAILED,
)
PROBE_TIMEOUT_S = 5.0


class PacsError(RuntimeError):
    """A network operation that could not be done; the message names the node and the reason,
    `kind` (one of KINDS) names the cause for callers that word it their own way."""

    def __init__(self, message: str, kind: str = FAILED) -> None:
        super().__init__(message)
        self.kind = kind if kind in KINDS else FAILED

    def __reduce__(self):  # keeps `kind` across processes (pickling)
        return (type(self), (str(self), self.kind))


def describe(node: Node) -> str:
    return f"node {node.name!r} ({node.ae_title}@{node.host}:{node.port})"


def check_host(node: Node) -> None:
    """Raise PacsError (host_unknown) when the node's host name does not resolve."""
    if node.host.startswith("-") or not node.host.strip():
        raise PacsError(f"{describe(node)} has an invalid host name {node.host!r}", INVALID)
    try:
        socket.getaddrinfo(node.host, node.port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise _host_unknown(node, error) from None


def associate(ae: AE, node: Node, **kwargs):
    """`ae.associate` to the node; an established association, or PacsError naming the cause."""
    connected: list[bool] = []
    handlers = list(kwargs.pop("evt_handlers", None) or [])
    handlers.append((evt.EVT_CONN_OPEN, lambda event: connected.append(True)))
    try:
        assoc = ae.associate(
            node.host, node.port, ae_title=node.ae_title, evt_handlers=handlers, **kwargs
        )
    except socket.gaierror as error:
        raise _host_unknown(node, error) from None
    except OSError as error:
        raise PacsError(f"{describe(node)} could not be reached: {error}", UNREACHABLE) from None
    if assoc.is_established:
        quicken(assoc)
        return assoc
    if assoc.is_rejected:
        raise rejection(node, ae.ae_title, assoc.acceptor.primitive)
    late = _unread_rejection(assoc)
    if late is not None:
        raise rejection(node, ae.ae_title, late)
    if not connected:
        raise PacsError(
            f"{describe(node)} could not be reached: {connection_failure(node)}", UNREACHABLE
        )
    raise PacsError(
        f"{describe(node)} accepted the connection but aborted the association request "
        f"(does it know our AE title {ae.ae_title!r}, and is {node.ae_title!r} its AE title? "
        "its log says which)",
        ABORTED,
    )


def rejection(node: Node, our_ae_title: str, primitive) -> PacsError:
    """The A-ASSOCIATE-RJ's result, source and diagnostic in words (PS3.8 9.3.4)."""
    where = describe(node)
    source = getattr(primitive, "result_source", None)
    diagnostic = getattr(primitive, "diagnostic", None)
    transient = getattr(primitive, "result", None) == 0x02
    if source == 0x01 and diagnostic == 0x03:
        return PacsError(
            f"{where} does not accept our AE title {our_ae_title!r} (calling AE title not "
            f"recognised): register AE title {our_ae_title!r} and this computer's address on "
            "the node, or change our AE title",
            CALLING_AE_REJECTED,
        )
    if source == 0x01 and diagnostic == 0x07:
        return PacsError(
            f"{where} does not answer to AE title {node.ae_title!r} (called AE title not "
            "recognised): check the node's AE title",
            CALLED_AE_REJECTED,
        )
    if source == 0x03 or transient:
        return PacsError(
            f"{where} refused the association for now (it is busy or at its limit of "
            "associations): try again later",
            BUSY,
        )
    reason = {
        (0x01, 0x02): "application context not supported",
        (0x02, 0x02): "protocol version not supported",
    }.get((source, diagnostic), "no reason given")
    return PacsError(
        f"{where} refused the association ({reason}; does it know our AE title {our_ae_title!r}?)",
        REJECTED,
    )


def _unread_rejection(assoc):
    """The A-ASSOCIATE-RJ of a peer that closed the connection right after sending it.

    pynetdicom may see the close before it hands the reject on, and then reports an abort;
    the reject is still waiting in its queue, with the reason."""
    queue = getattr(getattr(assoc, "dul", None), "to_user_queue", None)
    for item in list(getattr(queue, "queue", ())):
        if type(item).__name__ == "A_ASSOCIATE" and getattr(item, "result", None) in (1, 2):
            return item
    return None


def connection_failure(node: Node, timeout: float = PROBE_TIMEOUT_S) -> str:
    """Why a TCP connection to the node fails, found by trying one (pynetdicom only logs it)."""
    try:
        with socket.create_connection((node.host, node.port), timeout=timeout):
            return "the connection failed (it accepts connections now: try again)"
    except ConnectionRefusedError:
        return "connection refused (is it running, is the port right?)"
    except TimeoutError:
        return f"no answer within {timeout:.0f} s (is the host right? is a firewall in the way?)"
    except socket.gaierror as error:
        return f"host name {node.host!r} does not resolve ({error.strerror or error})"
    except OSError as error:
        return f"{error.strerror or error} (is the host right? is the network up?)"


def _host_unknown(node: Node, error: OSError) -> PacsError:
    return PacsError(
        f"{describe(node)}: host name {node.host!r} does not resolve "
        f"({error.strerror or error}); check the node's host",
        HOST_UNKNOWN,
    )
