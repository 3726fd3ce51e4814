"""Every field of an experiment's config as a command-line flag, documented from its source.

A config is a frozen dataclass (an experiment's preset). Its field `d_model` is the flag
`--d-model VALUE`, a field of a nested dataclass config is `--transformer.d-model VALUE`, a
bool is `--with-bos` / `--no-with-bos` (`--transformer.no-with-bos` when nested), a tuple takes
its values space-separated (`--no-attn 0 1`; no value at all for the empty tuple), and an
optional field takes `none` for None. A flag's help gives the field's type, its value at each
preset and the comment above the field in the class body. `resolve_config` applies the parsed
values to a preset with `dataclasses.replace`, so the config's own `__post_init__` checks them.
"""

import argparse
import ast
import dataclasses
import difflib
import functools
import inspect
import io
import textwrap
import tokenize
import types
import typing
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from experiments.framework.experiment import PRESETS, Experiment
from experiments.framework.runner import UsageError

# The argparse destination of the flag of field PATH is DEST_PREFIX + PATH.
DEST_PREFIX = "config:"


@dataclasses.dataclass(frozen=True)
class Alias:
    """Another spelling of a field's flag, with its own check (e.g. `--lr` for `learning_rate`).

    Attributes:
        flag: e.g. "--lr".
        convert: text -> value, raising ValueError or argparse.ArgumentTypeError on bad text;
            None: the field's own parsing (plain text where the config has no such field).
        choices: the accepted texts, or None for any.
        help: the flag's help where the config has no such field or no comment for it.
    """

    flag: str
    convert: Callable[[str], Any] | None = None
    choices: Sequence[str] | None = None
    help: str = ""


@dataclasses.dataclass(frozen=True)
class ConfigField:
    """A field of a config class or of a dataclass nested in it.

    Attributes:
        path: the field names from the config down, dotted: "steps", "transformer.d_model".
        hint: the field's type, resolved (`typing.get_type_hints`).
        doc: the field's comment in the source, one line ("" if it has none).
    """

    path: str
    hint: Any
    doc: str

    @property
    def flag(self) -> str:
        """The field's flag: "--" and the path with dashes for underscores."""
        return "--" + self.path.replace("_", "-")

    @property
    def negated_flag(self) -> str:
        """The flag that sets a bool field to False: --no-with-bos, --transformer.no-with-bos."""
        parent, _, name = self.path.rpartition(".")
        return "--" + (f"{parent}." if parent else "") + f"no-{name}".replace("_", "-")


def config_fields(cls: type) -> list[ConfigField]:
    """The fields of dataclass `cls` that a flag can set (init fields), in declaration order,
    each followed by the fields of its type when that is a dataclass (or a dataclass | None)."""
    hints, docs = typing.get_type_hints(cls), field_docs(cls)
    found = []
    for field in dataclasses.fields(cls):
        if not field.init:
            continue
        hint = hints[field.name]
        found.append(ConfigField(field.name, hint, docs.get(field.name, "")))
        inner, _ = _strip_optional(hint)
        if dataclasses.is_dataclass(inner):
            for sub in config_fields(inner):
                found.append(dataclasses.replace(sub, path=f"{field.name}.{sub.path}"))
    return found


def field_docs(cls: type) -> dict[str, str]:
    """Field name -> its comment, for the fields of dataclass `cls` and of its dataclass bases.

    A field's comment is the block of `# ...` lines directly above it, its inline `# ...`
    comment and a docstring right after it, joined into one line. A field right below another
    one (no blank line between them) without a comment of its own shares that field's comment
    above (`# Sequences per step and tokens per sequence.` over `batch_size` and `seq_len`).
    Where a class redeclares a field without a comment, the base class's comment stays.
    """
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if dataclasses.is_dataclass(klass):
            docs.update({name: doc for name, doc in _own_field_docs(klass).items() if doc})
    return docs


@functools.cache
def _own_field_docs(klass: type) -> dict[str, str]:
    """Field name -> comment, for the fields declared in `klass`'s own class body."""
    try:
        source = textwrap.dedent(inspect.getsource(klass))
        (classdef,) = [node for node in ast.parse(source).body if isinstance(node, ast.ClassDef)]
    except (OSError, TypeError, SyntaxError, ValueError):  # no source (e.g. made in a REPL)
        return {}
    above, inline = {}, {}  # line number -> comment text
    for token in tokenize.generate_tokens(io.StringIO(source).readline):
        if token.type == tokenize.COMMENT:
            text = token.string.lstrip("#").strip()
            own_line = token.line.strip().startswith("#")
            (above if own_line else inline)[token.start[0]] = text
    docs, group = {}, None  # group: (last line, comment above) of the field just before
    for i, node in enumerate(classdef.body):
        if not (isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name)):
            group = None
            continue
        lines, line = [], node.lineno - 1
        while line in above:
            lines.insert(0, above[line])
            line -= 1
        comment = " ".join(lines)
        if not comment and group is not None and group[0] == node.lineno - 1:
            comment = group[1]
        span = range(node.lineno, node.end_lineno + 1)
        parts = [comment] + [inline[n] for n in span if n in inline]
        following = classdef.body[i + 1] if i + 1 < len(classdef.body) else None
        if isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant):
            if isinstance(following.value.value, str):
                parts.append(" ".join(inspect.cleandoc(following.value.value).split()))
        docs[node.target.id] = " ".join(part for part in parts if part)
        group = (node.end_lineno, comment)
    return docs


def add_config_flags(
    parser: argparse.ArgumentParser,
    experiment: Experiment | None,
    aliases: Mapping[str, Alias] | None = None,
) -> None:
    """Add a flag for every field of `experiment`'s config to `parser`, in a group titled with
    the experiment and config class, with `DEST_PREFIX + path` destinations and no defaults
    (`config_overrides` reads back the flags given).

    Args:
        parser: the parser of `sinkjax run`.
        experiment: whose config; None adds only the aliases (the help of `sinkjax run`).
        aliases: field path -> another flag for it. Where the config has the field, the alias
            is a second spelling of the field's flag (with the alias's check); where it has
            not, the alias is added on its own (`resolve_config` then names the missing field).
    """
    aliases = aliases or {}
    fields = [] if experiment is None else config_fields(config_class(experiment))
    paths = {field.path for field in fields}
    for path, alias in aliases.items():
        if path not in paths:
            parser.add_argument(
                alias.flag,
                dest=DEST_PREFIX + path,
                action=_FieldAction,
                convert=alias.convert or str,
                choices=alias.choices,
                metavar=None if alias.choices else alias.flag.lstrip("-").replace("-", "_").upper(),
                default=argparse.SUPPRESS,
                help=alias.help,
            )
    if experiment is None:
        return
    group = parser.add_argument_group(
        f"config of {experiment.name} ({config_class(experiment).__name__})",
        "Every field of the preset's config is a flag; a nested config's fields are "
        "--FIELD.SUBFIELD. Each gives the field's type, its value at each preset and its "
        "comment in the source. Tuples take space-separated values (a tuple flag without "
        "values sets the empty tuple); optional fields take `none` for None.",
    )
    for field in fields:
        _add_field_flag(group, field, experiment.presets, aliases.get(field.path))


def config_class(experiment: Experiment) -> type:
    """The config dataclass of `experiment` (that of its first preset)."""
    return type(next(iter(experiment.presets.values())))


def config_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The config fields given on the command line: dotted path -> parsed value."""
    return {
        dest.removeprefix(DEST_PREFIX): value
        for dest, value in vars(args).items()
        if dest.startswith(DEST_PREFIX)
    }


def unknown_flags_error(
    experiment: Experiment, extras: Sequence[str], aliases: Iterable[Alias] = ()
) -> UsageError:
    """The one-line error for the arguments `extras` that no flag of `sinkjax run` took,
    suggesting the nearest config flag of `experiment`."""
    flags = [field.flag for field in config_fields(config_class(experiment))]
    flags += [alias.flag for alias in aliases]
    first = next((text for text in extras if text.startswith("-")), extras[0]).split("=")[0]
    near = difflib.get_close_matches(first, flags, n=1)
    guess = f" (did you mean {near[0]}?)" if near else ""
    return UsageError(
        f"unknown argument {first!r} for experiment {experiment.name!r}{guess}; "
        f"`sinkjax run {experiment.name} --help` lists its config flags"
    )


def resolve_config(
    experiment: Experiment, preset: str, overrides: Mapping[str, Any] | None = None
) -> Any:
    """The config of `experiment` at `preset` with `overrides` applied and validated.

    Args:
        overrides: dotted field path -> value, e.g. {"learning_rate": 1e-3,
            "transformer.d_model": 64}; a nested config's fields are replaced in a copy of it.

    Returns:
        The preset's config through `dataclasses.replace` (so its `__post_init__` checks it).

    Raises:
        UsageError: an unknown preset, a field the config lacks ("experiment 'X' has no steps
            to override"), a field of a nested config that is None at this preset, or a value
            the config rejects (its ValueError's message).
    """
    if preset not in experiment.presets:
        raise UsageError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    try:
        return _replace(experiment.presets[preset], dict(overrides or {}), experiment, preset)
    except ValueError as err:
        raise UsageError(" ".join(str(err).split())) from None


def _replace(
    cfg: Any, overrides: dict[str, Any], experiment: Experiment, preset: str, prefix: str = ""
) -> Any:
    names = {f.name for f in dataclasses.fields(cfg) if f.init}
    own: dict[str, Any] = {}
    nested: dict[str, dict[str, Any]] = {}
    for path, value in overrides.items():
        head, _, rest = path.partition(".")
        if head not in names:
            raise UsageError(f"experiment {experiment.name!r} has no {prefix}{path} to override")
        if rest:
            nested.setdefault(head, {})[rest] = value
        else:
            own[head] = value
    for head, changes in nested.items():
        parent = own.get(head, getattr(cfg, head))
        inner = f"{prefix}{head}.{next(iter(changes))}"
        if parent is None:
            where = "by the overrides" if head in own else f"at preset {preset!r}"
            raise UsageError(
                f"experiment {experiment.name!r} has {prefix}{head} = None {where}, so "
                f"--{inner.replace('_', '-')} has nothing to set; drop it or choose a preset "
                f"where {prefix}{head} is set"
            )
        if not dataclasses.is_dataclass(parent):
            raise UsageError(f"experiment {experiment.name!r} has no {inner} to override")
        own[head] = _replace(parent, changes, experiment, preset, f"{prefix}{head}.")
    return dataclasses.replace(cfg, **own)


# ----------------------------------------------------------------------------------------------
# One field's flag: syntax, parsing and help


class _FieldAction(argparse.Action):
    """Store `convert(values)`; a ValueError becomes argparse's one-line error for the flag."""

    def __init__(self, option_strings, dest, convert: Callable[[Any], Any], **kwargs):
        super().__init__(option_strings, dest, **kwargs)
        self.convert = convert

    def __call__(self, parser, namespace, values, option_string=None):
        try:
            value = self.convert(values)
        except (ValueError, argparse.ArgumentTypeError) as err:
            raise argparse.ArgumentError(self, str(err)) from None
        setattr(namespace, self.dest, value)


class _BoolAction(argparse.Action):
    """A bool field's flags: True for its flag, False for its negated flag (the last one)."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, option_string != self.option_strings[-1])

    def format_usage(self) -> str:
        return " | ".join(self.option_strings)


def _add_field_flag(group, field: ConfigField, presets: Mapping[str, Any], alias: Alias | None):
    flags = [field.flag] + ([alias.flag] if alias and alias.flag != field.flag else [])
    doc = field.doc or (alias.help if alias else "")
    values = {name: _show(_value_at(cfg, field.path)) for name, cfg in presets.items()}
    if len(set(values.values())) == 1:
        shown = f"{'/'.join(values)} {next(iter(values.values()))}"
    else:
        shown = ", ".join(f"{name} {value}" for name, value in values.items())
    text = f"{_type_name(field.hint)} ({shown})" + (f": {doc}" if doc else "")
    text = text.replace("%", "%%")  # argparse %-formats help texts
    dest = DEST_PREFIX + field.path
    inner, optional = _strip_optional(field.hint)
    if inner is bool and not optional:
        flags.append(field.negated_flag)
        group.add_argument(
            *flags, dest=dest, action=_BoolAction, default=argparse.SUPPRESS, help=text
        )
        return
    if dataclasses.is_dataclass(inner) and not optional:
        return  # set through its fields' flags
    nargs, convert, metavar = _syntax(field.hint)
    if alias is not None and alias.convert is not None:
        nargs, convert = None, alias.convert
    group.add_argument(
        *flags,
        dest=dest,
        action=_FieldAction,
        convert=convert,
        nargs=nargs,
        metavar=None if alias and alias.choices else metavar,
        choices=alias.choices if alias else None,
        default=argparse.SUPPRESS,
        help=text,
    )


def _strip_optional(hint: Any) -> tuple[Any, bool]:
    """(X, True) for `X | None`, else (hint, False)."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = typing.get_args(hint)
        rest = [arg for arg in args if arg is not type(None)]
        if len(rest) == 1 and len(args) == 2:
            return rest[0], True
    return hint, False


def _syntax(hint: Any) -> tuple[Any, Callable[[Any], Any], str | tuple[str, ...]]:
    """(nargs, convert, metavar) of the flag of a field of type `hint`; `convert` takes the
    text (a list of texts for nargs other than None)."""
    inner, optional = _strip_optional(hint)
    if dataclasses.is_dataclass(inner):  # optional: `none` is the only value a flag can give
        return None, lambda text: _none(text, "none"), "none"
    if typing.get_origin(inner) is not tuple:
        parse, metavar = _scalar(inner)
        if optional:
            return None, lambda text: None if text == "none" else parse(text), f"{metavar}|none"
        return None, parse, metavar
    args = typing.get_args(inner)
    if len(args) == 2 and args[1] is Ellipsis:
        parse, metavar = _scalar(args[0])
        size = None
    else:
        parses = [_scalar(arg) for arg in args]
        metavar = parses[0][1] if optional else tuple(m for _, m in parses)
        size = len(args)

    def convert(texts: list[str]) -> tuple | None:
        if optional and texts == ["none"]:
            return None
        if size is None:
            return tuple(parse(text) for text in texts)
        if len(texts) != size:
            raise ValueError(f"expected {size} values, got {len(texts)}")
        return tuple(p(text) for (p, _), text in zip(parses, texts, strict=True))

    if size is None:
        return "*", convert, metavar
    return ("+" if optional else size), convert, metavar


def _none(text: str, what: str) -> None:
    if text != "none":
        raise ValueError(f"expected {what}, got {text!r}")
    return None


def _scalar(hint: Any) -> tuple[Callable[[str], Any], str]:
    """(text -> value, metavar) for a single value of type `hint`."""
    if hint is bool:
        return _parse_bool, "BOOL"
    if hint is int:
        return functools.partial(_parse_number, int, "an integer"), "INT"
    if hint is float:
        return functools.partial(_parse_number, float, "a number"), "FLOAT"
    if hint is str:
        return str, "STR"
    if typing.get_origin(hint) is typing.Literal:
        choices = typing.get_args(hint)
        return functools.partial(_parse_choice, choices), "{" + ",".join(map(str, choices)) + "}"
    raise TypeError(f"no command-line syntax for a config field of type {hint!r}")


def _parse_number(kind: type, what: str, text: str) -> Any:
    try:
        return kind(text)
    except ValueError:
        raise ValueError(f"expected {what}, got {text!r}") from None


def _parse_bool(text: str) -> bool:
    if text.lower() in ("true", "yes", "1"):
        return True
    if text.lower() in ("false", "no", "0"):
        return False
    raise ValueError(f"expected true or false, got {text!r}")


def _parse_choice(choices: tuple, text: str) -> Any:
    for choice in choices:
        if str(choice) == text:
            return choice
    raise ValueError(f"expected one of {', '.join(map(str, choices))}, got {text!r}")


def _type_name(hint: Any) -> str:
    inner, optional = _strip_optional(hint)
    if typing.get_origin(inner) is typing.Literal:
        name = "{" + ",".join(map(str, typing.get_args(inner))) + "}"
    elif typing.get_origin(inner) is tuple:
        args = typing.get_args(inner)
        name = "tuple[" + ", ".join("..." if a is Ellipsis else _type_name(a) for a in args) + "]"
    else:
        name = getattr(inner, "__name__", str(inner))
    return f"{name} | None" if optional else name


def _value_at(cfg: Any, path: str) -> Any:
    """The value of field `path` in `cfg`; `_UNSET` below a nested config that is None."""
    for name in path.split("."):
        if cfg is None:
            return _UNSET
        cfg = getattr(cfg, name)
    return cfg


_UNSET = object()


def _show(value: Any) -> str:
    """`value` as a flag would take it."""
    if value is _UNSET:
        return "-"
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if dataclasses.is_dataclass(value):
        return "set"
    if isinstance(value, tuple):
        return " ".join(_show(v) for v in value) if value else "()"
    return str(value)
