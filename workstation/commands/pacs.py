"""`workstation pacs ...` (nodes, echo, find, get, send) and `workstation listen`."""

from __future__ import annotations

import argparse
import errno
import logging
import signal
import sys
import threading

from workstation.commands.common import fail, print_json, store_dir


def register(subparsers: argparse._SubParsersAction) -> None:
    pacs = subparsers.add_parser("pacs", help="query, retrieve and send over DICOM networking")
    commands = pacs.add_subparsers(dest="pacs_command", metavar="ACTION", required=True)

    add = commands.add_parser(
        "add-node",
        help="register a remote DICOM node",
        description="Register a PACS, modality or workstation by a name of your choice. "
        "Registered nodes may also send to our listener (`workstation listen`).",
    )
    add.add_argument("name", help="a short name for the node, used in the other commands")
    add.add_argument("ae_title", metavar="AE_TITLE", help="the node's own AE title (ask its admin)")
    add.add_argument("host", metavar="HOST", help="the node's host name or IP address")
    add.add_argument("port", metavar="PORT", type=int, help="the node's DICOM port (often 104)")
    add.set_defaults(func=_add_node)

    nodes = commands.add_parser("nodes", help="list registered nodes")
    nodes.add_argument("--json", action="store_true")
    nodes.set_defaults(func=_nodes)

    remove = commands.add_parser("remove-node", help="forget a registered node")
    remove.add_argument("name", help="the node's name (see: workstation pacs nodes)")
    remove.set_defaults(func=_remove_node)

    echo = commands.add_parser("echo", help="C-ECHO a node")
    echo.add_argument("name", help="the node's name (see: workstation pacs nodes)")
    _our_ae(echo)
    echo.set_defaults(func=_echo)

    find = commands.add_parser(
        "find",
        help="C-FIND patients, studies or series on a node",
        description="Search a node. At patient level, --study-date, --modality and --study "
        "list the patients that have a matching study (their study count is of matching "
        "studies).",
    )
    find.add_argument("name", help="the node's name (see: workstation pacs nodes)")
    find.add_argument("--level", choices=("patient", "study", "series"), default="study")
    find.add_argument("--patient-id")
    find.add_argument("--patient-name", help="wildcards * and ? allowed, e.g. 'Doe^J*'")
    find.add_argument(
        "--study-date",
        metavar="RANGE",
        help="YYYYMMDD, YYYYMMDD-YYYYMMDD, -YYYYMMDD (until) or YYYYMMDD- (since)",
    )
    find.add_argument("--modality", help="CT, MR, US ...")
    find.add_argument("--study", metavar="UID")
    find.add_argument("--json", action="store_true")
    _our_ae(find)
    find.set_defaults(func=_find)

    get = commands.add_parser("get", help="retrieve a study or series (C-GET, or C-MOVE)")
    get.add_argument("name", help="the node's name (see: workstation pacs nodes)")
    get.add_argument("--study", metavar="UID", required=True)
    get.add_argument("--series", metavar="UID")
    get.add_argument("--move", action="store_true", help="C-MOVE to our listener instead")
    get.add_argument("--port", type=int, help="our listener's port for --move (default 11112)")
    get.add_argument(
        "--backend",
        choices=("auto", "dcmtk", "pynetdicom"),
        help="how C-GET talks to the node: dcmtk's getscu (fast; needs dcmtk) or pynetdicom; "
        "default: $WORKSTATION_PACS_BACKEND, else dcmtk when installed",
    )
    get.add_argument("--json", action="store_true")
    _our_ae(get)
    get.set_defaults(func=_get)

    send = commands.add_parser("send", help="send stored series to a node (C-STORE)")
    send.add_argument("name", help="the node's name (see: workstation pacs nodes)")
    send.add_argument(
        "series", metavar="SERIES_UID", nargs="+", help="series in the store (see: workstation ls)"
    )
    send.add_argument("--deidentify", action="store_true", help="PS3.15 basic profile first")
    send.add_argument("--json", action="store_true")
    _our_ae(send)
    send.set_defaults(func=_send)

    audit = commands.add_parser(
        "audit", help="what left this store: every export and send, newest last"
    )
    audit.add_argument("--limit", type=int, metavar="N", help="only the last N entries")
    audit.add_argument("--json", action="store_true", help="machine-readable output")
    audit.set_defaults(func=_audit)

    listen = subparsers.add_parser(
        "listen", help="receive DICOM objects (C-STORE) into the store until Ctrl-C"
    )
    listen.add_argument("--port", type=int, help="port to listen on (default 11112)")
    listen.add_argument("--host", default="0.0.0.0", help="address to bind (default all)")
    listen.add_argument("--ae-title", help="our AE title (default WORKSTATION)")
    listen.add_argument(
        "--any-ae", action="store_true", help="accept any calling AE, not only registered nodes"
    )
    listen.set_defaults(func=_listen)


def _our_ae(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--ae-title", help="our AE title (default WORKSTATION)")


def _ae(args: argparse.Namespace) -> str:
    from workstation.dicom.net import DEFAULT_AE_TITLE

    return args.ae_title or DEFAULT_AE_TITLE


def _node(args: argparse.Namespace):
    from workstation.dicom.net import NodeStore

    nodes = NodeStore(store_dir(args))
    try:
        return nodes.get(args.name)
    finally:
        nodes.close()


def _add_node(args: argparse.Namespace) -> int:
    from workstation.dicom.net import NodeError, NodeStore

    nodes = NodeStore(store_dir(args))
    try:
        node = nodes.add(args.name, args.ae_title, args.host, args.port)
    except NodeError as error:
        return fail(str(error))
    finally:
        nodes.close()
    print(f"added {node.name}: {node.ae_title}@{node.host}:{node.port}")
    return 0


def _nodes(args: argparse.Namespace) -> int:
    from workstation.dicom.net import NodeStore

    nodes = NodeStore(store_dir(args))
    try:
        found = nodes.all()
    finally:
        nodes.close()
    if args.json:
        print_json([n.to_dict() for n in found])
    elif not found:
        print("no nodes registered (add one with: workstation pacs add-node NAME AE HOST PORT)")
    else:
        for n in found:
            print(f"{n.name:20} {n.ae_title:16} {n.host}:{n.port}")
    return 0


def _remove_node(args: argparse.Namespace) -> int:
    from workstation.dicom.net import NodeError, NodeStore

    nodes = NodeStore(store_dir(args))
    try:
        nodes.remove(args.name)
    except NodeError as error:
        return fail(str(error))
    finally:
        nodes.close()
    print(f"removed {args.name}")
    return 0


def _echo(args: argparse.Namespace) -> int:
    from workstation.dicom.net import NodeError, PacsError, echo

    try:
        node = _node(args)
        seconds = echo(node, ae_title=_ae(args))
    except (NodeError, PacsError) as error:
        return fail(str(error))
    print(f"{node.name}: C-ECHO ok ({seconds * 1000:.0f} ms)")
    return 0


_COLUMNS = {
    "patient": ("PatientID", "PatientName", "PatientBirthDate", "NumberOfPatientRelatedStudies"),
    "study": (
        "StudyInstanceUID",
        "StudyDate",
        "PatientID",
        "ModalitiesInStudy",
        "StudyDescription",
    ),
    "series": (
        "SeriesInstanceUID",
        "Modality",
        "SeriesNumber",
        "NumberOfSeriesRelatedInstances",
        "SeriesDescription",
    ),
}


def _checked_find_keys(args: argparse.Namespace) -> str:
    """Check the matching keys before anything is sent; an error naming the option, or ""."""
    from workstation.dicom.net import query_keys

    keys = ("patient_id", "patient_name", "study_date", "modality")
    try:
        query_keys.checked_search_keys({key: getattr(args, key) for key in keys})
    except query_keys.SearchKeyError as error:
        return f"--{error.key.replace('_', '-')} {error}"
    return ""


def _find(args: argparse.Namespace) -> int:
    from workstation.dicom.net import NodeError, PacsError, find

    problem = _checked_find_keys(args)
    if problem:
        return fail(problem)
    try:
        rows = find(
            _node(args),
            args.level,
            patient_id=args.patient_id,
            patient_name=args.patient_name,
            study_date=args.study_date,
            modality=args.modality,
            study_uid=args.study,
            ae_title=_ae(args),
        )
    except (NodeError, PacsError) as error:
        return fail(str(error))
    if args.json:
        print_json(rows)
        return 0
    columns = _COLUMNS[args.level]
    print("\t".join(columns))
    for row in rows:
        print("\t".join(row.get(c, "") for c in columns))
    print(f"{len(rows)} {args.level} match(es)", file=sys.stderr)
    return 0


def _get(args: argparse.Namespace) -> int:
    from workstation.dicom.net import DEFAULT_PORT, NodeError, PacsError, retrieve

    def progress(done: int, total: int, _uid: str) -> None:
        if not args.json:
            print(f"\r{done}/{total} instances", end="", file=sys.stderr, flush=True)

    try:
        report = retrieve(
            store_dir(args),
            _node(args),
            args.study,
            args.series,
            move=args.move,
            ae_title=_ae(args),
            port=args.port or DEFAULT_PORT,
            progress=progress,
            backend=args.backend,
        )
    except (NodeError, PacsError) as error:
        return fail(str(error))
    if args.json:
        print_json(report.to_dict())
    else:
        print(file=sys.stderr)
        megabytes = report.bytes / 1e6
        print(
            f"{report.method}: {len(report.received)} of {len(report.expected)} instances "
            f"received and indexed ({megabytes:.1f} MB in {report.seconds:.1f} s)"
        )
        if report.problem:
            print(f"problem: {report.problem}", file=sys.stderr)
        for reason in report.rejected:
            print(f"rejected: {reason}", file=sys.stderr)
        if report.missing:
            print(f"missing {len(report.missing)} instance(s):", file=sys.stderr)
            for uid in report.missing:
                print(f"  {uid}", file=sys.stderr)
    return 0 if report.complete else 2


def _send(args: argparse.Namespace) -> int:
    from workstation.dicom.export_dicom import ExportError
    from workstation.dicom.net import DeidentificationError, NodeError, PacsError, send_series

    try:
        report = send_series(
            store_dir(args),
            _node(args),
            args.series,
            deidentify=args.deidentify,
            ae_title=_ae(args),
        )
    except (
        NodeError,
        PacsError,
        ExportError,
        DeidentificationError,
        KeyError,
        LookupError,
    ) as error:
        return fail(str(error))
    if args.json:
        print_json(report.to_dict())
    else:
        note = " (de-identified)" if args.deidentify else ""
        print(f"sent {len(report.sent)} file(s) to {report.node}{note}")
        for study in report.replacements.get("studies", []):
            print(f"  arrives there as study {study}")
        for path, reason in report.failed:
            print(f"not sent: {path}: {reason}", file=sys.stderr)
        if report.left_out:
            print(
                f"left out {len(report.left_out)} file(s) of the series that the store cannot "
                "use (see: workstation ls --errors):",
                file=sys.stderr,
            )
            for path, reason in report.left_out:
                print(f"  {path}: {reason}", file=sys.stderr)
    return 0 if not report.failed else 2


def _listen(args: argparse.Namespace) -> int:
    from workstation.dicom.net import DEFAULT_AE_TITLE, DEFAULT_PORT, Listener, NodeError

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    logging.getLogger("pynetdicom").setLevel(logging.WARNING)  # one line per event is ours

    def received(item) -> None:
        state = "indexed" if item.indexed else "stored (not indexed)"
        print(f"received from {item.calling_ae}: {item.path.name} {state}", flush=True)

    try:
        listener = Listener(
            store_dir(args),
            ae_title=args.ae_title or DEFAULT_AE_TITLE,
            port=args.port or DEFAULT_PORT,
            host=args.host,
            accept_any=args.any_ae,
            on_received=received,
        )
        listener.start()
    except NodeError as error:
        return fail(f"cannot listen: {error}")
    except OSError as error:
        return fail(_listen_error(error, args.host, args.port or DEFAULT_PORT))
    who = "any AE" if args.any_ae else "registered nodes only"
    print(
        f"listening as {listener.ae_title} on {listener.host}:{listener.port} ({who}); Ctrl-C stops"
    )
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        listener.stop()
    print("listener stopped")
    return 0


def _listen_error(error: OSError, host: str, port: int) -> str:
    """Why the listener could not start, naming the port (a port in use is the usual cause)."""
    if error.errno in (errno.EADDRINUSE, 10048):
        return (
            f"cannot listen on {host}:{port}: the port is already in use (another workstation "
            "listener, or a PACS program on this computer); choose another with --port"
        )
    if error.errno in (errno.EACCES, errno.EPERM):
        return (
            f"cannot listen on {host}:{port}: ports below 1024 need administrator rights; "
            "choose another with --port"
        )
    return f"cannot listen on {host}:{port}: {error}"


def _audit(args: argparse.Namespace) -> int:
    from workstation.dicom.net import audit_log

    if args.limit is not None and args.limit < 1:
        return fail(f"--limit {args.limit}: give a number of entries, 1 or more")
    entries = audit_log(store_dir(args), limit=args.limit)
    if args.json:
        print_json([entry.to_dict() for entry in entries])
        return 0
    if not entries:
        print("nothing has been exported or sent from this store")
        return 0
    for entry in entries:
        print(entry.describe())
    return 0
