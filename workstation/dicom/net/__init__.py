"""DICOM networking: registered nodes, the listener (SCP), query/retrieve/send (SCU) and
de-identification for anything that leaves the machine."""

from workstation.dicom.net.deidentify import DeidentificationError, Deidentifier
from workstation.dicom.net.listener import DEFAULT_AE_TITLE, DEFAULT_PORT, Listener
from workstation.dicom.net.nodes import Node, NodeError, NodeStore, audit_log
from workstation.dicom.net.receive import ReceivedInstance
from workstation.dicom.net.scu import (
    PacsError,
    RetrieveReport,
    SendReport,
    choose_backend,
    echo,
    find,
    retrieve,
    send_files,
)
from workstation.dicom.net.send import send_series

__all__ = [
    "DEFAULT_AE_TITLE",
    "DEFAULT_PORT",
    "DeidentificationError",
    "Deidentifier",
    "Listener",
    "Node",
    "NodeError",
    "NodeStore",
    "PacsError",
    "ReceivedInstance",
    "RetrieveReport",
    "SendReport",
    "audit_log",
    "choose_backend",
    "echo",
    "find",
    "retrieve",
    "send_files",
    "send_series",
]
