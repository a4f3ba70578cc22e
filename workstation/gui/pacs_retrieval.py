"""Retrievals from a PACS in a child process, and the plain words that describe how they went.

Why a child process: Cancel must stop a transfer at once, whatever the transfer path behind
`workstation.dicom.net.retrieve()` does, and the receive path (pure Python) must not compete with
the UI thread for the interpreter. Stopping the child's process group ends the association and
any helper process it started. Objects that arrived are whole files (the receive path renames a
file into place only when complete), so after a cancel or a crash the parent indexes the study
folders and everything that arrived shows in the browser.

Protocol: the parent writes one JSON request on the child's stdin; the child answers with JSON
lines on stdout, one event each: `plan`, `progress`, `indexed`, `report` or `error` per target,
then `end`. This module imports no Qt: the child runs it as `python -m`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MISSING_LISTED = 5  # how many missing instance UIDs a message names before "and N more"


@dataclass
class Target:
    """One thing to retrieve: a study, a series of it, or all studies of a patient."""

    study_uid: str = ""
    series_uid: str | None = None
    patient_id: str | None = None
    label: str = ""  # what the user saw in the results table ("CT #2 AXIAL LUNG")
    expected: int = 0  # the node's instance count from the query; 0 when it did not say


@dataclass
class TargetOutcome:
    """How one target went: the retrieval report (as a dict), or the error that stopped it."""

    target: Target
    report: dict[str, Any] | None = None
    error: str = ""
    kind: str = ""  # the error's cause (PacsError.kind) when it has one
    done: int = 0  # instances stored, as progress counted them (kept when cancelled)
    cancelled: bool = False

    @property
    def complete(self) -> bool:
        return (
            self.report is not None
            and not self.error
            and not self.report.get("missing")
            and not self.report.get("problem")
        )


@dataclass
class RetrievalRequest:
    store_dir: str
    node: dict[str, Any]  # Node.to_dict()
    targets: list[Target] = field(default_factory=list)
    move: bool = False
    ae_title: str = "WORKSTATION"
    port: int = 11112

    def to_json(self) -> str:
        return json.dumps({**asdict(self), "targets": [asdict(t) for t in self.targets]})

    @classmethod
    def from_json(cls, text: str) -> RetrievalRequest:
        data = json.loads(text)
        data["targets"] = [Target(**t) for t in data["targets"]]
        return cls(**data)


# -- plain words ---------------------------------------------------------------------------------
def plain_error(message: str | BaseException, ae_title: str = "", kind: str = "") -> str:
    """A network error as a radiologist can act on it; the technical message follows.

    The words follow the error's cause (`PacsError.kind`, or `kind` as sent by the retrieval
    process); a message without one is placed by its wording.
    """
    text = str(message).strip()
    kind = kind or getattr(message, "kind", "") or _kind_from_words(text)
    ours = f" {ae_title!r}" if ae_title else ""
    register = (
        "Ask its administrator to register this workstation (our AE title, this computer's "
        "address and listener port), or change our AE title in PACS settings."
    )
    leads = {
        "host_unknown": "The PACS's host name could not be found: check the host in the "
        "node's settings (or this computer's network connection).",
        "unreachable": "The PACS could not be reached: is it running, and are its host and "
        "port right?",
        "calling_ae_rejected": "The PACS refused the connection: it does not accept our AE "
        f"title{ours}. {register}",
        "called_ae_rejected": "The PACS refused the connection: the AE title set for this node "
        "is not the PACS's own. Check the node's AE title (ask the PACS administrator).",
        "busy": "The PACS is busy and refused the connection for now: try again in a moment.",
        "rejected": "The PACS refused the connection without saying why: it may not accept "
        f"our AE title{ours}. {register}",
        "aborted": "The PACS broke off the connection as it started: it may not accept our AE "
        f"title{ours}, or the AE title set for this node may be wrong. Its log says which.",
        "not_permitted": "The PACS accepted the connection but would not answer: it probably "
        f"does not know our AE title{ours}. {register}",
        "lost": "The PACS stopped answering in the middle (the connection was lost).",
        "move_failed": "The PACS could not send the images to this workstation: it must know "
        f"our AE title{ours} at this computer's address and our listener port (PACS settings).",
        "arrived_elsewhere": "The PACS sent the images, but they did not arrive in this "
        "workstation's store: another program or listener is using our listener port.",
        "not_found": "The PACS has no images for this selection.",
        "invalid": "Check the search fields.",
    }
    lead = leads.get(kind)
    return f"{lead}\nDetails: {text}" if lead else text


def _kind_from_words(text: str) -> str:
    """The cause of a message that came without a kind (older reports, other programs)."""
    lowered = text.lower()
    if "does not resolve" in lowered:
        return "host_unknown"
    if "could not be reached" in lowered or "connection refused" in lowered:
        return "unreachable"
    if "from our ae title" in lowered:
        return "not_permitted"
    if "refused the association" in lowered:
        return "rejected"
    if "aborted the association request" in lowered:
        return "aborted"
    if any(w in lowered for w in ("association lost", "stopped", "ended c-get")):
        return "lost"
    if "has no instances" in lowered:
        return "not_found"
    return ""


def describe_outcome(outcome: TargetOutcome, ae_title: str = "") -> str:
    """One paragraph per target: all there, cancelled, failed, or exactly what is missing."""
    label = outcome.target.label or _target_name(outcome.target)
    if outcome.cancelled:
        return (
            f"{label}: cancelled; the {outcome.done} instance(s) that had arrived are kept "
            "and indexed."
        )
    if outcome.error:
        return f"{label}: not retrieved. {plain_error(outcome.error, ae_title, outcome.kind)}"
    report = outcome.report or {}
    expected, received = int(report.get("expected", 0)), int(report.get("received", 0))
    if outcome.complete:
        size = _size(float(report.get("bytes", 0)))
        seconds = float(report.get("seconds", 0.0))
        took = f"{size} in {seconds:.1f} s"
        return f"{label}: all {received} instance(s) retrieved and indexed ({took})."
    lines = [f"{label}: incomplete, {received} of {expected} instance(s) arrived and are indexed."]
    missing = list(report.get("missing") or [])
    if missing:
        shown = ", ".join(missing[:MISSING_LISTED])
        more = len(missing) - MISSING_LISTED
        tail = f" and {more} more" if more > 0 else ""
        lines.append(f"Missing {len(missing)} instance(s): {shown}{tail}.")
    if report.get("problem"):
        lines.append(plain_error(str(report["problem"]), ae_title, report.get("problem_kind", "")))
    failed = list(report.get("failed_on_peer") or [])
    if failed:
        lines.append(f"The PACS reported {len(failed)} instance(s) it could not send.")
    for reason in list(report.get("rejected") or [])[:3]:
        lines.append(f"Refused by us: {reason}")
    return "\n".join(lines)


def _size(size: float) -> str:
    for unit in ("bytes", "kB", "MB"):
        if size < 1000:
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1000
    return f"{size:.2f} GB"


def _target_name(target: Target) -> str:
    if target.series_uid:
        return f"series {target.series_uid}"
    if target.study_uid:
        return f"study {target.study_uid}"
    return f"patient {target.patient_id}"


# -- parent side ---------------------------------------------------------------------------------
class RetrievalProcess:
    """Runs a request in a child process; iterate `events()`, call `cancel()` from any thread."""

    def __init__(self, request: RetrievalRequest) -> None:
        self.request = request
        self.cancelled = False
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - closed by close()
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> RetrievalProcess:
        package_root = str(Path(__file__).resolve().parents[2])
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(
            p for p in (package_root, env.get("PYTHONPATH", "")) if p
        )
        self._process = subprocess.Popen(
            [sys.executable, "-m", "workstation.gui.pacs_retrieval"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self._stderr,
            text=True,
            env=env,
            start_new_session=True,  # its own process group: cancel stops its helpers too
        )
        assert self._process.stdin is not None
        self._process.stdin.write(self.request.to_json())
        self._process.stdin.close()
        return self

    def events(self) -> Iterator[dict[str, Any]]:
        """Events until the child ends; a line cut short by a cancel is dropped."""
        assert self._process is not None and self._process.stdout is not None
        for line in self._process.stdout:
            if not line.endswith("\n"):
                break
            try:
                yield json.loads(line)
            except json.JSONDecodeError:
                continue

    def cancel(self) -> None:
        self.cancelled = True
        process = self._process
        if process is None or process.poll() is not None:
            return
        try:
            if hasattr(os, "killpg"):
                os.killpg(process.pid, signal.SIGTERM)
            else:
                process.terminate()
        except ProcessLookupError:
            pass

    def wait(self, timeout: float = 30.0) -> int:
        assert self._process is not None
        try:
            return self._process.wait(timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            return self._process.wait()

    def stderr_tail(self, lines: int = 8) -> str:
        self._stderr.seek(0)
        text = self._stderr.read().decode("utf-8", "replace")
        return "\n".join(text.strip().splitlines()[-lines:])

    def close(self) -> None:
        self._stderr.close()


def index_arrivals(store_dir: str | Path, study_uids: list[str]) -> None:
    """Index whatever arrived for these studies (after a cancel or a crash of the child)."""
    from workstation.dicom.index import index_paths
    from workstation.dicom.net.receive import instance_path

    folders = []
    for uid in dict.fromkeys(u for u in study_uids if u):
        folder = instance_path(Path(store_dir), uid, "series", "instance").parent.parent
        if folder.is_dir():
            folders.append(folder)
    if folders:
        index_paths(store_dir, folders, copy=False)


# -- child side ----------------------------------------------------------------------------------
def _expand(request: RetrievalRequest, node: Any, find: Any) -> list[Target]:
    """Patient targets become one target per study of that patient."""
    targets: list[Target] = []
    for target in request.targets:
        if target.study_uid:
            targets.append(target)
            continue
        for row in find(node, "study", patient_id=target.patient_id, ae_title=request.ae_title):
            count = row.get("NumberOfStudyRelatedInstances") or "0"
            targets.append(
                Target(
                    row["StudyInstanceUID"],
                    None,
                    target.patient_id,
                    f"{target.label or target.patient_id}: study {row.get('StudyDate', '')} "
                    f"{row.get('StudyDescription', '')}".strip(),
                    int(count) if count.isdigit() else 0,
                )
            )
    return targets


def child_main() -> int:
    out = os.fdopen(os.dup(1), "w", buffering=1, encoding="utf-8")
    os.dup2(2, 1)  # anything else printed goes to stderr, never into the event stream
    sys.stdout = sys.stderr

    lock = threading.Lock()  # progress and arrivals are reported from different threads

    def emit(event: str, **data: Any) -> None:
        line = json.dumps({"event": event, **data}) + "\n"
        with lock:
            out.write(line)

    request = RetrievalRequest.from_json(sys.stdin.read())
    from workstation.dicom.net import Node, find, retrieve

    node = Node(**request.node)
    try:
        targets = _expand(request, node, find)
    except Exception as error:  # the node is unreachable, refuses us ...
        emit("error", target=-1, message=str(error), kind=getattr(error, "kind", ""))
        emit("end")
        return 0
    emit("plan", targets=[asdict(t) for t in targets])
    for index, target in enumerate(targets):

        def progress(done: int, total: int, _uid: str, index: int = index) -> None:
            emit("progress", target=index, done=done, total=total)

        def received(item: Any, index: int = index) -> None:
            emit("indexed", target=index, series=item.series_uid, indexed=bool(item.indexed))

        try:
            report = retrieve(
                Path(request.store_dir),
                node,
                target.study_uid,
                target.series_uid,
                move=request.move,
                ae_title=request.ae_title,
                port=request.port,
                progress=progress,
                on_received=received,
            )
        except Exception as error:
            emit("error", target=index, message=str(error), kind=getattr(error, "kind", ""))
            continue
        emit("report", target=index, report=report.to_dict())
    emit("end")
    return 0


if __name__ == "__main__":
    sys.exit(child_main())
