"""Talking to a remote node as a client: C-ECHO, C-FIND, C-GET, C-MOVE and C-STORE.

Retrievals first ask the node (C-FIND, image level) which instances the study or series holds,
so when a transfer stops early the report names exactly the instances that did not arrive.
Whatever did arrive is complete, stored and indexed before the call returns.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian
from pynetdicom import AE, StoragePresentationContexts, build_role, evt
from pynetdicom.sop_class import (
    PatientRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)

from workstation.dicom.net import association as kinds
from workstation.dicom.net import query_keys
from workstation.dicom.net.association import PacsError, check_host, describe
from workstation.dicom.net.association import associate as _associate
from workstation.dicom.net.listener import DEFAULT_AE_TITLE, DEFAULT_PORT, Listener
from workstation.dicom.net.nodes import Node, validate_ae_title
from workstation.dicom.net.receive import (
    ArrivalIndexer,
    InstanceReceiver,
    ReceivedInstance,
    is_valid_uid,
)
from workstation.dicom.net.transfer import ALL_SYNTAXES, MAX_PDU

if TYPE_CHECKING:  # pragma: no cover - types only
    from workstation.dicom.net.dcmtk_move import MoveOutcome

LOG = logging.getLogger("workstation.pacs")

LEVELS = ("patient", "study", "series", "image")
RETURN_KEYS: dict[str, tuple[str, ...]] = {
    "patient": (
        "PatientID",
        "PatientName",
        "PatientBirthDate",
        "PatientSex",
        "NumberOfPatientRelatedStudies",
    ),
    "study": (
        "StudyInstanceUID",
        "PatientID",
        "PatientName",
        "StudyDate",
        "StudyTime",
        "StudyDescription",
        "AccessionNumber",
        "ModalitiesInStudy",
        "NumberOfStudyRelatedSeries",
        "NumberOfStudyRelatedInstances",
    ),
    "series": (
        "StudyInstanceUID",
        "SeriesInstanceUID",
        "Modality",
        "SeriesNumber",
        "SeriesDescription",
        "NumberOfSeriesRelatedInstances",
    ),
    "image": (
        "StudyInstanceUID",
        "SeriesInstanceUID",
        "SOPInstanceUID",
        "SOPClassUID",
        "InstanceNumber",
    ),
}

Progress = Callable[[int, int, str], None]  # (done, expected, SOP Instance UID)


@dataclass
class RetrieveReport:
    """What a C-GET or C-MOVE brought in, and exactly what it did not."""

    node: str
    method: str  # "C-GET" or "C-MOVE"
    expected: list[str] = field(default_factory=list)  # SOP Instance UIDs the node listed
    received: list[str] = field(default_factory=list)
    failed_on_peer: list[str] = field(default_factory=list)  # the node's Failed SOP Instance UIDs
    rejected: list[str] = field(default_factory=list)  # reasons we refused an object
    paths: list[Path] = field(default_factory=list)
    problem: str = ""  # association aborted, refused, final failure status ...
    problem_kind: str = ""  # a PacsError kind for `problem` (lost, move_failed, ...)
    seconds: float = 0.0
    bytes: int = 0
    final_status: int | None = None  # the node's last C-GET / C-MOVE status
    completed_on_peer: int | None = None  # the node's count of completed sub-operations

    @property
    def missing(self) -> list[str]:
        got = set(self.received)
        return [uid for uid in self.expected if uid not in got]

    @property
    def complete(self) -> bool:
        return not self.missing and not self.problem

    def to_dict(self) -> dict:
        return {
            "node": self.node,
            "method": self.method,
            "expected": len(self.expected),
            "received": len(self.received),
            "missing": self.missing,
            "failed_on_peer": self.failed_on_peer,
            "rejected": self.rejected,
            "problem": self.problem,
            "problem_kind": self.problem_kind,
            "seconds": round(self.seconds, 3),
            "bytes": self.bytes,
        }


# -- association helpers ------------------------------------------------------------------------
def _client(ae_title: str) -> AE:
    ae = AE(ae_title=validate_ae_title(ae_title))
    ae.connection_timeout = 10
    ae.acse_timeout = 30
    ae.dimse_timeout = 120
    ae.network_timeout = 120
    ae.maximum_pdu_size = MAX_PDU
    return ae


def _status_code(status: Dataset | None) -> int | None:
    if status is None or "Status" not in status:
        return None
    return int(status.Status)


def _is_pending(code: int | None) -> bool:
    return code in (0xFF00, 0xFF01)


# -- C-ECHO -------------------------------------------------------------------------------------
def echo(node: Node, ae_title: str = DEFAULT_AE_TITLE) -> float:
    """C-ECHO the node; returns the round trip in seconds or raises PacsError."""
    ae = _client(ae_title)
    ae.add_requested_context(Verification)
    started = time.perf_counter()
    assoc = _associate(ae, node)
    try:
        status = assoc.send_c_echo()
    finally:
        assoc.release()
    code = _status_code(status)
    if code != 0x0000:
        raise PacsError(f"node {node.name!r} answered C-ECHO with status {code!r}")
    return time.perf_counter() - started


# -- C-FIND -------------------------------------------------------------------------------------
def find(
    node: Node,
    level: str = "study",
    *,
    patient_id: str | None = None,
    patient_name: str | None = None,
    study_date: str | None = None,
    modality: str | None = None,
    study_uid: str | None = None,
    series_uid: str | None = None,
    ae_title: str = DEFAULT_AE_TITLE,
) -> list[dict[str, str]]:
    """C-FIND at a level; matches are returned as {keyword: text} dictionaries.

    A series (or image) query without a study UID first finds the matching studies, so
    "all CT series of this patient" works against a strictly hierarchical PACS. A patient
    query with study keys (date, modality, study UID) is asked at study level and answered as
    the distinct patients of the matching studies ("patients with an MR last week"); their
    NumberOfPatientRelatedStudies then counts the matching studies. Malformed keys raise
    PacsError (kind "invalid") before anything is sent.
    """
    if level not in LEVELS:
        raise PacsError(
            f"unknown query level {level!r}; use one of {', '.join(LEVELS)}", kinds.INVALID
        )
    try:
        checked = query_keys.checked_search_keys(
            {
                "patient_id": patient_id,
                "patient_name": patient_name,
                "study_date": study_date,
                "modality": modality,
            }
        )
    except query_keys.SearchKeyError as error:
        raise PacsError(f"{error.words} {error}", kinds.INVALID) from None
    patient_id, patient_name = checked["patient_id"], checked["patient_name"]
    study_date, modality = checked["study_date"], checked["modality"]
    filters = {
        "PatientID": patient_id,
        "PatientName": patient_name,
        "StudyDate": study_date,
        "StudyInstanceUID": study_uid,
        "SeriesInstanceUID": series_uid,
    }
    ae = _client(ae_title)
    ae.add_requested_context(PatientRootQueryRetrieveInformationModelFind)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    assoc = _associate(ae, node)
    try:
        if level in ("series", "image") and not study_uid:
            studies = _find(assoc, node, "study", {**filters, "ModalitiesInStudy": modality})
            study_uids = [row["StudyInstanceUID"] for row in studies]
        else:
            study_uids = [study_uid] if study_uid else [None]
        if level == "patient" and (study_date or modality or study_uid):
            query = {**filters, "ModalitiesInStudy": modality}
            return _patients_of(_find(assoc, node, "study", query, PATIENT_OF_STUDY_KEYS))
        if level in ("patient", "study"):
            extra = {"ModalitiesInStudy": modality} if level == "study" else {}
            return _find(assoc, node, level, {**filters, **extra})
        rows: list[dict[str, str]] = []
        for uid in study_uids:
            query = {**filters, "StudyInstanceUID": uid}
            if level == "series":
                query["Modality"] = modality
                rows.extend(_find(assoc, node, "series", query))
            else:
                series_rows = (
                    [series_uid]
                    if series_uid
                    else [
                        r["SeriesInstanceUID"]
                        for r in _find(assoc, node, "series", {**query, "Modality": modality})
                    ]
                )
                for series in series_rows:
                    rows.extend(_find(assoc, node, "image", {**query, "SeriesInstanceUID": series}))
        return rows
    finally:
        if assoc.is_established:
            assoc.release()


# a study-level query that answers a patient-level question (see find)
PATIENT_OF_STUDY_KEYS = (
    "PatientID",
    "PatientName",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyDate",
    "ModalitiesInStudy",
)


def _patients_of(studies: list[dict[str, str]]) -> list[dict[str, str]]:
    """Distinct patients of study rows, each with the number of its matching studies."""
    patients: dict[tuple[str, str], dict[str, str]] = {}
    counts: dict[tuple[str, str], int] = {}
    for row in studies:
        key = (row.get("PatientID", ""), row.get("PatientName", ""))
        counts[key] = counts.get(key, 0) + 1
        patients.setdefault(key, {k: row.get(k, "") for k in RETURN_KEYS["patient"]})
    for key, row in patients.items():
        row["NumberOfPatientRelatedStudies"] = str(counts[key])
    return list(patients.values())


def _find(
    assoc,
    node: Node,
    level: str,
    filters: dict[str, str | None],
    keys: Sequence[str] | None = None,
) -> list[dict[str, str]]:
    keys = tuple(keys or RETURN_KEYS[level])
    query = Dataset()
    query.QueryRetrieveLevel = level.upper()
    for keyword in keys:
        setattr(query, keyword, "")
    for keyword, value in filters.items():
        if value and keyword in keys:
            setattr(query, keyword, value)
        elif value and keyword == "StudyInstanceUID" and level in ("series", "image"):
            query.StudyInstanceUID = value
    model = (
        PatientRootQueryRetrieveInformationModelFind
        if level == "patient"
        else StudyRootQueryRetrieveInformationModelFind
    )
    rows: list[dict[str, str]] = []
    for status, identifier in assoc.send_c_find(query, model):
        code = _status_code(status)
        if code is None:
            raise PacsError(
                f"node {node.name!r} stopped answering the {level} query (association lost: "
                f"does it allow queries from our AE title {assoc.ae.ae_title!r}?)",
                kinds.NOT_PERMITTED,
            )
        if _is_pending(code) and identifier is not None:
            rows.append({k: _text(identifier.get(k, "")) for k in keys})
        elif code not in (0x0000, 0xFF00, 0xFF01):
            raise PacsError(f"node {node.name!r} answered the {level} query with 0x{code:04X}")
    return rows


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        return "\\".join(str(v) for v in value)  # type: ignore[union-attr]
    return str(value)


# -- C-GET and C-MOVE ---------------------------------------------------------------------------
def retrieve(
    store_dir: Path,
    node: Node,
    study_uid: str,
    series_uid: str | None = None,
    *,
    move: bool = False,
    ae_title: str = DEFAULT_AE_TITLE,
    port: int = DEFAULT_PORT,
    listen_host: str = "0.0.0.0",
    progress: Progress | None = None,
    on_received: Callable[[ReceivedInstance], None] | None = None,
    backend: str | None = None,
) -> RetrieveReport:
    """Bring a study (or one series of it) into the store with C-GET, or C-MOVE to our listener.

    C-GET runs through dcmtk's compiled getscu when it is installed (`backend` "dcmtk", about
    4x faster), else through pynetdicom ("pynetdicom"); `backend` None or "auto" picks, and the
    environment variable WORKSTATION_PACS_BACKEND sets the default. Both check, store and index
    every object the same way and report the same things.

    For C-MOVE the node must know our AE title at this machine's address and `port`. The
    objects are received there by dcmtk's storescp, started for the retrieval (`backend` as for
    C-GET; see dcmtk_move; it listens on every address, `listen_host` is the listener's), or by
    an in-process pynetdicom listener; if the port is taken (a running `workstation listen`),
    that listener receives them and we check the store for them.
    """
    store_dir = Path(store_dir).absolute()  # getscu and findscu run in another folder
    chosen = choose_backend(backend)
    if move and chosen == "dcmtk" and not _storescp_available():
        chosen = "pynetdicom"
    args = (store_dir, node, study_uid, series_uid, ae_title, progress, on_received)
    if not move and chosen == "dcmtk":
        return _get_with_dcmtk(*args)
    if move and chosen == "dcmtk":
        moved = _move_with_dcmtk(*args, port)
        if moved is not None:
            return moved
        # storescp could not have the port: a running listener holds it and receives instead
    report = RetrieveReport(node.name, "C-MOVE" if move else "C-GET")
    # The indexing process starts while the node lists the instances.
    indexer = None if move else ArrivalIndexer(store_dir, on_received)
    try:
        images = find(node, "image", study_uid=study_uid, series_uid=series_uid, ae_title=ae_title)
    except BaseException:
        if indexer is not None:
            indexer.close()
        raise
    report.expected = [row["SOPInstanceUID"] for row in images]
    if not report.expected:
        if indexer is not None:
            indexer.close()
        what = f"series {series_uid}" if series_uid else f"study {study_uid}"
        raise PacsError(f"node {node.name!r} has no instances for {what}", kinds.NOT_FOUND)
    sop_classes = sorted({row["SOPClassUID"] for row in images if row["SOPClassUID"]})
    identifier = Dataset()
    identifier.QueryRetrieveLevel = "SERIES" if series_uid else "STUDY"
    identifier.StudyInstanceUID = study_uid
    if series_uid:
        identifier.SeriesInstanceUID = series_uid
    started = time.perf_counter()
    if move:
        listen = (listen_host, port)
        _move(store_dir, node, identifier, report, ae_title, listen, progress, on_received, started)
    else:
        _get(store_dir, node, identifier, sop_classes, report, ae_title, progress, indexer)
    report.seconds = time.perf_counter() - started
    report.bytes = sum(p.stat().st_size for p in report.paths if p.exists())
    if report.missing:
        LOG.warning(
            "%s from %s: %d of %d instance(s) missing",
            report.method,
            node.name,
            len(report.missing),
            len(report.expected),
        )
    return report


BACKENDS = ("auto", "dcmtk", "pynetdicom")
BACKEND_ENV = "WORKSTATION_PACS_BACKEND"


def choose_backend(backend: str | None = None) -> str:
    """ "dcmtk" or "pynetdicom" for a C-GET: as asked, else $WORKSTATION_PACS_BACKEND, else
    dcmtk when getscu and findscu are installed. Asking for dcmtk without it is an error."""
    from workstation.dicom.net import dcmtk_get

    wanted = (backend or os.environ.get(BACKEND_ENV) or "auto").strip().lower()
    if wanted not in BACKENDS:
        raise PacsError(
            f"unknown retrieval backend {wanted!r}; use one of {', '.join(BACKENDS)}",
            kinds.INVALID,
        )
    if wanted == "auto":
        return "dcmtk" if dcmtk_get.available() else "pynetdicom"
    if wanted == "dcmtk" and not dcmtk_get.available():
        raise PacsError(
            "the dcmtk retrieval backend needs dcmtk's getscu and findscu "
            "(apt-get install dcmtk), or use the pynetdicom backend"
        )
    return wanted


def _get_with_dcmtk(
    store_dir: Path,
    node: Node,
    study_uid: str,
    series_uid: str | None,
    ae_title: str,
    progress: Progress | None,
    on_received: Callable[[ReceivedInstance], None] | None,
) -> RetrieveReport:
    """C-GET through getscu (see dcmtk_get); the report says what the pynetdicom path says."""
    from workstation.dicom.net import dcmtk_get

    for what, uid in (("study", study_uid), ("series", series_uid or "1")):
        if not is_valid_uid(uid):  # it goes on getscu's command line
            raise PacsError(f"{what} UID {uid!r} is not a valid DICOM UID", kinds.INVALID)
    check_host(node)  # a name that does not resolve is said as such, not as a getscu failure
    report = RetrieveReport(node.name, "C-GET")
    started = time.perf_counter()
    result = dcmtk_get.get_study(
        store_dir, node, study_uid, series_uid, validate_ae_title(ae_title), progress, on_received
    )
    report.seconds = time.perf_counter() - started
    report.received = [item.sop_instance_uid for item in result.received]
    report.paths = [item.path for item in result.received]
    report.rejected = result.rejected
    report.bytes = result.bytes  # sizes seen by the checks: no second stat of each file
    where = describe(node)
    detail = result.errors[-1] if result.errors else f"getscu exit status {result.exit_code}"
    lost = result.exit_code != 0 or "remaining" not in result.counts
    if result.expected is None and not lost:
        # The node is there but refused the one-query listing (a strictly hierarchical PACS
        # wants a series UID at image level): list it series by series instead.
        try:
            images = find(
                node, "image", study_uid=study_uid, series_uid=series_uid, ae_title=ae_title
            )
            result.expected = [row["SOPInstanceUID"] for row in images]
        except PacsError as error:
            result.listing_problem += f"; series by series: {error}"
    if result.expected is None:
        if not result.received:
            _diagnose(node, ae_title)  # a precise PacsError when the node cannot be associated
            raise PacsError(
                f"{where} could not be retrieved from: {_plain(result, detail)}",
                _dcmtk_kind(f"{detail} {result.listing_problem}"),
            )
        # the node stopped before it had listed the study: what is missing cannot be named
        report.expected = list(report.received)
        report.problem = (
            f"{where} stopped before listing the study ({result.listing_problem}); "
            f"{len(report.received)} instance(s) received, the rest cannot be named"
        )
        report.problem_kind = kinds.LOST
        return report
    report.expected = result.expected
    if not report.expected and not report.received:
        what = f"series {series_uid}" if series_uid else f"study {study_uid}"
        raise PacsError(f"node {node.name!r} has no instances for {what}", kinds.NOT_FOUND)
    if lost:
        report.problem = f"node {node.name!r} stopped during the transfer: {detail}"
        report.problem_kind = kinds.LOST
    elif result.counts.get("remaining", 0) or (
        result.errors and not result.counts.get("completed") and report.missing
    ):
        report.problem = f"node {node.name!r} ended C-GET early: {detail}"
        report.problem_kind = kinds.LOST
    if report.missing:
        LOG.warning(
            "C-GET from %s: %d of %d instance(s) missing",
            node.name,
            len(report.missing),
            len(report.expected),
        )
    return report


def _move_with_dcmtk(
    store_dir: Path,
    node: Node,
    study_uid: str,
    series_uid: str | None,
    ae_title: str,
    progress: Progress | None,
    on_received: Callable[[ReceivedInstance], None] | None,
    port: int,
) -> RetrieveReport | None:
    """C-MOVE by dcmtk's movescu into its storescp on `port` (see dcmtk_move), the listing by
    findscu alongside; None, with nothing sent to the node, when storescp cannot listen there
    (a running listener holds the port). The report says what the pynetdicom path says."""
    from workstation.dicom.net import dcmtk_move

    for what, uid in (("study", study_uid), ("series", series_uid or "1")):
        if not is_valid_uid(uid):  # it goes on findscu's command line
            raise PacsError(f"{what} UID {uid!r} is not a valid DICOM UID", kinds.INVALID)
    check_host(node)
    ae_title = validate_ae_title(ae_title)
    report = RetrieveReport(node.name, "C-MOVE")
    started = time.perf_counter()
    try:
        result = dcmtk_move.move_into_store(
            store_dir,
            node,
            study_uid,
            series_uid,
            ae_title,
            port,
            progress,
            on_received,
        )
    except dcmtk_move.PortBusy as busy:
        LOG.info("%s; assuming a running listener receives the C-MOVE", busy)
        return None
    report.seconds = time.perf_counter() - started
    report.received = [item.sop_instance_uid for item in result.received]
    report.paths = [item.path for item in result.received]
    report.rejected = result.rejected
    report.bytes = result.bytes
    move = result.move
    if result.expected is None and move.answered:
        # the node refused the one-query listing (a strictly hierarchical PACS wants a series
        # UID at image level): list it series by series instead
        try:
            images = find(
                node, "image", study_uid=study_uid, series_uid=series_uid, ae_title=ae_title
            )
            result.expected = [row["SOPInstanceUID"] for row in images]
        except PacsError as error:
            result.listing_problem += f"; series by series: {error}"
    if (result.expected is None or not move.sent) and not report.received:
        _diagnose(node, ae_title)  # a precise PacsError when the node cannot be associated
        detail = move.errors[-1] if move.errors else "movescu could not send the request"
        raise PacsError(
            f"{describe(node)} could not be retrieved from: {_plain(result, detail)}",
            _dcmtk_kind(f"{detail} {result.listing_problem}"),
        )
    _move_answer(report, move, node)
    if result.expected is None:
        # the node stopped before it had listed the study: what is missing cannot be named
        report.expected = list(report.received)
        report.problem = report.problem or (
            f"{describe(node)} could not list the study ({result.listing_problem}); "
            f"{len(report.received)} instance(s) received, the rest cannot be named"
        )
        report.problem_kind = report.problem_kind or kinds.LOST
        _explain_move(report, ae_title, port, own_listener=True)
        return report
    report.expected = result.expected
    if not report.expected and not report.received:  # whatever the node said to the move
        what = f"series {series_uid}" if series_uid else f"study {study_uid}"
        raise PacsError(f"node {node.name!r} has no instances for {what}", kinds.NOT_FOUND)
    _explain_move(report, ae_title, port, own_listener=True)
    if report.missing:
        LOG.warning(
            "C-MOVE from %s: %d of %d instance(s) missing",
            node.name,
            len(report.missing),
            len(report.expected),
        )
    return report


def _move_answer(report: RetrieveReport, move: MoveOutcome, node: Node) -> None:
    """The node's C-MOVE answer, as movescu logged it, into the report as `_drain` puts
    pynetdicom's."""
    report.failed_on_peer = list(move.failed)
    report.completed_on_peer = move.completed
    report.final_status = move.status
    if not move.answered:
        detail = f": {move.errors[-1]}" if move.errors else " (association lost)"
        report.problem = f"node {node.name!r} stopped during the transfer{detail}"
        report.problem_kind = kinds.LOST
    elif move.status is not None and move.status not in (0x0000, 0xB000, 0xFF00, 0xFF01):
        report.problem = f"node {node.name!r} ended C-MOVE with status 0x{move.status:04X}"
        report.problem_kind = kinds.FAILED


def _diagnose(node: Node, ae_title: str) -> None:
    """Associate once (C-ECHO context) so a refusal or an unreachable node is named exactly;
    returns quietly when the node accepts us."""
    ae = _client(ae_title)
    ae.add_requested_context(Verification)
    assoc = _associate(ae, node)
    assoc.release()


def _dcmtk_kind(text: str) -> str:
    """The PacsError kind for getscu's or findscu's words."""
    lowered = text.lower()
    if "called ae title not recognized" in lowered:
        return kinds.CALLED_AE_REJECTED
    if "calling ae title not recognized" in lowered:
        return kinds.CALLING_AE_REJECTED
    if "connection refused" in lowered or "tcp initialization error" in lowered:
        return kinds.UNREACHABLE
    if "association rejected" in lowered:
        return kinds.REJECTED
    if "peer aborted association" in lowered:
        return kinds.ABORTED
    return kinds.FAILED


def _plain(result, detail: str) -> str:
    """getscu's reason, in words a user can act on."""
    text = detail
    if "Peer aborted Association" in text or "Association Rejected" in text:
        text = "it refused or aborted the association (is our AE title known there?)"
    elif "Connection refused" in text or "TCP Initialization Error" in text:
        text = f"it could not be reached ({detail})"
    if result.listing_problem and result.listing_problem not in text:
        text += f"; listing: {result.listing_problem}"
    return text


def _progress_hook(report: RetrieveReport, progress: Progress | None):
    def after_store(item: ReceivedInstance) -> None:
        report.received.append(item.sop_instance_uid)
        report.paths.append(item.path)
        if progress is not None:
            progress(len(report.received), len(report.expected), item.sop_instance_uid)

    return after_store


def _get(
    store_dir: Path,
    node: Node,
    identifier: Dataset,
    sop_classes: Sequence[str],
    report: RetrieveReport,
    ae_title: str,
    progress: Progress | None,
    indexer: ArrivalIndexer,
) -> None:
    ae = _client(ae_title)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelGet)
    classes = list(sop_classes) or [c.abstract_syntax for c in StoragePresentationContexts[:120]]
    roles = []
    for sop_class in classes[:120]:
        ae.add_requested_context(sop_class, ALL_SYNTAXES)
        roles.append(build_role(sop_class, scp_role=True))
    receiver = InstanceReceiver(store_dir, indexer)
    receiver.after_store = _progress_hook(report, progress)
    try:
        assoc = _associate(
            ae, node, ext_neg=roles, evt_handlers=[(evt.EVT_C_STORE, receiver.handle_store)]
        )
        try:
            responses = assoc.send_c_get(identifier, StudyRootQueryRetrieveInformationModelGet)
            _drain(responses, node, report)
        finally:
            if assoc.is_established:
                assoc.release()
    finally:
        indexer.close()
        report.rejected = [reason for _, reason in receiver.rejected]


def _drain(responses, node: Node, report: RetrieveReport) -> None:
    """Follow C-GET / C-MOVE responses to the end; note a lost association or a failure."""
    final = None
    for status, response in responses:
        code = _status_code(status)
        if code is None:
            report.problem = f"node {node.name!r} stopped during the transfer (association lost)"
            report.problem_kind = kinds.LOST
            return
        final = code
        if not _is_pending(code):
            _collect_failed(report, status, response)
            if "NumberOfCompletedSuboperations" in status:
                report.completed_on_peer = int(status.NumberOfCompletedSuboperations)
    report.final_status = final
    # 0xB000 (some sub-operations failed) shows in `missing`; other non-success codes are failures
    if final is not None and final not in (0x0000, 0xB000, 0xFF00, 0xFF01):
        report.problem = f"node {node.name!r} ended {report.method} with status 0x{final:04X}"
        report.problem_kind = kinds.FAILED


def _collect_failed(report: RetrieveReport, status: Dataset, response: Dataset | None) -> None:
    for source in (status, response):
        if source is not None and "FailedSOPInstanceUIDList" in source:
            value = source.FailedSOPInstanceUIDList
            report.failed_on_peer.extend(
                [str(v) for v in value] if not isinstance(value, str) else [value]
            )


def _storescp_available() -> bool:
    from workstation.dicom.net import dcmtk_move

    return dcmtk_move.available()


def _move(
    store_dir: Path,
    node: Node,
    identifier: Dataset,
    report: RetrieveReport,
    ae_title: str,
    listen: tuple[str, int],
    progress: Progress | None,
    on_received: Callable[[ReceivedInstance], None] | None,
    started: float,
) -> None:
    host, port = listen
    listener: Listener | None = Listener(
        store_dir, ae_title, port, host=host, on_received=on_received
    )
    try:
        listener.start()
        listener.receiver.after_store = _progress_hook(report, progress)
    except OSError:
        LOG.info("port %d is in use; assuming a running listener receives the C-MOVE", port)
        listener.stop()
        listener = None
    try:
        _send_move(node, identifier, report, ae_title)
    finally:
        if listener is not None:
            listener.flush()
            report.rejected = [reason for _, reason in listener.receiver.rejected]
            listener.stop()
        else:
            _received_by_running_listener(store_dir, report, started)
    _explain_move(report, ae_title, port, own_listener=listener is not None)


def _send_move(node: Node, identifier: Dataset, report: RetrieveReport, ae_title: str) -> None:
    """Send the C-MOVE request (destination: our AE title) and follow its responses to the end."""
    ae = _client(ae_title)
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelMove)
    assoc = _associate(ae, node)
    try:
        responses = assoc.send_c_move(
            identifier, ae_title, StudyRootQueryRetrieveInformationModelMove
        )
        _drain(responses, node, report)
    finally:
        if assoc.is_established:
            assoc.release()


# C-MOVE statuses that mean the node could not send to the move destination (PS3.4 C.4.2.1.5)
MOVE_DESTINATION_UNKNOWN = 0xA801
MOVE_FAILURES = {
    0xA801: "move destination unknown",
    0xA701: "out of resources (number of matches)",
    0xA702: "out of resources (sub-operations)",
    0xA900: "identifier does not match the SOP class",
}


def _explain_move(report: RetrieveReport, ae_title: str, port: int, own_listener: bool) -> None:
    """Say why a C-MOVE brought less than the node says it sent: the node cannot reach us, or
    the objects went to a listener on this port that stores somewhere else."""
    status = report.final_status
    if report.problem_kind == kinds.FAILED and status is not None:
        meaning = MOVE_FAILURES.get(status) or (
            "unable to process" if 0xC000 <= status <= 0xCFFF else "failure"
        )
        if status == MOVE_DESTINATION_UNKNOWN:
            hint = f"the node does not know our AE title {ae_title!r} as a C-MOVE destination"
        else:
            hint = "the node could not send the objects to us"
        report.problem = (
            f"{report.problem} ({meaning}): {hint}; it must know AE title {ae_title!r} at this "
            f"computer's address, port {port} (our listener port, --port)"
        )
        report.problem_kind = kinds.MOVE_FAILED
        return
    done = report.completed_on_peer
    if report.problem or not done or len(report.received) >= min(done, len(report.expected)):
        return
    arrived = "none" if not report.received else f"only {len(report.received)}"
    if own_listener:
        where = (
            f"the node sent them elsewhere: it must know AE title {ae_title!r} at this "
            f"computer's address, port {port}"
        )
    else:
        where = (
            f"port {port} is in use by another program or by a listener that stores into "
            "another store: stop it, or use another --port that the node knows for us"
        )
    report.problem = (
        f"the node reports {done} sub-operation(s) completed but {arrived} arrived in this "
        f"store; {where}"
    )
    report.problem_kind = kinds.ARRIVED_ELSEWHERE


def _received_by_running_listener(store_dir: Path, report: RetrieveReport, started: float) -> None:
    """With an external listener, an instance arrived if its file appeared during the move."""
    from workstation.dicom.net.receive import FILES_DIR

    wall_start = time.time() - (time.perf_counter() - started) - 1.0
    by_uid = {p.stem: p for p in (Path(store_dir) / FILES_DIR).glob("*/*/*.dcm")}
    for uid in report.expected:
        path = by_uid.get(uid)
        if path is not None and path.stat().st_mtime >= wall_start:
            report.received.append(uid)
            report.paths.append(path)


# -- C-STORE ------------------------------------------------------------------------------------
@dataclass
class SendReport:
    node: str
    sent: list[str] = field(default_factory=list)  # files sent
    failed: list[tuple[str, str]] = field(default_factory=list)  # (file, reason)
    left_out: list[tuple[str, str]] = field(default_factory=list)  # unusable in the store
    replacements: dict[str, list[str]] = field(default_factory=dict)  # de-identified UIDs

    def to_dict(self) -> dict:
        return {
            "node": self.node,
            "sent": len(self.sent),
            "failed": [{"file": f, "reason": r} for f, r in self.failed],
            "left_out": [{"file": f, "reason": r} for f, r in self.left_out],
            "deidentified_as": self.replacements,
        }


def send_files(
    node: Node,
    paths: Iterable[str | Path],
    *,
    transform: Callable[[Dataset], Dataset] | None = None,
    ae_title: str = DEFAULT_AE_TITLE,
    progress: Progress | None = None,
) -> SendReport:
    """C-STORE files to the node, one association; `transform` may rewrite each data set first
    (de-identification). A file that cannot be read or is refused is reported, the rest go on."""
    paths = [str(p) for p in paths]
    report = SendReport(node.name)
    contexts: dict[str, set[str]] = {}
    for path in paths:
        try:
            header = dcmread(path, stop_before_pixels=True)
            contexts.setdefault(str(header.SOPClassUID), set()).add(
                str(header.file_meta.TransferSyntaxUID)
            )
        except Exception as error:
            report.failed.append((path, f"cannot read: {error}"))
    readable = [p for p in paths if p not in {f for f, _ in report.failed}]
    if not readable:
        return report
    if len(contexts) > 120:
        raise PacsError(f"too many kinds of object ({len(contexts)}) for one association")
    ae = _client(ae_title)
    for sop_class, syntaxes in contexts.items():
        ordered = sorted(syntaxes) + [
            s for s in (ExplicitVRLittleEndian, ImplicitVRLittleEndian) if s not in syntaxes
        ]
        ae.add_requested_context(sop_class, ordered)
    assoc = _associate(ae, node)
    try:
        for done, path in enumerate(readable, start=1):
            try:
                dataset = dcmread(path)
                if transform is not None:
                    dataset = transform(dataset)
                status = assoc.send_c_store(dataset)
            except Exception as error:
                report.failed.append((path, str(error)))
                continue
            code = _status_code(status)
            if code is None:
                report.failed.append((path, "no answer (association lost)"))
                if not assoc.is_established:
                    report.failed.extend((p, "not sent: association lost") for p in readable[done:])
                    break
            elif code in (0x0000, 0xB000, 0xB007, 0xB006):
                report.sent.append(path)
            else:
                report.failed.append((path, f"refused with status 0x{code:04X}"))
            if progress is not None:
                progress(done, len(readable), "")
    finally:
        if assoc.is_established:
            assoc.release()
    return report
