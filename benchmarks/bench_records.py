"""Records benchmarks, each against a peer in the same run.

1. Import throughput: `records import` of an NDJSON file of N observations (default 100k, over
   10 patients) vs parsing the same file with fhir.resources (R4B models) alone. Ratio = ours / peer
   in resources per second: the share of bare validation speed the full import keeps (it also
   resolves references, hashes, and writes SQLite in one transaction).
2. `records show` for a patient with N/10 observations (10k by default; goal < 50 ms): the
   timeline query (arrays per code) and the full `show --json` payload, vs a bare SQL fetch of the
   same observation rows (the floor any query has to pay).
3. RNN inference per patient (when the records_rnn plugin is installed): the whole analysis
   (load the timeline, bin it, GRU forward, integrated gradients with 32 steps) vs the bare GRU
   forward pass on the same, already-binned features.

Run: .venv/bin/python benchmarks/bench_records.py [--observations 100000] [--json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from workstation.records import RecordsStore, import_paths

PATIENTS = 10
CODES = (("2160-0", "mg/dL"), ("2339-0", "mg/dL"), ("8480-6", "mm[Hg]"), ("29463-7", "kg"))


def write_observations(path: Path, count: int) -> None:
    """Patients then `count` observations, as a bulk export's NDJSON."""
    with path.open("w", encoding="utf-8") as out:
        for p in range(PATIENTS):
            out.write(
                json.dumps(
                    {
                        "resourceType": "Patient",
                        "id": f"bench-{p}",
                        "identifier": [
                            {
                                "type": {
                                    "coding": [
                                        {
                                            "system": "http://terminology.hl7.org/CodeSystem/v2-0203",
                                            "code": "MR",
                                        }
                                    ]
                                },
                                "system": "urn:bench",
                                "value": f"MRN-BENCH-{p}",
                            }
                        ],
                        "gender": "female",
                        "birthDate": "1960-01-01",
                    }
                )
                + "\n"
            )
        for i in range(count):
            code, unit = CODES[i % len(CODES)]
            seconds = 1_500_000_000 + i * 600
            stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))
            out.write(
                json.dumps(
                    {
                        "resourceType": "Observation",
                        "id": f"obs-{i}",
                        "status": "final",
                        "category": [
                            {
                                "coding": [
                                    {
                                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                                        "code": "laboratory",
                                    }
                                ]
                            }
                        ],
                        "code": {"coding": [{"system": "http://loinc.org", "code": code}]},
                        "subject": {"reference": f"Patient/bench-{i % PATIENTS}"},
                        "effectiveDateTime": stamp,
                        "valueQuantity": {
                            "value": round(1 + (i % 97) / 10, 2),
                            "unit": unit,
                            "system": "http://unitsofmeasure.org",
                            "code": unit,
                        },
                    }
                )
                + "\n"
            )


def parse_only(path: Path) -> int:
    """The peer: every line parsed and validated by fhir.resources, nothing else."""
    from fhir.resources.R4B import get_fhir_model_class

    count = 0
    with path.open("rb") as handle:
        for line in handle:
            raw = json.loads(line)
            get_fhir_model_class(raw["resourceType"]).model_validate(raw)
            count += 1
    return count


def bench_rnn(store_dir: Path, patient: str, repeats: int) -> dict[str, float]:
    """Per-patient RNN analysis time vs the bare network call; {} without the plugin."""
    try:
        import torch
        from workstation_records_rnn import plugin
        from workstation_records_rnn.config import ANALYSIS_ID
        from workstation_records_rnn.features import history_from_timeline, to_sequence
        from workstation_records_rnn.inference import run
        from workstation_records_rnn.model import load_checkpoint
    except ImportError:
        return {}
    from workstation.plugins.api import AnalysisInputs, RunContext
    from workstation.plugins.declarations import resolve_weights
    from workstation.records import load_patient_records

    torch.set_num_threads(1)
    weights = Path(resolve_weights(plugin.workstation_analyses()[0].weights))
    inputs = AnalysisInputs(
        patient_id=patient, records=lambda: load_patient_records(store_dir, patient)
    )
    ctx = RunContext(ANALYSIS_ID, {"ig_steps": 32}, inputs, weights=weights)
    model, _ = load_checkpoint(weights, torch.device("cpu"))
    x = torch.from_numpy(to_sequence(history_from_timeline(inputs.records()))[1])[None]

    def bare() -> None:
        with torch.no_grad():
            model(x)

    ours, peer = median_ms(lambda: run(ctx), repeats), median_ms(bare, repeats)
    return {
        "rnn_bins": int(x.shape[1]),
        "rnn_analysis_ms": ours,
        "rnn_bare_forward_ms": peer,
        "rnn_analysis_vs_forward_ratio": ours / peer,
    }


def median_ms(fn, repeats: int) -> float:
    fn()  # warm
    samples = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - start) * 1000)
    return statistics.median(samples)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--observations", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results: dict[str, float | int] = {"observations": args.observations}
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "Observation.ndjson"
        write_observations(data, args.observations)
        resources = args.observations + PATIENTS

        start = time.perf_counter()
        assert parse_only(data) == resources
        peer = time.perf_counter() - start

        start = time.perf_counter()
        summary = import_paths(Path(tmp) / "store", [data])
        ours = time.perf_counter() - start
        assert summary.ok and summary.total("added") == resources, summary.to_dict()

        results.update(
            import_resources_per_s=resources / ours,
            parse_only_resources_per_s=resources / peer,
            import_vs_parse_ratio=peer / ours,
        )
        with RecordsStore(Path(tmp) / "store") as store:
            patient = "MRN-BENCH-0"
            per_patient = store.timeline(patient).observations
            results["patient_observations"] = sum(s.times.size for s in per_patient.values())
            results["timeline_ms"] = median_ms(lambda: store.timeline(patient), args.repeats)
            results["show_json_ms"] = median_ms(
                lambda: json.dumps(store.record(patient), default=str), args.repeats
            )
            results["bare_sql_ms"] = median_ms(
                lambda: store.db.query(
                    "SELECT code, t, value, unit FROM records_observations WHERE patient_id = ? "
                    "ORDER BY code, t",
                    ("bench-0",),
                ),
                args.repeats,
            )
            results["timeline_vs_bare_sql_ratio"] = results["timeline_ms"] / results["bare_sql_ms"]
        results.update(bench_rnn(Path(tmp) / "store", "MRN-BENCH-0", args.repeats))
    if args.json:
        print(json.dumps(results, indent=2))
    else:
        for key, value in results.items():
            print(f"{key:30} {value:12.2f}" if isinstance(value, float) else f"{key:30} {value:12}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
