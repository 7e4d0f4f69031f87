"""Help text that names values the way a person does (``FILE``, ``N``), never Python types.

Typer labels an option without a ``metavar`` with its Python type (``<bool>`` for a flag,
``<list[str]>``, ``<path>``), which means nothing to someone reading ``--help``. The root group
of the app is :class:`HelpGroup`; every command it hands out (and every command of a sub-group,
recursively) gets, once, a value name for each parameter that has none: nothing for a flag,
``FILE`` for a path, ``N`` for a number, the choices for a choice, ``TEXT`` otherwise. A command
that sets its own ``metavar`` keeps it.
"""

from __future__ import annotations

import enum
import typing
from pathlib import PurePath
from typing import Any

from typer.core import TyperArgument, TyperGroup, TyperOption

__all__ = ["HelpGroup", "label_parameters"]

_LABELLED = "_grpcsec_labelled"


def _value_name(param: Any) -> str:  # noqa: ANN401 (a Typer/Click parameter)
    """By duck type: Typer vendors its own copy of Click, and newer Typers describe a parameter
    by its annotation (``type_descriptor``) rather than a Click type."""
    kind = getattr(param, "type", None)
    if kind is None:
        descriptor = getattr(param, "type_descriptor", None)
        return _annotation_name(getattr(descriptor, "annotation", None))
    name = type(kind).__name__
    if name == "Path":
        return "DIR" if kind.dir_okay and not kind.file_okay else "FILE"
    if hasattr(kind, "choices"):
        return "|".join(str(choice) for choice in kind.choices)
    if name in {"IntParamType", "FloatParamType", "IntRange", "FloatRange"}:
        return "N"
    return "TEXT"


def _annotation_name(annotation: object) -> str:
    """The value name for a Python annotation: the choices of an enum, FILE, N or TEXT."""
    for inner in typing.get_args(annotation):  # list[X], X | None
        if inner is not type(None):
            return _annotation_name(inner)
    if isinstance(annotation, type) and issubclass(annotation, enum.Enum):
        return "|".join(str(member.value) for member in annotation)
    if isinstance(annotation, type) and issubclass(annotation, PurePath):
        return "FILE"
    if annotation in {int, float}:
        return "N"
    return "TEXT"


class _Argument(TyperArgument):
    """An argument whose help shows its value name only (Typer would add its Python type)."""

    def display_type_rich(self, ctx: Any) -> str | None:  # noqa: ANN401
        return None


def label_parameters(command: Any) -> None:  # noqa: ANN401 (a Typer/Click command)
    """Give every parameter of ``command`` (and of its sub-commands) a person's value name."""
    if getattr(command, _LABELLED, False):
        return
    setattr(command, _LABELLED, True)
    for param in command.params:
        if isinstance(param, TyperOption) and param.metavar is None:
            param.metavar = "" if param.is_flag else _value_name(param)
        elif isinstance(param, TyperArgument) and not isinstance(param, _Argument):
            if param.metavar is None:
                param.metavar = _value_name(param)
            param.__class__ = _Argument
    original = command.get_help_option

    def get_help_option(ctx: Any) -> Any:  # noqa: ANN401 (Click's help option, made per call)
        option = original(ctx)
        if option is not None and getattr(option, "metavar", None) is None:
            option.metavar = ""
        return option

    command.get_help_option = get_help_option
    for sub in getattr(command, "commands", {}).values():
        label_parameters(sub)


class HelpGroup(TyperGroup):
    """The root group: labels each command it hands out (see the module docstring)."""

    def get_command(self, ctx: Any, cmd_name: str) -> Any:  # noqa: ANN401 (Click objects)
        command = super().get_command(ctx, cmd_name)
        if command is not None:
            label_parameters(command)
        return command

    def format_help(self, ctx: Any, formatter: Any) -> None:  # noqa: ANN401
        label_parameters(self)
        super().format_help(ctx, formatter)
