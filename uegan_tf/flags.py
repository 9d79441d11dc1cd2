"""Command-line flags, generated from the config dataclasses.

The only library module that touches `absl.flags`. Each config field made
by `config.setting(default, help)` becomes one flag (bool, integer, float,
enum when it has choices, else string; loss weights carry a
`--<name>_weight` flag name), so a setting is defined once, in
`uegan_tf/config.py`. Binaries call a `define_*_flags()` function (nothing
is defined at import time) and turn the parsed flags into a typed config at
once with the matching `*_config_from_flags()`.

Flagfiles compose: a style file can start with
`--flagfile=configs/base.flags` and later lines (and the command line)
override it. Paths in nested flagfiles are relative to the working
directory: run from the repository root.
"""

import dataclasses
import types

from absl import flags

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
                yield field.name, leaf
        else:
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
        if name in flag_values:
            continue
        help_ = field.metadata["help"]
        choices = field.metadata.get("choices")
        kind = _base_type(field.type)
        if choices:
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
        else:  # a new field type needs a rule here
            raise TypeError(f"no flag type for {cls.__name__}.{field.name}")


def config_from_flags(cls, f=FLAGS):
    """The validated `cls` instance holding the parsed flags' values."""
    top, sections = {}, {}
    for section_name, field in _leaf_fields(cls):
        value = getattr(f, _flag_name(field))
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
