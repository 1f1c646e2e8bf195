"""`trainer ... --help` shows every setting of a training config with the help declared beside it."""

from __future__ import annotations

import dataclasses
import subprocess
import sys

import pytest

from codesieve.trainer.cli import main
from codesieve.trainer.config import FitConfig, RankerConfig, RetrieverConfig, add_config_arguments, option


def help_text(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *words: str) -> str:
    """What `trainer WORDS --help` prints on a terminal wide enough that no help is wrapped."""
    monkeypatch.setenv("COLUMNS", "10000")
    with pytest.raises(SystemExit) as exited:
        main([*words, "--help"])
    assert exited.value.code == 0
    return capsys.readouterr().out


@pytest.mark.parametrize(
    ("words", "config"),
    [(("train", "retriever"), RetrieverConfig), (("train", "ranker"), RankerConfig), (("fit",), FitConfig)],
)
def test_train_help_lists_every_option_with_its_help(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, words: tuple[str, ...], config: type
) -> None:
    shown = help_text(capsys, monkeypatch, *words)
    for item in dataclasses.fields(config):
        if item.name == "root":  # fit's repository is its positional argument
            continue
        flag = "--" + item.name.replace("_", "-")
        assert f"{item.metadata['help']} (default: {item.default!r})" in shown, flag
        assert f"  {flag}" in shown


def test_a_config_field_without_help_is_refused() -> None:
    import argparse

    @dataclasses.dataclass
    class Undocumented:
        documented: int = option(1, "has help")
        bare: int = 2

    with pytest.raises(TypeError, match=r"Undocumented\.bare has no help"):
        add_config_arguments(argparse.ArgumentParser(), Undocumented)


def test_help_of_every_command_loads_no_torch() -> None:
    code = (
        "import contextlib, io, sys\n"
        "from codesieve.trainer.cli import main\n"
        "for words in (['--help'], ['fit', '--help'], ['train', 'ranker', '--help'], ['train', 'retriever', '--help']):\n"
        "    with contextlib.suppress(SystemExit), contextlib.redirect_stdout(io.StringIO()):\n"
        "        main(words)\n"
        "print(sorted(name for name in ('torch', 'transformers') if name in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
