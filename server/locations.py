"""Where a workspace's index and model live, for the server and `trainer fit` alike.

The index root is the `index_dir` setting, else $CODESIEVE_INDEX_DIR, else the user cache directory;
each workspace has a folder there, named for the folder and keyed by its real path. The model is the
`model` setting, else the one `trainer fit` installed in the workspace's index folder, else the shipped
default. Fit installs where the server looks because both ask this module.
"""

from __future__ import annotations

import hashlib
import os
import re
from pathlib import Path

import platformdirs

from .config import Settings
from .model.folder import default_model_dir

WORKSPACE_MODEL = "model"  # subfolder of a workspace's index folder where `trainer fit` installs


def index_root(config: Settings) -> Path:
    """Where indexes live: the setting, else $CODESIEVE_INDEX_DIR, else the user cache directory."""
    if config.index_dir is not None:
        return config.index_dir
    if os.environ.get("CODESIEVE_INDEX_DIR"):
        return Path(os.environ["CODESIEVE_INDEX_DIR"]).expanduser()
    return Path(platformdirs.user_cache_dir("codesieve")) / "indexes"


def index_folder_for(root: Path, config: Settings) -> Path:
    """The index folder of one workspace: named for the folder, keyed by its real path."""
    key = hashlib.sha1(os.fsencode(root.resolve())).hexdigest()[:12]
    name = re.sub(r"[^\w.-]", "_", root.resolve().name, flags=re.ASCII)[:64]  # hnswlib wants UTF-8 paths
    return index_root(config) / f"{name or 'root'}-{key}"


def resolve_model_dir(root: Path, config: Settings) -> Path:
    """The model folder to use for this workspace (the order of the module doc)."""
    if config.model is not None:
        return config.model
    installed = index_folder_for(root, config) / WORKSPACE_MODEL
    return installed if (installed / "model-card.json").exists() else default_model_dir()
