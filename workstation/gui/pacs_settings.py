"""The PACS settings kept in QSettings: our AE title (to call nodes and to listen), the
listener's port, and whether the listener accepts callers that are not registered nodes."""

from __future__ import annotations

from PySide6.QtCore import QSettings


def our_ae_title(settings: QSettings) -> str:
    from workstation.dicom.net import DEFAULT_AE_TITLE

    return str(settings.value("pacs/ae_title", DEFAULT_AE_TITLE) or DEFAULT_AE_TITLE)


def listener_port(settings: QSettings) -> int:
    from workstation.dicom.net import DEFAULT_PORT

    try:
        return int(settings.value("pacs/listener_port", DEFAULT_PORT))
    except (TypeError, ValueError):
        return DEFAULT_PORT


def accept_any_ae(settings: QSettings) -> bool:
    return str(settings.value("pacs/accept_any", "false")).lower() in ("true", "1")
