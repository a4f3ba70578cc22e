"""Command-line messages a user acts on: a listener port already in use is named, a send
says which files of a series it left out as unusable, and every positional argument of the
pacs subcommands has help text."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pacs_peers import free_port
from pydicom import dcmread
from pydicom.uid import generate_uid

from workstation.cli import build_parser, main
from workstation.dicom.net import Listener, NodeStore

OUR_AE = "WSTEST"
ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.network
def test_listen_on_a_port_in_use_names_the_port(tmp_path):
    port = free_port()
    with Listener(tmp_path / "other", OUR_AE, port, host="127.0.0.1"):
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        result = subprocess.run(
            [sys.executable, "-m", "workstation.cli", "--store", str(tmp_path / "store"),
             "listen", "--port", str(port), "--host", "127.0.0.1"],
            capture_output=True, text=True, timeout=60, env=env,
        )  # fmt: skip
    assert result.returncode == 1
    assert result.stderr.strip() == (
        f"workstation: error: cannot listen on 127.0.0.1:{port}: the port is already in use "
        "(another workstation listener, or a PACS program on this computer); choose another "
        "with --port"
    )


@pytest.mark.network
def test_send_says_which_files_of_the_series_were_left_out(
    tmp_path, orthanc_factory, ct_series, capsys
):
    from workstation.dicom.index import index_paths

    server = orthanc_factory({"workstation": (OUR_AE, 104)})
    files = ct_series(tmp_path / "src", 3)
    short = dcmread(files[0])
    short.SOPInstanceUID = short.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    short.PixelData = short.PixelData[:100]  # too short for its rows x columns: unusable
    short.save_as(tmp_path / "src" / "short.dcm")
    store = tmp_path / "store"
    index_paths(store, [tmp_path / "src"])
    nodes = NodeStore(store)
    nodes.add("pacs", server.ae_title, "127.0.0.1", server.dicom_port)
    nodes.close()
    series = str(short.SeriesInstanceUID)

    code = main(["--store", str(store), "pacs", "send", "pacs", series, "--ae-title", OUR_AE])
    assert code == 0
    out = capsys.readouterr()
    assert "sent 3 file(s) to pacs" in out.out
    assert "left out 1 file(s) of the series that the store cannot use" in out.err
    assert f"{tmp_path / 'src' / 'short.dcm'}: pixel data holds 100 bytes" in out.err
    assert len(server.rest("/instances")) == 3


def test_every_pacs_positional_argument_has_help():
    parser = build_parser()
    pacs = parser._subparsers._group_actions[0].choices["pacs"]  # type: ignore[union-attr]
    actions = pacs._subparsers._group_actions[0].choices  # type: ignore[union-attr]
    for name, sub in actions.items():
        for action in sub._actions:
            if not action.option_strings and action.dest != "help":
                assert action.help, f"pacs {name}: {action.dest} has no help text"


def test_a_host_that_would_read_as_an_option_is_refused(tmp_path, capsys):
    store = str(tmp_path / "store")
    code = main(["--store", store, "pacs", "add-node", "dash", "ORTHANC", "--", "-evil", "104"])
    assert code == 1
    assert "host '-evil' is not a host name or address" in capsys.readouterr().err
