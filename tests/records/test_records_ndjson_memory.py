"""A large NDJSON export is streamed: memory stays far below the file's size."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path
from types import SimpleNamespace

from workstation.records import RecordsStore, import_paths


def test_ndjson_import_memory_is_bounded_by_a_line_not_the_file(
    fhir: SimpleNamespace, store: Path, tmp_path: Path
) -> None:
    path = tmp_path / "Observation.ndjson"
    note = "x" * 5200  # a long annotation makes the file big without many resources
    count = 2000
    with path.open("w", encoding="utf-8") as handle:
        handle.write(json.dumps(fhir.patient()) + "\n")
        for i in range(count):
            resource = fhir.observation(
                f"o{i}", value=float(i), when=f"20{10 + i % 10}-01-01T00:00:{i % 60:02d}Z"
            )
            resource["note"] = [{"text": note}]
            handle.write(json.dumps(resource) + "\n")
    size = path.stat().st_size
    assert size > 10_000_000

    # warm up: the first import loads fhir.resources' models, which is not per-file memory
    warm = [fhir.patient("w"), fhir.observation("w1", subject="Patient/w")]
    import_paths(store, [fhir.write_ndjson(tmp_path / "warm.ndjson", warm)])
    tracemalloc.start()
    try:
        summary = import_paths(store, [path])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert summary.total("added") == count + 1 and summary.ok
    assert peak < 2_000_000, f"peak Python memory {peak} bytes for a {size} byte file"
    with RecordsStore(store) as records:
        assert records.timeline("p1").observations["2160-0"].times.size == count
