"""The wheel as `python -m build` makes it, and a wheelhouse: a folder of the wheels it depends on, so that
a fresh virtual environment installs it with `pip install --no-index --find-links` (what the VS Code
extension's offline setting, codesieve.setup.wheelhouse, does too).

The wheelhouse holds the runtime dependencies at the versions this environment has, as binary wheels
only (`pip download --only-binary=:all:`: a dependency that would need a compiler fails here), fetched
once from the package index into ~/.cache/codesieve-e2e/wheelhouse/KEY ($CODESIEVE_E2E_CACHE moves the
folder) and reused offline afterwards. KEY changes with the interpreter, the wheel's requirements and
the pinned versions. hnswlib is not in it: it publishes no wheels, which is why it is an extra.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def cache_folder() -> Path:
    """Where the editor tests keep what they install once (the setup script's folder)."""
    return Path(os.environ.get("CODESIEVE_E2E_CACHE") or Path.home() / ".cache" / "codesieve-e2e")


def without_pip_configuration(env: Mapping[str, str]) -> dict[str, str]:
    """`env` without pip's configuration (index mirrors, find-links, constraints), so that an install
    finds packages only where its command line says."""
    kept = {key: value for key, value in env.items() if not key.startswith("PIP_")}
    return {**kept, "PIP_CONFIG_FILE": os.devnull, "PIP_DISABLE_PIP_VERSION_CHECK": "1"}


def offline_pip_env() -> dict[str, str]:
    """This process's environment for another Python: no pip configuration, no virtual environment, no
    PYTHONPATH."""
    env = without_pip_configuration(os.environ)
    env.pop("VIRTUAL_ENV", None)
    env.pop("PYTHONPATH", None)
    return env


def build_wheel(outdir: Path) -> Path:
    """`python -m build --no-isolation` (the build backend from this environment: no network): the sdist,
    then the wheel built from it. Returns the wheel."""
    done = subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(outdir), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"python -m build failed ({done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr}"
        )
    (wheel,) = outdir.glob("codesieve-*.whl")
    return wheel


def _requirements(wheel: Path) -> list[str]:
    """The wheel's Requires-Dist lines (its extras' included: they only matter when asked for)."""
    with zipfile.ZipFile(wheel) as archive:
        (name,) = (name for name in archive.namelist() if name.endswith(".dist-info/METADATA"))
        text = archive.read(name).decode("utf-8")
    return [line for line in text.splitlines() if line.startswith("Requires-Dist:")]


def _pins() -> list[str]:
    """`name==version` for every distribution this test process can import, codesieve excepted."""
    pins: dict[str, str] = {}
    for distribution in metadata.distributions():  # in sys.path order: the first of a name is the one used
        name = (distribution.metadata["Name"] or "").lower().replace("_", "-")
        if name and name != "codesieve":
            pins.setdefault(name, f"{name}=={distribution.version}")
    return sorted(pins.values())


def runtime_wheelhouse(python: str, wheel: Path) -> Path:
    """The wheels `wheel` needs (at this environment's versions) for `python`, downloaded once."""
    interpreter = subprocess.run(
        [
            python,
            "-c",
            "import sys, sysconfig; print(sys.implementation.cache_tag, sysconfig.get_platform())",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.strip()
    pins = _pins()
    key = hashlib.sha256("\n".join([interpreter, *_requirements(wheel), *pins]).encode()).hexdigest()[:16]
    folder = cache_folder() / "wheelhouse" / key
    if folder.is_dir():
        return folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=folder.parent, prefix=f".{key}-") as partial:
        constraints = Path(partial) / "constraints.txt"
        constraints.write_text("\n".join(pins) + "\n", encoding="utf-8")
        wheels = Path(partial) / "wheels"
        command = [python, "-m", "pip", "download", "--only-binary=:all:", "-q", "-d", str(wheels)]
        done = subprocess.run(
            [*command, "-c", str(constraints), str(wheel)], capture_output=True, text=True, timeout=900
        )
        if done.returncode != 0:
            raise RuntimeError(
                f"downloading the wheels codesieve needs failed ({done.returncode}); the first run needs the "
                f"package index:\n{done.stderr[-3000:]}"
            )
        for own in wheels.glob("codesieve-*.whl"):
            own.unlink()  # the wheel under test comes from its own path
        try:
            wheels.rename(folder)
        except OSError:  # another run finished it first
            shutil.rmtree(wheels, ignore_errors=True)
    return folder
