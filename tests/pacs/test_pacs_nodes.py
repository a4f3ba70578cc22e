"""`workstation pacs add-node / nodes / remove-node`: nodes live in the store."""

from __future__ import annotations

import json

from workstation.cli import main


def test_add_list_and_remove_nodes(tmp_path, capsys):
    store = ["--store", str(tmp_path / "store")]
    assert main([*store, "pacs", "add-node", "main-pacs", "PACS01", "10.0.0.5", "104"]) == 0
    assert main([*store, "pacs", "add-node", "ct", "CT_SCANNER", "ct.local", "4006"]) == 0
    capsys.readouterr()
    assert main([*store, "pacs", "nodes", "--json"]) == 0
    nodes = json.loads(capsys.readouterr().out)
    assert nodes == [
        {"name": "ct", "ae_title": "CT_SCANNER", "host": "ct.local", "port": 4006},
        {"name": "main-pacs", "ae_title": "PACS01", "host": "10.0.0.5", "port": 104},
    ]
    assert main([*store, "pacs", "remove-node", "ct"]) == 0
    capsys.readouterr()
    assert main([*store, "pacs", "nodes"]) == 0
    out = capsys.readouterr().out
    assert "main-pacs" in out and "CT_SCANNER" not in out


def test_bad_node_input_is_refused_with_a_clear_message(tmp_path, capsys):
    store = ["--store", str(tmp_path / "store")]
    assert main([*store, "pacs", "add-node", "x", "A\\B", "h", "104"]) == 1
    assert "AE title 'A\\\\B' is not valid" in capsys.readouterr().err
    assert main([*store, "pacs", "add-node", "x", "TOO_LONG_AE_TITLE_X", "h", "104"]) == 1
    assert "not valid" in capsys.readouterr().err
    assert main([*store, "pacs", "add-node", "x", "AE", "h", "70000"]) == 1
    assert "out of range" in capsys.readouterr().err
    assert main([*store, "pacs", "add-node", "x", "AE", "h", "104"]) == 0
    assert main([*store, "pacs", "add-node", "x", "AE2", "h", "105"]) == 1
    assert "already exists" in capsys.readouterr().err
    assert main([*store, "pacs", "remove-node", "nope"]) == 1
    assert "no node named 'nope'" in capsys.readouterr().err
    assert main([*store, "pacs", "echo", "nope"]) == 1
    assert "no node named 'nope' (known: x)" in capsys.readouterr().err
