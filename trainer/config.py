"""Training configs on the command line and on disk.

Each training loop owns a config dataclass whose fields are `option(default, help)`: the default
and the ``--help`` text of the setting, declared together. `add_config_arguments` turns those
fields into ``--flags``, so the dataclass stays the one place a setting is described;
`config_to_json` and `config_from_json` store a config beside the checkpoint it made.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import typing
from typing import Any, TypeVar

Config = TypeVar("Config")
Value = TypeVar("Value", str, int, float, bool)


def option(default: Value, text: str) -> Value:
    """A config field: its default and its ``--help`` text."""
    declared: Value = dataclasses.field(default=default, metadata={"help": text})
    return declared


def add_config_arguments(parser: argparse.ArgumentParser, cls: type, skip: tuple[str, ...] = ()) -> None:
    """One ``--flag`` per dataclass field (underscores become dashes), its help the field's; defaults
    are left unset (None) so that `config_from_args` can tell what was given. Fields `cls` inherits
    without declaring them again are listed after its own, in a group of their own."""
    hints = typing.get_type_hints(cls)
    own = inspect.get_annotations(cls)
    order = {name: position for position, name in enumerate(own)}
    fields = sorted(dataclasses.fields(cls), key=lambda item: order.get(item.name, len(order)))
    inherited = parser.add_argument_group("settings every training run has")
    for item in fields:
        target = parser if item.name in own else inherited
        if item.name in skip:
            continue
        if "help" not in item.metadata:
            raise TypeError(f"{cls.__name__}.{item.name} has no help: declare it with option(default, help)")
        flag = "--" + item.name.replace("_", "-")
        kind = hints[item.name]
        text = f"{item.metadata['help']} (default: {item.default!r})".replace("%", "%%")
        if kind is bool:
            target.add_argument(
                flag, dest=item.name, action=argparse.BooleanOptionalAction, default=None, help=text
            )
        else:
            base = kind if kind in (int, float, str) else str
            target.add_argument(
                flag, dest=item.name, type=base, default=None, help=text, metavar=item.name.upper()
            )


def config_from_args(cls: type[Config], args: argparse.Namespace, base: Config | None = None) -> Config:
    """A config with the flags that were given applied over `base` (default: the dataclass defaults)."""
    start = base if base is not None else cls()
    changes = {
        item.name: getattr(args, item.name)
        for item in dataclasses.fields(start)  # type: ignore[arg-type]
        if getattr(args, item.name, None) is not None
    }
    return dataclasses.replace(start, **changes)  # type: ignore[type-var]


def config_to_json(config: Any) -> dict[str, Any]:
    """The config as a JSON-ready dict."""
    return dict(dataclasses.asdict(config))


def config_from_json(cls: type[Config], data: dict[str, Any]) -> Config:
    """A config from a stored dict; unknown keys (from another version) are ignored."""
    names = {item.name for item in dataclasses.fields(cls)}  # type: ignore[arg-type]
    return cls(**{key: value for key, value in data.items() if key in names})
