"""Declarations: parameters coerce CLI strings and reject bad values with messages naming them."""

from __future__ import annotations

import argparse

import pytest

from workstation.plugins.api import (
    AnalysisSpec,
    DeclarationError,
    InputKind,
    Parameter,
    ParameterError,
    ReaderSpec,
)
from workstation.plugins.declarations import add_parameter_arguments, resolve_weights
from workstation.plugins.version import incompatibility


def spec(**kw) -> AnalysisSpec:
    base = dict(
        id="seg.liver", title="Liver", version="1.0", entry="pkg.model:run", returns=["label_map"]
    )
    base.update(kw)
    return AnalysisSpec(**base)


@pytest.mark.parametrize(
    ("parameter", "text", "expected"),
    [
        (Parameter("n", "int", default=1, help="h"), "42", 42),
        (Parameter("n", "int", default=1, help="h"), 3.0, 3),
        (Parameter("x", "float", default=0.5, help="h"), "-1e2", -100.0),
        (Parameter("flag", "bool", default=False, help="h"), "yes", True),
        (Parameter("flag", "bool", default=True, help="h"), "0", False),
        (
            Parameter("mode", "choice", default="fast", choices=["fast", "exact"], help="h"),
            "exact",
            "exact",
        ),
        (Parameter("name", "str", default="", help="h"), 12, "12"),
    ],
)
def test_parameter_coerces_cli_strings(
    parameter: Parameter, text: object, expected: object
) -> None:
    value = parameter.coerce(text)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    ("parameter", "text", "message"),
    [
        (Parameter("n", "int", default=1, help="h"), "4.5", "'n': '4.5' is not a valid int"),
        (
            Parameter("n", "int", default=1, max=10, help="h"),
            "11",
            "'n': 11 is above the maximum 10",
        ),
        (
            Parameter("x", "float", default=0.0, min=-1, help="h"),
            "-2",
            "'x': -2.0 is below the minimum -1",
        ),
        (Parameter("x", "float", default=0.0, help="h"), "nan", "not a valid float"),
        (
            Parameter("flag", "bool", default=False, help="h"),
            "maybe",
            "'flag': 'maybe' is not a valid bool",
        ),
        (
            Parameter("m", "choice", default="a", choices=["a", "b"], help="h"),
            "c",
            "not one of a, b",
        ),
        (Parameter("n", "int", default=1, help="h"), True, "not a valid int"),
    ],
)
def test_parameter_rejects_bad_values_naming_the_parameter(parameter, text, message) -> None:
    with pytest.raises(ParameterError) as caught:
        parameter.coerce(text)
    assert f"parameter {parameter.name!r}" in str(caught.value)
    assert message in str(caught.value)


def test_coerce_parameters_fills_defaults_and_rejects_unknown_names() -> None:
    s = spec(
        parameters=[
            Parameter("lower", "float", default=-100, help="h"),
            Parameter("size", "int", default=10, min=1, help="h"),
        ]
    )
    assert s.coerce_parameters({"size": "3"}) == {"lower": -100.0, "size": 3}
    with pytest.raises(ParameterError, match="has no parameter 'sise'; did you mean 'size'"):
        s.coerce_parameters({"sise": "3"})


def test_parameter_without_default_must_be_given() -> None:
    s = spec(parameters=[Parameter("weights", "str", help="checkpoint file")])
    with pytest.raises(ParameterError, match="'weights' has no default"):
        s.coerce_parameters({})
    assert s.coerce_parameters({"weights": "/m.pt"}) == {"weights": "/m.pt"}


@pytest.mark.parametrize(
    ("kw", "message"),
    [
        ({"id": "Liver Seg"}, "dotted lower-case"),
        ({"id": "liver"}, "dotted lower-case"),
        ({"entry": "pkg.model.run"}, "must be 'module:function'"),
        ({"returns": ["label_map", "mesh"]}, "unknown result kinds ['mesh']"),
        ({"device": "gpu"}, "device 'gpu' is not one of cpu, prefers_gpu, needs_gpu"),
        ({"inputs": ["image"]}, "'image' is not a valid InputKind"),
        ({"timeout": 0}, "timeout must be positive"),
        (
            {"parameters": [Parameter("a", "int", default=1), Parameter("a", "int", default=2)]},
            "repeat",
        ),
    ],
)
def test_bad_declarations_say_which_field(kw, message) -> None:
    with pytest.raises(DeclarationError) as caught:
        spec(**kw)
    assert message in str(caught.value)


def test_bad_parameter_declarations() -> None:
    with pytest.raises(DeclarationError, match="choice needs `choices`"):
        Parameter("m", "choice", default="a")
    with pytest.raises(
        DeclarationError, match="default of parameter 'n': 20 is above the maximum 5"
    ):
        Parameter("n", "int", default=20, max=5)
    with pytest.raises(DeclarationError, match="type 'double'"):
        Parameter("n", "double")


def test_inputs_accept_strings_and_kinds() -> None:
    s = spec(inputs=["image_series", InputKind.PATIENT_RECORDS])
    assert s.inputs == (InputKind.IMAGE_SERIES, InputKind.PATIENT_RECORDS)
    assert s.to_dict()["inputs"] == ["image_series", "patient_records"]


def test_reader_matches_longest_extension_case_insensitively() -> None:
    reader = ReaderSpec(id="nifti", title="NIfTI", extensions=[".nii", ".NII.GZ"], entry="r:read")
    assert reader.matches("/data/CT.nii.gz") and reader.matches("a.NII")
    assert not reader.matches("a.nrrd")
    with pytest.raises(DeclarationError, match=r"must start with '\.'"):
        ReaderSpec(id="x", title="X", extensions=["nrrd"], entry="r:read")


def test_argparse_flags_generated_from_parameters() -> None:
    s = spec(
        parameters=[
            Parameter("lower", "float", default=-100, min=-1024, help="lowest HU"),
            Parameter(
                "keep_largest", "bool", default=False, help="keep only the largest component"
            ),
            Parameter("mode", "choice", default="fast", choices=["fast", "exact"], help="speed"),
        ]
    )
    parser = argparse.ArgumentParser()
    add_parameter_arguments(parser, s)
    args = parser.parse_args(["--lower", "50", "--keep-largest", "yes", "--mode", "exact"])
    assert vars(args) == {"lower": 50.0, "keep_largest": True, "mode": "exact"}
    assert vars(parser.parse_args([])) == {"lower": -100.0, "keep_largest": False, "mode": "fast"}
    with pytest.raises(SystemExit):
        parser.parse_args(["--lower", "-2000"])


def test_weights_from_package_resource_or_path(tmp_path) -> None:
    assert resolve_weights("workstation.core:results.py").name == "results.py"
    assert resolve_weights("workstation.core:results.py").exists()
    assert resolve_weights(str(tmp_path / "m.pt")) == tmp_path / "m.pt"
    assert resolve_weights(None) is None


@pytest.mark.parametrize(
    ("declared", "accepted"),
    [
        ("1.0", True),
        ("1", True),
        ("0.9", False),
        ("2.0", False),
        ("1.7", False),
        (None, False),
        ("one", False),
    ],
)
def test_api_version_compatibility(declared, accepted) -> None:
    why = incompatibility(declared, "1.0")
    assert (why is None) == accepted
    if declared not in (None, "one") and not accepted:
        assert f"plugin API {declared}" in why and "implements plugin API 1.0" in why


def test_a_plugin_without_a_version_is_told_the_versions_this_host_accepts(monkeypatch) -> None:
    from workstation.plugins import version

    monkeypatch.setitem(version.MINOR_ADDITIONS, 2, "AnalysisSpec.some_later_field")
    newer = incompatibility(None, "1.2")
    assert '"1.2" if it uses AnalysisSpec.some_later_field' in newer
    assert '"1.1" if it uses AnalysisSpec.train_entry' in newer and '"1.0"' in newer
    # a 1.0 host would refuse "1.1": it is not suggested there
    older = incompatibility(None, "1.0")
    assert '"1.0"' in older and '"1.1"' not in older and "implements plugin API 1.0" in older
