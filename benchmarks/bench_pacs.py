"""PACS throughput against real peers on 127.0.0.1, in the same run.

1. Retrieval of a 400-image study from Orthanc: our C-GET (`retrieve()`: listing, every object
   checked, stored and indexed) through each backend (dcmtk's getscu driven by the workstation,
   and pynetdicom) versus dcmtk's getscu alone (writes the files, with the same 128 KiB PDUs).
   Goal: ours >= 0.8x getscu's instances/s.
2. Retrieval by C-MOVE from the same Orthanc: `retrieve(..., move=True)` (listing, C-MOVE, every
   object checked, stored and indexed) through each backend (dcmtk's storescp as the move
   destination, driven by the workstation; pynetdicom's listener) versus dcmtk's movescu moving
   the study into dcmtk's storescp alone (writes the files; both with 128 KiB PDUs). No goal in
   the issue; measured so the C-MOVE path's distance to dcmtk is known.
3. Receiving: dcmtk's storescu sends the same 400 files to our listener (store + index) and to
   Orthanc (store + index). Goal: ours >= 0.8x Orthanc's.

Run:  .venv/bin/python benchmarks/bench_pacs.py [--images 400] [--size 512] [--rounds 2]
Needs Debian's orthanc and dcmtk (getscu, movescu, storescp, storescu). Prints a markdown table;
each figure is the best of --rounds, the transfers of one round run one after the other, and the
load average is printed with it.
"""

from __future__ import annotations

import argparse
import logging
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "pacs"))

from pacs_peers import DCMTK_ENV, Orthanc, free_port, orthanc_binary, write_ct_series  # noqa: E402

from workstation.dicom.net import Listener, NodeStore, dcmtk_get, dcmtk_move, retrieve  # noqa: E402
from workstation.dicom.net.dcmtk_get import GETSCU_MAX_PDU  # noqa: E402

OUR_AE, GETSCU_AE, STORESCU_AE = "WSBENCH", "GETSCU", "STORESCU"
MOVESCU_AE, STORESCP_AE = "MOVESCU", "STORESCP"


def _index_available() -> bool:
    try:
        import workstation.dicom.headers
        import workstation.dicom.stacks  # noqa: F401
    except ImportError:
        return False
    return True


def _cpu() -> tuple[float, float]:
    """CPU seconds (user + system) so far: this process, and its finished child processes."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime, children.ru_utime + children.ru_stime


def _cpu_since(before: tuple[float, float]) -> tuple[float, float]:
    after = _cpu()
    return after[0] - before[0], after[1] - before[1]


# CPU seconds per retrieval: (this process, dcmtk tools it ran), the lowest of the rounds
CPU: dict[str, tuple[float, float]] = {}


def _note_cpu(name: str, used: tuple[float, float]) -> None:
    CPU[name] = min(CPU.get(name, used), used)


def bench_get(orthanc: Orthanc, study: str, work: Path, rounds: int) -> dict[str, dict]:
    runs: dict[str, list] = {"getscu": [], "dcmtk": [], "pynetdicom": []}
    for round_number in range(rounds):
        out = work / f"getscu{round_number}"
        out.mkdir()
        cpu = _cpu()
        started = time.perf_counter()
        subprocess.run(
            [
                dcmtk_get.dcmtk_tool("getscu"),
                "-S",
                "-pdu",
                str(GETSCU_MAX_PDU),
                "-aet",
                GETSCU_AE,
                "-aec",
                orthanc.ae_title,
                "127.0.0.1",
                str(orthanc.dicom_port),
                "-k",
                "QueryRetrieveLevel=STUDY",
                "-k",
                f"StudyInstanceUID={study}",
                "-od",
                str(out),
            ],
            check=True,
            capture_output=True,
            env=DCMTK_ENV,
        )
        seconds = time.perf_counter() - started
        _note_cpu("getscu", _cpu_since(cpu))
        files = list(out.iterdir())
        runs["getscu"].append((seconds, len(files), sum(f.stat().st_size for f in files)))
        shutil.rmtree(out)
        for backend in ("dcmtk", "pynetdicom"):
            if backend == "dcmtk" and not dcmtk_get.available():
                continue
            store = work / f"store-get-{backend}{round_number}"
            nodes = NodeStore(store)
            node = nodes.add("orthanc", orthanc.ae_title, "127.0.0.1", orthanc.dicom_port)
            nodes.close()
            cpu = _cpu()
            started = time.perf_counter()
            report = retrieve(store, node, study, ae_title=OUR_AE, backend=backend)
            seconds = time.perf_counter() - started  # listing, checks, store and index included
            _note_cpu(backend, _cpu_since(cpu))
            assert report.complete, report.to_dict()
            runs[backend].append((seconds, len(report.received), report.bytes))
            shutil.rmtree(store)
    return {name: _best(found) for name, found in runs.items() if found}


def bench_move(
    orthanc: Orthanc, study: str, work: Path, rounds: int, our_port: int, storescp_port: int
) -> dict[str, dict]:
    """C-MOVE of the study: dcmtk's movescu into dcmtk's storescp, then our retrieve(move=True)
    through each backend, receiving on `our_port` (Orthanc knows both destinations)."""
    backends = ("dcmtk", "pynetdicom") if dcmtk_move.available() else ("pynetdicom",)
    runs: dict[str, list] = {"storescp": [], **{backend: [] for backend in backends}}
    for round_number in range(rounds):
        out = work / f"storescp{round_number}"
        out.mkdir()
        storescp = subprocess.Popen(
            [
                dcmtk_get.dcmtk_tool("storescp"),
                "-aet",
                STORESCP_AE,
                "-pdu",
                str(GETSCU_MAX_PDU),
                "-od",
                str(out),
                str(storescp_port),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=DCMTK_ENV,
        )
        try:
            _wait_for_port(storescp_port)
            cpu = _cpu()
            started = time.perf_counter()
            subprocess.run(
                [
                    dcmtk_get.dcmtk_tool("movescu"),
                    "-S",
                    "-aet",
                    MOVESCU_AE,
                    "-aem",
                    STORESCP_AE,
                    "-aec",
                    orthanc.ae_title,
                    "127.0.0.1",
                    str(orthanc.dicom_port),
                    "-k",
                    "QueryRetrieveLevel=STUDY",
                    "-k",
                    f"StudyInstanceUID={study}",
                ],
                check=True,
                capture_output=True,
                env=DCMTK_ENV,
            )
            seconds = time.perf_counter() - started  # storescp answers each store once written
            _note_cpu("movescu", _cpu_since(cpu))
        finally:
            storescp.terminate()
            storescp.wait()
        files = list(out.iterdir())
        runs["storescp"].append((seconds, len(files), sum(f.stat().st_size for f in files)))
        shutil.rmtree(out)

        for backend in backends:
            store = work / f"store-move-{backend}{round_number}"
            nodes = NodeStore(store)
            node = nodes.add("orthanc", orthanc.ae_title, "127.0.0.1", orthanc.dicom_port)
            nodes.close()
            cpu = _cpu()
            started = time.perf_counter()
            report = retrieve(
                store,
                node,
                study,
                move=True,
                ae_title=OUR_AE,
                port=our_port,
                listen_host="127.0.0.1",
                backend=backend,
            )
            seconds = time.perf_counter() - started
            _note_cpu(f"C-MOVE via {backend}", _cpu_since(cpu))
            assert report.complete, report.to_dict()
            runs[backend].append((seconds, len(report.received), report.bytes))
            shutil.rmtree(store)
    return {name: _best(found) for name, found in runs.items()}


def _wait_for_port(port: int, timeout: float = 10.0) -> None:
    """Until something accepts connections on 127.0.0.1:port (a peer just started)."""
    import socket

    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.02)


def bench_receive(files: list[Path], work: Path, rounds: int) -> tuple[dict, dict]:
    ours, peer = [], []
    for round_number in range(rounds):
        store = work / f"store-listen{round_number}"
        nodes = NodeStore(store)
        nodes.add("modality", STORESCU_AE, "127.0.0.1", 104)
        nodes.close()
        port = free_port()
        with Listener(store, OUR_AE, port, host="127.0.0.1") as listener:
            started = time.perf_counter()
            _storescu(port, OUR_AE, files)
            listener.flush()  # every instance stored and indexed
            seconds = time.perf_counter() - started
            got = len(listener.receiver.received)
        ours.append((seconds, got, sum(f.stat().st_size for f in files)))

        orthanc = Orthanc(work / f"orthanc-recv{round_number}", {}).start()
        try:
            started = time.perf_counter()
            _storescu(orthanc.dicom_port, orthanc.ae_title, files)
            seconds = time.perf_counter() - started
            got = int(orthanc.rest("/statistics")["CountInstances"])
        finally:
            orthanc.stop()
        peer.append((seconds, got, sum(f.stat().st_size for f in files)))
    return _best(ours), _best(peer)


def _storescu(port: int, called: str, files: list[Path]) -> None:
    folder = files[0].parent
    subprocess.run(
        [
            dcmtk_get.dcmtk_tool("storescu"),
            "-aet",
            STORESCU_AE,
            "-aec",
            called,
            "+sd",
            "127.0.0.1",
            str(port),
            str(folder),
        ],
        check=True,
        capture_output=True,
        env=DCMTK_ENV,
    )


def _best(runs: list[tuple[float, int, int]]) -> dict:
    seconds, count, size = min(runs)
    return {
        "seconds": seconds,
        "instances": count,
        "per_s": count / seconds,
        "mb_s": size / 1e6 / seconds,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    tools = ("getscu", "storescu", "movescu", "storescp")
    peers = (orthanc_binary(), *(dcmtk_get.dcmtk_tool(tool) for tool in tools))
    if None in peers:
        print("needs Debian's orthanc and dcmtk (apt-get install orthanc dcmtk)", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.ERROR)
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="bench-pacs-") as tmp:
        work = Path(tmp)
        files = write_ct_series(work / "study", args.images, size=args.size)
        from pydicom import dcmread

        study = str(dcmread(files[0], stop_before_pixels=True).StudyInstanceUID)
        our_port, storescp_port = free_port(), free_port()
        modalities = {
            "bench": (OUR_AE, our_port),
            "getscu": (GETSCU_AE, 104),
            "movescu": (MOVESCU_AE, 104),
            "storescp": (STORESCP_AE, storescp_port),
        }
        orthanc = Orthanc(work / "orthanc", modalities).start()
        try:
            orthanc.upload(files)
            get = bench_get(orthanc, study, work, args.rounds)
            move = bench_move(orthanc, study, work, args.rounds, our_port, storescp_port)
        finally:
            orthanc.stop()
        recv_ours, recv_peer = bench_receive(files, work, args.rounds)
    load_after = os.getloadavg()
    indexed = "stored + indexed" if _index_available() else "stored (index reader absent)"
    print(f"{args.images} images of {args.size}x{args.size} int16, best of {args.rounds} rounds")
    print(f"load average (1, 5, 15 min): before {_load(load_before)}, after {_load(load_after)}")
    print()
    print("| transfer | ours (inst/s, MB/s) | peer (inst/s, MB/s) | ratio | goal |")
    print("| --- | --- | --- | --- | --- |")
    rows = [
        (
            f"retrieve: our C-GET via {name} ({indexed}) vs dcmtk getscu",
            get[name],
            get["getscu"],
        )
        for name in ("dcmtk", "pynetdicom")
        if name in get
    ]
    destinations = {"dcmtk": "dcmtk's storescp", "pynetdicom": "our listener"}
    rows += [
        (
            f"retrieve: our C-MOVE into {destinations[name]} ({indexed}) "
            "vs dcmtk movescu into storescp",
            move[name],
            move["storescp"],
        )
        for name in ("dcmtk", "pynetdicom")
        if name in move
    ]
    rows.append(
        (f"receive from storescu: our listener ({indexed}) vs Orthanc", recv_ours, recv_peer)
    )
    for label, ours, peer in rows:
        ratio = ours["per_s"] / peer["per_s"]
        goal = (
            "none set" if "C-MOVE" in label else ">= 0.8x " + ("met" if ratio >= 0.8 else "NOT met")
        )
        print(
            f"| {label} | {ours['per_s']:.0f}, {ours['mb_s']:.0f} | "
            f"{peer['per_s']:.0f}, {peer['mb_s']:.0f} | {ratio:.2f}x | {goal} |"
        )
    print()
    print("CPU seconds per retrieval, lowest of the rounds (Orthanc's not counted):")
    for name, (own, children) in CPU.items():
        if name == "getscu":
            print(f"  getscu alone: {children:.2f}")
        elif name == "movescu":
            print(f"  movescu (storescp not counted): {children:.2f}")
        elif name.startswith("C-MOVE via "):
            print(
                f"  retrieve(move=True) via {name[len('C-MOVE via ') :]}: our process "
                f"(listener included) {own:.2f}, children {children:.2f}"
            )
        else:
            print(f"  retrieve() via {name}: our process {own:.2f}, children {children:.2f}")
    return 0


def _load(values: tuple[float, float, float]) -> str:
    return ", ".join(f"{v:.2f}" for v in values)


if __name__ == "__main__":
    sys.exit(main())
