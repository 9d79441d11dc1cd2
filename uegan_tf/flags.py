"""Command-line flags, generated from the config dataclasses.

The only library module that touches `absl.flags`. Each config field made
by `config.setting(default, help)` becomes one flag (bool, integer, float,
enum when it has choices, else string; loss weights carry a
`--<name>_weight` flag name), so a setting is defined once, in
`uegan_tf/config.py`. Binaries call a `define_*_flags()` function (nothing
is defined at import time) and turn the parsed flags into a typed config at
once with the matching `*_config_from_flags()`.

A tuple field becomes a repeatable string flag (`--model=A --model=B`), a
`config.parsed_setting` a string flag (`--max_file_size=25mb`) parsed into
the field; plain fields (no help) are no flags.

Flagfiles compose: a style file can start with
`--flagfile=configs/base.flags` and later lines (and the command line)
override it. Paths in nested flagfiles are relative to the working
directory: run from the repository root.
"""

import dataclasses
import types
import typing

from absl import flags

from uegan_tf.config import Bytes
from uegan_tf.config import PrepareConfig
from uegan_tf.config import TrainConfig

FLAGS = flags.FLAGS


def _flag_name(field):
    return field.metadata.get("flag") or field.name


def _leaf_fields(cls):
    """(section name or None, field) of every setting, sections expanded."""
    for field in dataclasses.fields(cls):
        if field.metadata.get("section"):
            for leaf in dataclasses.fields(field.default_factory):
                if "help" in leaf.metadata:  # a plain field is no setting
                    yield field.name, leaf
        elif "help" in field.metadata:
            yield None, field


def _base_type(annotation):
    """`str | None` -> str; other annotations unchanged."""
    if isinstance(annotation, types.UnionType):
        (base,) = [a for a in annotation.__args__ if a is not type(None)]
        return base
    return annotation


def define_config_flags(cls, flag_values=FLAGS):
    """Define one absl flag per setting of the config class `cls`.

    Idempotent: a second call defines nothing. Tests pass a fresh
    `flags.FlagValues()` so binaries' flags never meet in one registry.
    """
    for _, field in _leaf_fields(cls):
        name = _flag_name(field)
        if name in flag_values or field.metadata.get("argument"):
            continue  # defined, or a positional argument (not a flag)
        help_ = field.metadata["help"]
        choices = field.metadata.get("choices")
        kind = _base_type(field.type)
        if "parse" in field.metadata:  # text such as "25mb", parsed later
            flags.DEFINE_string(
                name, field.metadata["text"], help_, flag_values=flag_values
            )
        elif typing.get_origin(kind) is tuple:  # a repeatable flag
            flags.DEFINE_multi_string(
                name, list(field.default), help_, flag_values=flag_values
            )
        elif choices:
            flags.DEFINE_enum(
                name,
                field.default,
                list(choices),
                help_,
                flag_values=flag_values,
            )
        elif kind is bool:
            flags.DEFINE_bool(
                name, field.default, help_, flag_values=flag_values
            )
        elif kind is int:
            flags.DEFINE_integer(
                name, field.default, help_, flag_values=flag_values
            )
        elif kind is float:
            flags.DEFINE_float(
                name, field.default, help_, flag_values=flag_values
            )
        elif kind is str:
            flags.DEFINE_string(
                name, field.default, help_, flag_values=flag_values
            )
        elif kind is Bytes:
            flags.DEFINE(
                _BytesParser(),
                name,
                field.default,
                help_,
                flag_values,
                _BytesSerializer(),
            )
        else:  # a new field type needs a rule here
            raise TypeError(f"no flag type for {cls.__name__}.{field.name}")


def _flag_value(field, f):
    """The parsed flag of `field` as the field holds it.

    Raises:
        ValueError: `parse` of a text setting refused it (the message
            names the flag).
    """
    name = _flag_name(field)
    value = getattr(f, name)
    parse = field.metadata.get("parse")
    if parse is not None:
        try:
            return parse(value)
        except ValueError as e:
            raise ValueError(f"--{name}: {e}") from None
    if isinstance(value, list):  # a repeatable flag
        return tuple(value)
    return value


def config_from_flags(cls, f=FLAGS, **arguments):
    """The validated `cls` instance holding the parsed flags' values.

    `arguments`: values of the `config.argument` fields (positional
    command-line arguments), by field name.
    """
    top, sections = dict(arguments), {}
    for section_name, field in _leaf_fields(cls):
        if field.metadata.get("argument"):
            continue
        value = _flag_value(field, f)
        if section_name is None:
            top[field.name] = value
        else:
            sections.setdefault(section_name, {})[field.name] = value
    for field in dataclasses.fields(cls):
        if field.metadata.get("section"):
            top[field.name] = field.default_factory(**sections[field.name])
    return cls(**top).validate()


def define_train_flags(flag_values=FLAGS):
    """Define every training flag (idempotent)."""
    define_config_flags(TrainConfig, flag_values)
    if "dry_run" not in flag_values:  # a binary option, not a setting
        flags.DEFINE_bool(
            "dry_run",
            False,
            "Print the resolved config and exit.",
            flag_values=flag_values,
        )


def train_config_from_flags(f=FLAGS):
    """Build and validate the `TrainConfig` from parsed training flags."""
    return config_from_flags(TrainConfig, f)


def define_prepare_flags(flag_values=FLAGS):
    """Flags of `tools/make_tfrecords.py` (idempotent)."""
    define_config_flags(PrepareConfig, flag_values)


def prepare_config_from_flags(f=FLAGS):
    """`PrepareConfig` from parsed `define_prepare_flags` flags."""
    return config_from_flags(PrepareConfig, f)


# -- Commands: `uegan stylize`, `uegan add-style`, the Beam job --------------


def memory_text(n):
    """1_500_000_000 -> "1.5G": decimal units when they read back exactly."""
    from uegan_tf.image_io import parse_memory

    for unit, size in (("T", 10**12), ("G", 10**9), ("M", 10**6), ("K", 10**3)):
        text = f"{n / size:g}{unit}"
        if n >= size and parse_memory(text) == n:
            return text
    return str(n)


class _BytesParser(flags.ArgumentParser):
    """Flags of `config.Bytes` fields: "1.5G", "800M", "1e9" -> bytes."""

    def parse(self, argument):
        if isinstance(argument, int):
            return argument
        from uegan_tf.image_io import parse_memory

        return parse_memory(argument)  # ValueError: absl names the flag

    def flag_type(self):
        return "memory size"


class _BytesSerializer(flags.ArgumentSerializer):
    def serialize(self, value):
        return memory_text(value)


# What asks a command for its help (absl's own help flags are not defined
# in a command's registry).
HELP_OPTIONS = (
    "-h",
    "-?",
    "--help",
    "--help=true",
    "--helpshort",
    "--helpfull",
)


def wants_help(argv):
    """Whether the arguments (program name first; not after `--`) ask for
    help."""
    args = argv[1 : argv.index("--")] if "--" in argv else argv[1:]
    return any(a in HELP_OPTIONS for a in args)


def command_help(cls, usage):
    """`--help` of a command: its usage, then the flags of `cls` only."""
    fv = flags.FlagValues()
    define_config_flags(cls, fv)
    text = fv.get_help(prefix="", include_special_flags=False)
    own = [line for line in text.splitlines() if line.startswith(" ")]
    return f"usage:\n{usage}\n\nflags:\n" + "\n".join(own)


def parse_command(cls, argv, flag_values=FLAGS, known_only=False):
    """Define the flags of `cls` and parse `argv` (program name first).

    Returns:
        The arguments left (program name first); with `known_only`, flags
        of no setting of `cls` are left too (the Beam job's options).

    Raises:
        ValueError: one line naming the bad flag or value.
    """
    define_config_flags(cls, flag_values)
    try:
        return flag_values(list(argv), known_only=known_only)
    except flags.Error as e:
        raise ValueError(str(e).strip().splitlines()[0]) from None


def _argument_names(cls):
    """The `config.argument` fields of `cls`, in declaration order."""
    return [
        f.name for f in dataclasses.fields(cls) if f.metadata.get("argument")
    ]


def _parse(cls, argv, flag_values):
    """`parse_command`, then `config_from_flags` with the positional
    arguments as the `config.argument` fields (in order); more positional
    arguments than such fields are refused."""
    rest = parse_command(cls, argv, flag_values)[1:]
    names = _argument_names(cls)
    if len(rest) > len(names):
        raise ValueError(
            f"unexpected arguments: {' '.join(rest[len(names) :])}"
        )
    return config_from_flags(cls, flag_values, **dict(zip(names, rest)))


def parse_config(cls, argv, flag_values=FLAGS):
    """The validated `cls` of a command: flags, and positional arguments
    for its `config.argument` fields (none for most commands).

    Raises:
        ValueError: one line naming the bad flag, value or argument.
    """
    return _parse(cls, argv, flag_values)


def run_config_command(cls, usage, main, argv=None, flag_values=None):
    """The whole life of a config-driven command, around its `main(cfg)`.

    `--help` prints `command_help(cls, usage)` (exit 0, no TensorFlow);
    bad flags or arguments print one `error: ...` line (exit 2); otherwise
    TensorFlow starts quietly (unless the config's `verbose`) and
    `main(cfg)` returns the exit code.

    Args:
        cls: the command's config dataclass.
        usage: its usage lines.
        main: validated config -> exit code.
        argv: the command line, program name first (default: sys.argv).
        flag_values: the flag registry (default: a fresh one).

    Validation never imports TensorFlow: a bad flag, path or model source
    is refused in well under a second.
    """
    import sys

    from uegan_tf.quiet import quiet_tensorflow

    argv = list(sys.argv if argv is None else argv)
    if wants_help(argv):
        print(command_help(cls, usage))
        return 0
    flag_values = flags.FlagValues() if flag_values is None else flag_values

    try:
        cfg = _parse(cls, argv, flag_values)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    quiet_tensorflow(getattr(cfg, "verbose", False))
    return main(cfg)
