"""`trainer ... --help` shows every setting of a training config with the help declared beside it."""

from __future__ import annotations

import dataclasses

import pytest

from codesieve.trainer.cli import main
from codesieve.trainer.config import add_config_arguments, option
from codesieve.trainer.fit import FitConfig
from codesieve.trainer.train_ranker import RankerConfig
from codesieve.trainer.train_retriever import RetrieverConfig


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
