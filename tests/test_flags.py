"""Flags generated from the config dataclasses (one definition per setting)."""

import dataclasses
import subprocess
import sys

from absl import flags

from uegan_tf import config
from uegan_tf import flags as uflags

REPO = __import__("pathlib").Path(__file__).resolve().parents[1]


def _all_flag_names(cls):
    return [
        (section, field.metadata.get("flag") or field.name, field)
        for section, field in uflags._leaf_fields(cls)
    ]


def test_every_setting_has_help_and_one_flag():
    names = _all_flag_names(config.TrainConfig)
    # 13 run settings + 8 data + 9 model + 11 loss + 5 optimiser.
    assert len(names) == 13 + 8 + 9 + 11 + 5
    assert len({n for _, n, _ in names}) == len(names)  # no clashes
    for _, _, field in names:
        assert field.metadata["help"].strip()
    loss_flags = {n for s, n, _ in names if s == "loss"}
    assert loss_flags == {
        f"{k}_weight"
        for k in (
            "g_adv d_adv content style color tv edge "
            "d_real d_fake d_gray d_smooth"
        ).split()
    }


def _non_default(field):
    """A valid value different from the field's default."""
    choices = field.metadata.get("choices")
    if choices:
        return next(c for c in choices if c != field.default)
    if field.type is bool:
        return not field.default
    if field.name == "d_gray":
        return 0.0  # d_input=luma (the non-default) needs it
    if field.name == "short_side":
        return 512  # must be 0 or >= crop_size
    if field.type is int:
        return field.default + 4  # keeps crop_size a multiple of 4
    if field.type is float:
        return round(field.default * 0.5 + 0.125, 6) if field.default else 1.0
    return f"x_{field.name}"


def test_every_flag_reaches_its_field():
    """Set each flag to a non-default value: the config holds all of them."""
    fv = flags.FlagValues()
    uflags.define_train_flags(fv)
    args, expected = [], {}
    for section, name, field in _all_flag_names(config.TrainConfig):
        if field.name in ("vgg_weights", "vgg_arch"):
            continue  # vgg16 + imagenet is refused by validate()
        value = _non_default(field)
        if field.type is bool:
            args.append(f"--{name}" if value else f"--no{name}")
        else:
            args.append(f"--{name}={value}")
        expected[(section, field.name)] = value
    fv(["train", *args])
    cfg = uflags.train_config_from_flags(fv)
    got = {}
    for section, name in expected:
        holder = cfg if section is None else getattr(cfg, section)
        got[(section, name)] = getattr(holder, name)
    assert got == expected
    assert cfg.loss.content == expected[("loss", "content")]
    assert cfg.batch_size == 16 and cfg.data.crop_size == 260


def test_defaults_of_flags_are_the_dataclass_defaults():
    fv = flags.FlagValues()
    uflags.define_train_flags(fv)
    fv(["train", "--workdir=w", "--records_dir=r"])
    cfg = uflags.train_config_from_flags(fv)
    want = config.TrainConfig(
        workdir="w", data=config.DataConfig(records_dir="r")
    )
    assert cfg == want


def test_prepare_flags_round_trip():
    fv = flags.FlagValues()
    uflags.define_prepare_flags(fv)
    fv(["prep", "--out_dir=o", "--style_dir=s", "--photo_dir=p", "--size=128"])
    cfg = uflags.prepare_config_from_flags(fv)
    assert cfg == config.PrepareConfig(
        out_dir="o", style_dir="s", photo_dir="p", size=128
    )
    assert dataclasses.fields(cfg)[0].metadata["help"]


def test_flag_definitions_do_not_import_tensorflow():
    """`python -m uegan_tf.train --help` must not start TensorFlow."""
    code = (
        "import sys; from uegan_tf import flags as f; f.define_train_flags();"
        " f.define_prepare_flags();"
        " print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('tensorflow', 'keras')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    )
    assert out.stdout.strip() == "[]"
