"""Trust records: content hash over every file; any change voids trust and is named."""

from __future__ import annotations

import json

import torch

from workstation.cli import main as cli_main
from workstation.models import (
    is_trusted,
    list_trusted,
    review_bundle,
    trust,
    trust_status,
    untrust,
)
from workstation.models.hashing import content_digest


def test_unknown_then_trusted_then_forgotten(make_bundle, store):
    bundle = make_bundle()
    assert trust_status(bundle, store).state == "unknown"
    status = trust(bundle, store)
    assert status.kind == "bundle" and status.name == "Tiny spleen CT segmentation"
    assert is_trusted(bundle, store)
    assert untrust(bundle, store)
    assert not is_trusted(bundle, store)
    assert not untrust(bundle, store)


def test_each_kind_of_change_voids_trust_naming_the_file(make_bundle, store):
    bundle = make_bundle()
    trust(bundle, store)
    torch.save({"weights": torch.zeros(1)}, bundle / "models" / "model.pt")
    (bundle / "scripts").mkdir()
    (bundle / "scripts" / "extra.py").write_text("print('hi')\n")
    (bundle / "configs" / "metadata.json").unlink()

    status = trust_status(bundle, store)
    assert status.state == "changed"
    assert status.changes == (
        "models/model.pt changed",
        "scripts/extra.py added",
        "configs/metadata.json removed",
    )


def test_renaming_a_file_changes_the_digest(tmp_path):
    folder = tmp_path / "b"
    folder.mkdir()
    (folder / "a.txt").write_text("same bytes")
    before = content_digest(folder).sha256
    (folder / "a.txt").rename(folder / "b.txt")
    assert content_digest(folder).sha256 != before


def test_checkpoint_file_can_be_trusted(tmp_path, store):
    checkpoint = tmp_path / "weights.pt"
    torch.save({"w": torch.ones(2)}, checkpoint)
    assert trust(checkpoint, store).kind == "checkpoint"
    assert is_trusted(checkpoint, store)
    checkpoint.write_bytes(checkpoint.read_bytes() + b"\0")
    assert trust_status(checkpoint, store).changes == ("weights.pt changed",)


def test_ls_reports_states_as_json(make_bundle, store, capsys):
    kept, edited, deleted = make_bundle("kept"), make_bundle("edited"), make_bundle("deleted")
    for bundle in (kept, edited, deleted):
        assert cli_main(["--store", str(store), "models", "trust", str(bundle)]) == 0
    (edited / "configs" / "inference.json").write_text("{}")
    for path in deleted.rglob("*"):
        if path.is_file():
            path.unlink()
    for path in sorted(deleted.rglob("*"), reverse=True):
        path.rmdir()
    deleted.rmdir()
    capsys.readouterr()

    assert cli_main(["--store", str(store), "models", "ls", "--json"]) == 0
    listing = {row["path"]: row for row in json.loads(capsys.readouterr().out)}
    assert listing[str(kept)]["state"] == "trusted"
    assert listing[str(edited)]["state"] == "changed"
    assert listing[str(edited)]["changes"] == ["configs/inference.json changed"]
    assert listing[str(deleted)]["state"] == "missing"
    assert [status.state for status in list_trusted(store)] == ["missing", "changed", "trusted"]

    assert cli_main(["--store", str(store), "models", "untrust", str(deleted)]) == 0
    assert len(list_trusted(store)) == 2


def test_trust_of_a_missing_path_is_a_clear_error(tmp_path, store, capsys):
    assert cli_main(["--store", str(store), "models", "trust", str(tmp_path / "nope")]) == 1
    assert "no such bundle folder or checkpoint file" in capsys.readouterr().err


def test_review_lists_code_without_running_it(make_bundle):
    bundle = make_bundle(
        network_def={"_target_": "os.system", "command": "echo hi"},
        files={"scripts/__init__.py": "", "configs/train.yaml": "a: 1\n"},
    )
    review = review_bundle(bundle)
    assert ("configs/inference.json#imports::0", "$import glob") in review.imports
    assert ("configs/inference.json#network_def", "os.system") in review.targets
    assert ("configs/inference.json#run::0", "$@evaluator.run()") in review.expressions
    assert review.python_files == ["scripts/__init__.py"]
    assert review.unreadable == ["configs/train.yaml"]
    assert "os.system" in review.render()


def test_code_in_a_symlinked_folder_is_covered(make_bundle, store, tmp_path):
    outside = tmp_path / "shared-scripts"
    outside.mkdir()
    (outside / "helpers.py").write_text("VALUE = 1\n")
    bundle = make_bundle()
    (bundle / "scripts").symlink_to(outside, target_is_directory=True)
    (outside / "loop").symlink_to(outside, target_is_directory=True)  # a cycle must not hang
    trust(bundle, store)
    (outside / "helpers.py").write_text("VALUE = 2\n")
    assert trust_status(bundle, store).changes == ("scripts/helpers.py changed",)
