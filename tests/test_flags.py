"""Flags generated from the config dataclasses (one definition per setting)."""

import dataclasses
import re
import subprocess
import sys

import pytest
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
    # 13 run settings + 8 data + 10 model + 13 loss + 5 optimiser.
    assert len(names) == 13 + 8 + 10 + 13 + 5
    assert len({n for _, n, _ in names}) == len(names)  # no clashes
    for _, _, field in names:
        assert field.metadata["help"].strip()
    loss_flags = {n for s, n, _ in names if s == "loss"}
    assert loss_flags == {
        f"{k}_weight"
        for k in (
            "g_adv d_adv content style color tv edge "
            "d_real d_fake d_gray d_smooth edge_mask"
        ).split()
    } | {"edge_mask_threshold"}


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
        " from uegan_tf.config import AppConfig;"
        " f.define_config_flags(AppConfig, f.flags.FlagValues());"
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


# -- The commands' settings: uegan stylize, uegan add-style, the Beam job ----


def test_stylize_flags_reach_the_config():
    from uegan_tf.inference import stylize

    fv = flags.FlagValues()  # a fresh registry: no other binary's flags
    rest = uflags.parse_command(
        stylize.StylizeConfig,
        [
            "uegan stylize",
            "a.jpg",
            "--max_memory=800M",
            "--format=jpg",
            "--style=anime",
            "--max_megapixels=2.5",
            "--noexamples",
            "b/",
        ],
        fv,
    )
    cfg = stylize.config_from_flags(rest, fv)
    assert cfg.inputs == ("a.jpg", "b/") and cfg.all_inputs == cfg.inputs
    assert cfg.max_memory == 800_000_000 and cfg.image_format == "jpg"
    assert cfg.source == "anime" and cfg.max_pixels == 2_500_000
    # Defaults are the dataclass's, positional arguments aside.
    fv = flags.FlagValues()
    rest = uflags.parse_command(stylize.StylizeConfig, ["s", "x"], fv)
    assert stylize.config_from_flags(rest, fv) == stylize.StylizeConfig(
        inputs=("x",)
    )
    assert fv["max_memory"].serialize() == "--max_memory=1.5G"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--max_memory=lots"], "flag --max_memory=lots: not a memory size"),
        (["--precision=fp16"], "value should be one of <fp32|bf16>"),
        (["--nope"], "Unknown command line flag 'nope'"),
        (["--batch=x"], "flag --batch=x: invalid literal for int()"),
    ],
)
def test_command_flag_errors_are_one_line(args, message):
    from uegan_tf.inference import stylize

    with pytest.raises(ValueError) as e:
        uflags.parse_command(
            stylize.StylizeConfig, ["s", "x", *args], flags.FlagValues()
        )
    assert message in str(e.value) and "\n" not in str(e.value)


def test_add_style_and_beam_configs():
    fv = flags.FlagValues()
    rest = uflags.parse_command(
        config.AddStyleConfig, ["a", "mine", "runs/x", "--step=12"], fv
    )
    cfg = uflags.config_from_flags(
        config.AddStyleConfig, fv, name=rest[1], source=rest[2]
    )
    assert cfg == config.AddStyleConfig(name="mine", source="runs/x", step=12)
    assert "name" not in fv and "source" not in fv  # arguments, not flags
    with pytest.raises(ValueError, match="NAME and its SOURCE"):
        config.AddStyleConfig().validate()
    # The Beam job leaves every other flag to Beam's PipelineOptions.
    fv = flags.FlagValues()
    rest = uflags.parse_command(
        config.BeamConfig,
        ["beam", "--input=p/*", "--output=o", "--runner=DirectRunner"],
        fv,
        known_only=True,
    )
    assert rest == ["beam", "--runner=DirectRunner"]
    assert uflags.config_from_flags(config.BeamConfig, fv) == (
        config.BeamConfig(input="p/*", output="o")
    )
    with pytest.raises(ValueError, match="--output is required"):
        config.BeamConfig(input="p/*").validate()


def test_command_help_does_not_import_tensorflow():
    """`uegan stylize --help`, `uegan add-style --help`: no TensorFlow."""
    code = (
        "import sys; from uegan_tf import cli\n"
        "for c in ('stylize', 'add-style', 'list-styles'):\n"
        "    assert cli.main(['uegan', c, '--help']) == 0\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('tensorflow', 'keras')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        cwd=REPO,
        check=True,
    )
    lines = out.stdout.strip().splitlines()
    assert lines[-1] == "[]"
    assert "  --max_memory: Peak memory budget" in out.stdout
    assert "(default: '1.5G')" in out.stdout
    assert "  --[no]overwrite: Replace a user style" in out.stdout


def test_app_flags_round_trip():
    """Repeatable, text-parsed and renamed settings of `AppConfig`."""
    fv = flags.FlagValues()
    uflags.parse_command(
        config.AppConfig,
        [
            "app",
            "--model=a=x.keras",
            "--model",
            "b.keras,c.keras",
            "--max_file_size=1mb",
            "--max_user_disk=2mb",
            "--max_memory=800M",
            "--max_megapixels=0.5",
            "--precision=bf16",
            "--port=0",
        ],
        fv,
    )
    cfg = uflags.config_from_flags(config.AppConfig, fv)
    assert cfg == config.AppConfig(
        models=("a=x.keras", "b.keras,c.keras"),
        max_file_size=2**20,
        max_user_bytes=2 * 2**20,
        max_memory=800_000_000,
        max_megapixels=0.5,
        precision="bf16",
        port=0,
    )
    assert cfg.max_pixels == 500_000


def test_app_flag_defaults_are_the_dataclass_defaults():
    fv = flags.FlagValues()
    uflags.parse_command(config.AppConfig, ["app"], fv)
    assert uflags.config_from_flags(config.AppConfig, fv) == config.AppConfig()
    # Bytes in decimal units (shown as 1.5G), upload sizes in binary
    # units as text ("25mb"), each default written once in config.py.
    assert fv["max_memory"].default == 1_500_000_000
    assert fv["max_memory"].serialize() == "--max_memory=1.5G"
    assert config.AppConfig().max_memory == 1_500_000_000
    assert fv["max_file_size"].default == "25mb"
    assert config.AppConfig().max_file_size == 25 * 2**20
    assert fv["model"].default == [] and config.AppConfig().models == ()
    # Plain fields are no flags.
    assert "video_batch" not in fv and "keep_outputs_seconds" not in fv
    assert not fv.verbose


def test_text_setting_errors_name_the_flag():
    fv = flags.FlagValues()
    argv = ["app", "--max_user_disk=lots"]
    uflags.parse_command(config.AppConfig, argv, fv)
    with pytest.raises(ValueError, match=r"^--max_user_disk: not a size"):
        uflags.config_from_flags(config.AppConfig, fv)


def test_tuple_and_text_fields_of_any_config():
    """The two field kinds beyond scalars, on a config of the test's own."""

    @dataclasses.dataclass(frozen=True)
    class Tiny:
        names: tuple[str, ...] = config.setting(("a",), "Names.")
        size: int = config.parsed_setting("2kb", config.parse_size, "Size.")
        internal: int = 3

        def validate(self):
            return self

    fv = flags.FlagValues()
    uflags.define_config_flags(Tiny, fv)
    assert sorted(fv) == ["names", "size"]
    fv(["tiny"])
    assert uflags.config_from_flags(Tiny, fv) == Tiny(names=("a",), size=2048)
    fv(["tiny", "--names=b", "--names=c", "--size=1kb"])
    assert uflags.config_from_flags(Tiny, fv) == Tiny(("b", "c"), 1024)


# -- The tools' settings: export_tflite, import_animeganv2, bundle_style,
# inspect_tfrecords -----------------------------------------------------------

# The flag names the tools had when each defined its flags by hand.
TOOL_FLAGS = {
    config.ExportConfig: {
        "checkpoint",
        "step",
        "out_dir",
        "name",
        "version",
        "quantize",
        "format",
        "size",
        "fixed_size",
        "representative_dir",
        "val_dir",
        "calibration_steps",
        "num_eval_images",
        "precision",
        "warmup",
        "verbose",
    },
    config.ImportConfig: {
        "source",
        "download",
        "cache_dir",
        "name",
        "out",
        "upsample",
        "unet",
        "overwrite",
        "verbose",
    },
    config.BundleConfig: {
        "workdir",
        "step",
        "name",
        "description",
        "licence",
        "verbose",
    },
    config.InspectConfig: {"sheet", "num", "verbose"},
}


@pytest.mark.parametrize("cls", list(TOOL_FLAGS), ids=lambda c: c.__name__)
def test_tool_flags_are_generated_from_their_settings(cls):
    fv = flags.FlagValues()
    uflags.define_config_flags(cls, fv)
    assert set(fv) == TOOL_FLAGS[cls]
    helps = uflags.command_help(cls, "usage").splitlines()
    for _, field in uflags._leaf_fields(cls):
        if field.metadata.get("argument"):
            assert field.name not in fv
            continue
        name = field.metadata.get("flag") or field.name
        flag = fv[name]
        choices = field.metadata.get("choices")
        prefix = f"<{'|'.join(choices)}>: " if choices else ""
        assert flag.help == prefix + field.metadata["help"]
        if "parse" in field.metadata:  # the default as written ("256x256")
            assert flag.default == field.metadata["text"]
        else:
            assert flag.default == field.default
        # `--help` lists it once, with the first words of its help.
        lines = [
            line
            for line in helps
            if line.startswith((f"  --{name}: ", f"  --[no]{name}: "))
        ]
        assert len(lines) == 1, name
        assert field.metadata["help"].split()[0] in lines[0]


def _export_config(*args):
    """The `ExportConfig` of `tools/export_tflite.py --checkpoint=anime
    --out_dir=o ARGS...`."""
    fv = flags.FlagValues()
    argv = ["export", "--checkpoint=anime", "--out_dir=o", *args]
    uflags.parse_command(config.ExportConfig, argv, fv)
    return uflags.config_from_flags(config.ExportConfig, fv)


def test_export_flags_reach_the_options():
    cfg = _export_config(
        "--quantize=all",
        "--format=tflite,onnx",
        "--size=64x48",
        "--fixed_size=96",
        "--name=anime",
        "--version=3",
        "--step=1800",
        "--representative_dir=r",
        "--val_dir=v",
        "--calibration_steps=8",
        "--num_eval_images=0",
        "--nowarmup",
        "--verbose",
    )
    assert cfg == config.ExportConfig(
        checkpoint="anime",
        step=1800,
        verbose=True,
        options=config.ExportOptions(
            out_dir="o",
            name="anime",
            version=3,
            formats=("tflite", "onnx"),
            quantize=("none", "fp16", "dynamic", "int8"),
            size=(64, 48),
            fixed_size=(96, 96),
            representative_dir="r",
            val_dir="v",
            calibration_steps=8,
            num_eval_images=0,
            warmup=False,
        ),
    )
    assert cfg.options.tflite_fixed_size == (64, 48)
    # --format=savedmodel: no conversion (every export writes the
    # SavedModel); comma lists ignore case and blanks.
    assert _export_config("--format=savedmodel").options.formats == ()
    assert _export_config("--quantize=none, FP16").options.quantize == (
        "none",
        "fp16",
    )
    # A dynamic fixed size is the default one.
    assert _export_config("--fixed_size=dynamic").options.fixed_size == (
        256,
        256,
    )
    bf16 = _export_config("--precision=bf16", "--format=savedmodel")
    assert bf16.precision == "bf16" and bf16.options.formats == ()


def test_export_flag_defaults():
    cfg = _export_config()
    # The library's own `ExportOptions(out_dir=...)` is the flags' default.
    assert cfg == config.ExportConfig(
        checkpoint="anime", options=config.ExportOptions(out_dir="o")
    )
    o = cfg.options
    assert (o.name, o.version, o.formats, o.quantize) == (
        "uegan",
        None,
        ("tflite",),
        ("none",),
    )
    assert (o.size, o.fixed_size, o.tflite_fixed_size) == (
        None,
        (256, 256),
        (256, 256),
    )
    assert (o.representative_dir, o.val_dir) == (None, None)
    assert (o.calibration_steps, o.num_eval_images) == (100, 8)
    assert (o.warmup, o.num_threads) == (True, 2)
    assert (cfg.step, cfg.precision, cfg.verbose) == (None, "fp32", False)


@pytest.mark.parametrize(
    "args, message",
    [
        (["--size=64by48"], "--size: expected HxW or 'dynamic', got '64by48'"),
        (["--size=64x2"], "--size: sides must be >= 4, got 64x2"),
        (["--fixed_size=1x2x3"], "--fixed_size: expected HxW or 'dynamic'"),
        (["--quantize=int4"], "quantize must be in ('none', 'fp16'"),
        (["--format=coreml"], "format must be in ('tflite', 'onnx')"),
        (["--precision=bf16"], "--precision=bf16 exports the SavedModel only"),
        (["--name=a/b"], "bad model name 'a/b'"),
    ],
)
def test_export_flag_errors_name_the_setting(args, message):
    with pytest.raises(ValueError) as e:
        _export_config(*args)
    assert str(e.value).startswith(message) and "\n" not in str(e.value)


def test_export_flags_are_the_documented_ones():
    """export/README.md's command lists every flag of the tool."""
    text = (REPO / "export" / "README.md").read_text()
    block = text.split("## 1. Export", 1)[1].split("```sh", 1)[1]
    block = block.split("```", 1)[0]
    fv = flags.FlagValues()
    uflags.define_config_flags(config.ExportConfig, fv)
    documented = set()
    for name in re.findall(r"--(\w+)", block):
        if name not in fv and name.startswith("no"):
            name = name[2:]  # --nowarmup
        documented.add(name)
    assert documented == set(fv)


def test_other_tool_configs(tmp_path):
    fv = flags.FlagValues()
    argv = ["import", "--source=a.pt", "--upsample=half_pixel", "--unet"]
    cfg = uflags.parse_config(config.ImportConfig, argv, fv)
    assert cfg == config.ImportConfig(
        source="a.pt", upsample="half_pixel", unet=True
    )
    assert cfg.cache_dir == "~/.uegan/downloads"
    for argv in (["import"], ["import", "--source=a", "--download=Hayao"]):
        with pytest.raises(ValueError, match="^give exactly one of --source"):
            uflags.parse_config(config.ImportConfig, argv, flags.FlagValues())
    fv = flags.FlagValues()
    argv = ["bundle", "--workdir=runs/x", "--name=mine", "--step=20"]
    assert uflags.parse_config(config.BundleConfig, argv, fv) == (
        config.BundleConfig(workdir="runs/x", name="mine", step=20)
    )
    with pytest.raises(ValueError, match="^--workdir and --name are required"):
        uflags.parse_config(
            config.BundleConfig, ["bundle", "--name=x"], flags.FlagValues()
        )
    fv = flags.FlagValues()
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "manifest.json").write_text("{}")
    d = str(tmp_path / "d")
    rest = uflags.parse_command(config.InspectConfig, ["i", d, "--num=2"], fv)
    assert uflags.config_from_flags(
        config.InspectConfig, fv, records=rest[1]
    ) == config.InspectConfig(records=d, num=2)
    with pytest.raises(ValueError, match="^--num must be >= 1, got 0"):
        config.InspectConfig(records=d, num=0).validate()
    # Not a prepared folder: refused by the config (before TensorFlow).
    with pytest.raises(ValueError, match="manifest.json not found"):
        config.InspectConfig(records=str(tmp_path)).validate()
