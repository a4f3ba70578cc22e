"""Index throughput: `index_paths` (walk + parallel header parsing + database writes) against a
plain pydicom ``dcmread(stop_before_pixels=True)`` loop over the same files, in the same run.

Also times `index_paths` with its process pool forced on (it parses in-process below
PARALLEL_THRESHOLD files), header parsing alone (the fast classic reader and the pydicom reader it
falls back to), and parsing with threads and with processes. Run from the checkout:

    .venv/bin/python benchmarks/bench_index.py [--files 400] [--repeat 3]

The series is written once into benchmarks/data/ (git-ignored) and reused.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import workstation.dicom.index as index_module  # noqa: E402
from workstation.dicom.headers import read_header_pydicom  # noqa: E402
from workstation.dicom.index import PARALLEL_THRESHOLD, _FileStat, _parse_one, index_paths  # noqa: E402
from workstation.dicom.index_samples import write_series  # noqa: E402


def series_folder(files: int) -> Path:
    folder = HERE / "data" / f"index-ct-{files}"
    marker = folder / ".complete"
    if not marker.exists():
        shutil.rmtree(folder, ignore_errors=True)
        write_series(folder, slices=files, rows=512, columns=512, file_prefix="ct")
        marker.write_text("ok\n")
    return folder


def interleaved(fns, repeat: int) -> list[list[float]]:
    """Seconds of each run of each function, run in turn round by round, so that a change in the
    machine's load (it is shared) hits every method alike."""
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for fn, spent in zip(fns, times):
            start = time.perf_counter()
            fn()
            spent.append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=400)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    import pydicom

    folder = series_folder(args.files)
    paths = sorted(str(p) for p in folder.glob("*.dcm"))
    stats = [_FileStat(p, os.stat(p).st_size, os.stat(p).st_mtime_ns) for p in paths]
    for p in paths:  # warm the page cache
        Path(p).read_bytes()

    def pydicom_loop() -> None:
        for p in paths:
            pydicom.dcmread(p, stop_before_pixels=True)

    stored = [
        "SOPInstanceUID",
        "SOPClassUID",
        "PatientID",
        "PatientName",
        "PatientBirthDate",
        "PatientSex",
        "StudyInstanceUID",
        "StudyDate",
        "StudyTime",
        "StudyDescription",
        "AccessionNumber",
        "SeriesInstanceUID",
        "SeriesNumber",
        "SeriesDescription",
        "Modality",
        "ImageType",
        "InstanceNumber",
        "ImagePositionPatient",
        "ImageOrientationPatient",
        "PixelSpacing",
        "SliceThickness",
        "Rows",
        "Columns",
        "BitsAllocated",
        "BitsStored",
        "PixelRepresentation",
        "SamplesPerPixel",
        "PhotometricInterpretation",
        "RescaleSlope",
        "RescaleIntercept",
        "WindowCenter",
        "WindowWidth",
    ]

    def pydicom_values_loop() -> None:
        for p in paths:
            ds = pydicom.dcmread(p, stop_before_pixels=True)
            for keyword in stored:
                ds.get(keyword)

    def ours() -> None:
        store = tempfile.mkdtemp(prefix="bench-index-")
        try:
            summary = index_paths(store, [folder])
            assert summary.instances_added == len(paths), summary.line()
        finally:
            shutil.rmtree(store)

    def ours_pool() -> None:
        index_module.PARALLEL_THRESHOLD = 2
        try:
            ours()
        finally:
            index_module.PARALLEL_THRESHOLD = PARALLEL_THRESHOLD

    workers = min(os.cpu_count() or 1, 8)

    def parse_pydicom() -> None:
        for p in paths:
            read_header_pydicom(p)

    def parse_serial() -> None:
        list(map(_parse_one, stats))

    def parse_threads() -> None:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(_parse_one, stats))

    def parse_processes() -> None:
        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(_parse_one, stats, chunksize=max(4, len(stats) // (workers * 8))))

    n = len(paths)
    methods = [
        ("pydicom dcmread(stop_before_pixels) loop", pydicom_loop),
        ("pydicom loop that also reads the values the index stores", pydicom_values_loop),
        ("ours: index_paths into a new store (with DB writes)", ours),
        (f"ours: index_paths, {workers}-process pool forced on", ours_pool),
        ("ours: read_header only, serial", parse_serial),
        ("ours: read_header through pydicom only (fallback path)", parse_pydicom),
        (f"ours: read_header only, {workers} threads", parse_threads),
        (f"ours: read_header only, {workers} processes", parse_processes),
    ]
    times = interleaved([fn for _, fn in methods], args.repeat)
    rows = [(name, statistics.median(spent)) for (name, _), spent in zip(methods, times)]
    ratios = [peer / ours_time for peer, ours_time in zip(times[0], times[2])]
    peer = rows[0][1]
    print(f"{n} files, {os.cpu_count()} CPUs, median of {args.repeat} interleaved rounds")
    print("| what | seconds | files/s | throughput vs pydicom loop |")
    print("| --- | ---: | ---: | ---: |")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.3f} | {n / seconds:.0f} | {peer / seconds:.2f}x |")
    print(
        "index_paths vs pydicom loop, per round: "
        + ", ".join(f"{ratio:.2f}x" for ratio in ratios)
        + f" (load average {os.getloadavg()[0]:.1f})"
    )


if __name__ == "__main__":
    main()
