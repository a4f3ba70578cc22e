"""The plugin API version the host implements, and the rule for accepting a plugin's."""

from __future__ import annotations

# 1.1 added AnalysisSpec.train_entry / inputs_optional and TrainContext (`workstation train`).
# 1.2 added AnalysisSpec.modalities, RunContext.store_dir and the errors UserFacingError,
# RunRefused and InputRefused.
API_VERSION = "1.2"
API_VERSION_ATTRIBUTE = "WORKSTATION_PLUGIN_API"
MINOR_ADDITIONS = {
    1: "AnalysisSpec.train_entry, inputs_optional or TrainContext",
    2: "AnalysisSpec.modalities, RunContext.store_dir, UserFacingError, RunRefused or InputRefused",
}
"""What each minor version of the 1.x API added: a plugin that uses none of it declares "1.0"."""


def parse_version(text: str) -> tuple[int, int]:
    major, _, minor = str(text).strip().partition(".")
    return int(major), int(minor or 0)


def incompatibility(plugin_version: object, host_version: str = API_VERSION) -> str | None:
    """None when a plugin written for `plugin_version` runs on this host, else why not.

    Same major version, and a minor version no newer than the host's (a newer minor may use
    hooks or fields this host does not have).
    """
    if plugin_version is None:
        major, host_minor = parse_version(host_version)
        notes = [
            f'"{major}.{minor}" if it uses {MINOR_ADDITIONS[minor]}'
            for minor in range(host_minor, 0, -1)  # newest first: a plugin declares the newest
            if minor in MINOR_ADDITIONS
        ]
        notes.append(f"this workstation implements plugin API {host_version}")
        return (
            f'declares no {API_VERSION_ATTRIBUTE}; add {API_VERSION_ATTRIBUTE} = "{major}.0" to '
            f"the plugin module ({'; '.join(notes)})"
        )
    try:
        plugin = parse_version(str(plugin_version))
    except ValueError:
        return f"{API_VERSION_ATTRIBUTE} = {plugin_version!r} is not a version like '1.0'"
    host = parse_version(host_version)
    if plugin[0] != host[0] or plugin[1] > host[1]:
        return (
            f"written for plugin API {plugin_version}, but this workstation implements plugin "
            f"API {host_version}"
        )
    return None
