"""Index throughput: `index_paths` (walk + parallel header parsing + database writes) against a
plain pydicom ``dcmread(stop_before_pixels=True)`` loop over the same files, in the same run.

Also times header parsing alone serially, with threads and with processes, which is how the index
chose a process pool. Run from the checkout:

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

from workstation.dicom.index import _FileStat, _parse_one, index_paths  # noqa: E402
from workstation.dicom.index_samples import write_series  # noqa: E402


def series_folder(files: int) -> Path:
    folder = HERE / "data" / f"index-ct-{files}"
    marker = folder / ".complete"
    if not marker.exists():
        shutil.rmtree(folder, ignore_errors=True)
        write_series(folder, slices=files, rows=512, columns=512, file_prefix="ct")
        marker.write_text("ok\n")
    return folder


def timed(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


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

    workers = min(os.cpu_count() or 1, 8)

    def parse_serial() -> None:
        list(map(_parse_one, stats))

    def parse_threads() -> None:
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(_parse_one, stats))

    def parse_processes() -> None:
        with ProcessPoolExecutor(workers) as pool:
            list(pool.map(_parse_one, stats, chunksize=max(4, len(stats) // (workers * 8))))

    n = len(paths)
    rows = [
        ("pydicom dcmread(stop_before_pixels) loop", timed(pydicom_loop, args.repeat)),
        (
            "pydicom loop that also reads the values the index stores",
            timed(pydicom_values_loop, args.repeat),
        ),
        ("ours: index_paths into a new store (with DB writes)", timed(ours, args.repeat)),
        ("ours: read_header only, serial", timed(parse_serial, args.repeat)),
        (f"ours: read_header only, {workers} threads", timed(parse_threads, args.repeat)),
        (f"ours: read_header only, {workers} processes", timed(parse_processes, args.repeat)),
    ]
    peer = rows[0][1]
    print(f"{n} files, {os.cpu_count()} CPUs, median of {args.repeat}")
    print("| what | seconds | files/s | throughput vs pydicom loop |")
    print("| --- | ---: | ---: | ---: |")
    for name, seconds in rows:
        print(f"| {name} | {seconds:.3f} | {n / seconds:.0f} | {peer / seconds:.2f}x |")


if __name__ == "__main__":
    main()
