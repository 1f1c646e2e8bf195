"""Settings: one converter checks them, and the editor extension declares exactly those the server accepts."""

from __future__ import annotations

import json
from dataclasses import MISSING
from pathlib import Path
from typing import Any

import pytest
from helpers import REPO

from codesieve.server.config import SETTINGS, Settings, from_mapping, setting_name

# Settings of the VS Code client itself: how to start the server, how many results to ask for,
# vscode-languageclient's protocol trace, whether agent mode gets the MCP server, and where the setup of
# its own environment finds wheels.
# editor-client/src/settings.ts sends the server all but these.
CLIENT_ONLY = {
    "pythonPath",
    "serverCommand",
    "resultLimit",
    "trace.server",
    "mcp.enabled",
    "setup.wheelhouse",
}


def _declared() -> dict[str, dict[str, Any]]:
    manifest = json.loads((REPO / "editor-client" / "package.json").read_text(encoding="utf-8"))
    configuration = manifest["contributes"]["configuration"]
    sections = configuration if isinstance(configuration, list) else [configuration]
    return {
        key.removeprefix("codesieve."): schema
        for section in sections
        for key, schema in section["properties"].items()
    }


def test_the_extension_declares_every_setting_the_server_accepts_and_no_other() -> None:
    assert set(_declared()) - CLIENT_ONLY == set(SETTINGS)


@pytest.mark.parametrize("name", sorted(SETTINGS))
def test_the_extension_declares_the_server_default_and_bounds(name: str) -> None:
    schema, spec = _declared()[name], SETTINGS[name]
    if spec.default is MISSING:  # computed on the machine (threads): the editor leaves it to the server
        assert schema["default"] is None
    else:
        assert schema["default"] == {None: "", (): []}.get(spec.default, spec.default)
    if "bounds" in spec.metadata:
        assert (schema["minimum"], schema["maximum"]) == spec.metadata["bounds"]


def test_setting_names_are_the_fields_in_camel_case() -> None:
    assert setting_name("index_dir") == "indexDir" and setting_name("model") == "model"
    assert SETTINGS["pollInterval"].name == "poll_interval"


def test_invalid_and_unknown_settings_keep_the_default_and_say_why() -> None:
    config, errors = from_mapping({"rerankDepth": -3, "exclude": "nope", "threads": 2, "colour": "blue"})
    assert config.rerank_depth == 10 and config.exclude == () and config.threads == 2
    assert len(errors) == 3 and any("colour" in error for error in errors)


def test_a_rerank_depth_above_the_retrieve_depth_is_cut_to_it() -> None:
    config, errors = from_mapping({"retrieveDepth": 5, "rerankDepth": 8})
    assert config.rerank_depth == 5 and errors


def test_a_poll_interval_is_seconds_and_reopens_no_folder() -> None:
    config, errors = from_mapping({"pollInterval": 0.5})
    assert config.poll_interval == 0.5 and not errors and config.same_workspaces(Settings())
    config, errors = from_mapping({"pollInterval": True})
    assert config.poll_interval == 3.0 and "pollInterval must be a number from 0.0 to 3600.0" in errors[0]


def test_paths_expand_the_home_folder_and_empty_means_default() -> None:
    config, errors = from_mapping({"model": "~/models/mine", "indexDir": ""})
    assert config.model == Path("~/models/mine").expanduser() and config.index_dir is None and not errors
