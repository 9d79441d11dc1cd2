"""Hostile inputs (issue 17): nothing lost, one clear line, nothing left.

Each test reproduces one case of the probe with fixtures made here, and
checks the documented outcome: one `error:` line, exit code 1 for failed
inputs and 2 for usage errors, the good inputs of the same call written,
nothing overwritten, truncated or left behind.
"""

import pathlib
import re
import subprocess
import sys

import keras
import numpy as np
import pytest
from absl import flags
from conftest import REPO
from conftest import run_tool

from uegan_tf.image_io import load_rgb
from uegan_tf.image_io import save_rgb
from uegan_tf.inference import stylize
from uegan_tf.inference.stylize import StylizeConfig
from uegan_tf.inference.stylize import expand_inputs
from uegan_tf.inference.stylizer import Stylizer
from uegan_tf.models import build_generator
from uegan_tf.quiet import wants_verbose
from uegan_tf.testing import synthetic_image


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    keras.utils.set_random_seed(5)
    path = tmp_path_factory.mktemp("model") / "g.keras"
    # Width 4 (32 is the reference): these tests are about plumbing.
    build_generator(unet=False, width=TINY_WIDTH).save(path)
    return str(path)


TINY_WIDTH = 4


def run_stylize(capsys, *args):
    """`uegan stylize ARGS...` in-process: (exit code, stdout, stderr)."""
    code = stylize.cli(["uegan stylize", *args], flags.FlagValues())
    out, err = capsys.readouterr()
    return code, out, err


def run_python(*argv):
    """`python ARGV...` from the repository root, output captured."""
    return subprocess.run(
        [sys.executable, *argv],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )


def error_lines(text):
    return [line for line in text.splitlines() if line.startswith("error:")]


# -- 1. two inputs, one output name -------------------------------------------


def test_inputs_mapping_to_one_name_both_survive(tmp_path, model_path, capsys):
    a = synthetic_image(24, 32, 1)
    b = synthetic_image(24, 32, 2)
    Image = pytest.importorskip("PIL.Image")
    Image.fromarray(a).save(tmp_path / "photo.bmp")
    Image.fromarray(b).save(tmp_path / "photo.webp", lossless=True)
    out = tmp_path / "out"
    code, _, err = run_stylize(
        capsys,
        str(tmp_path / "photo.bmp"),
        str(tmp_path / "photo.webp"),
        f"--model={model_path}",
        f"--out_dir={out}",
    )
    assert code == 0, err
    written = sorted(p.name for p in out.iterdir())
    assert written == ["photo_bmp.png", "photo_webp.png"]
    # Two different results, each from its own input.
    s = Stylizer(model_path, tile=0)
    np.testing.assert_array_equal(load_rgb(out / "photo_bmp.png"), s(a))
    np.testing.assert_array_equal(load_rgb(out / "photo_webp.png"), s(b))


def test_same_stem_jpg_and_png_with_format_png(tmp_path):
    save_rgb(tmp_path / "same.jpg", synthetic_image(16, 16, 1))
    save_rgb(tmp_path / "same.png", synthetic_image(16, 16, 2))
    jobs, errors = expand_inputs(
        [str(tmp_path / "same.jpg"), str(tmp_path / "same.png")],
        tmp_path / "out",
        image_format="png",
    )
    assert errors == []
    assert sorted(j.dst.name for j in jobs) == ["same_jpg.png", "same_png.png"]


def test_outputs_that_still_collide_are_refused(tmp_path):
    for sub in ("a", "b", "c/a"):
        save_rgb(tmp_path / sub / "x.png", synthetic_image(16, 16, 1))
    # Same name in two folders: the folder name tells them apart.
    jobs, errors = expand_inputs(
        [str(tmp_path / "a" / "x.png"), str(tmp_path / "b" / "x.png")],
        tmp_path / "out",
    )
    assert sorted(j.dst.name for j in jobs) == ["a_x_png.png", "b_x_png.png"]
    assert errors == []
    # Same name in two folders of the same name: both refused up front.
    jobs, errors = expand_inputs(
        [str(tmp_path / "a" / "x.png"), str(tmp_path / "c" / "a" / "x.png")],
        tmp_path / "out",
    )
    assert jobs == [] and len(errors) == 2
    assert all("collides with another input's" in e for e in errors)
    # Writing next to the input: x.png -> x.png would replace it.
    jobs, errors = expand_inputs(
        [str(tmp_path / "a" / "x.png")], tmp_path / "a"
    )
    assert jobs == []
    assert len(errors) == 1 and "would replace an input" in errors[0]


# -- 3. the output folder inside a folder input -------------------------------


def test_output_tree_inside_input_folder_is_never_read(
    tmp_path, model_path, capsys
):
    photos = tmp_path / "ea"
    save_rgb(photos / "one.png", synthetic_image(16, 20, 1))
    out = photos / "out"
    for _ in range(2):  # the second run must not find the first's output
        code, _, err = run_stylize(
            capsys,
            str(photos),
            f"--model={model_path}",
            f"--out_dir={out}",
            "--skip_existing",
        )
        assert code == 0, err
    written = sorted(str(p.relative_to(out)) for p in out.rglob("*.png"))
    assert written == ["ea/one.png"]
    # A glob over the tree skips the output folder too.
    jobs, _ = expand_inputs([f"{photos}/**/*.png"], out)
    assert [j.src.name for j in jobs] == ["one.png"]


# -- 4. an empty argument -----------------------------------------------------


def test_empty_argument_is_refused_not_the_current_folder(
    tmp_path, model_path, capsys, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    save_rgb(tmp_path / "here.png", synthetic_image(16, 16, 1))
    save_rgb(tmp_path / "good.png", synthetic_image(16, 16, 2))
    code, _, err = run_stylize(
        capsys, "", "good.png", f"--model={model_path}", "--out_dir=out"
    )
    assert code == 1
    errors = error_lines(err)
    assert errors == ["error: '': empty path (give . for the current folder)"]
    # The good input of the same call is written, nothing else.
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.png"]


# -- 5. tiny --max_side -------------------------------------------------------


@pytest.mark.parametrize("side", [1, 3, 7])
def test_tiny_max_side_is_a_usage_error(tmp_path, model_path, capsys, side):
    save_rgb(tmp_path / "good.png", synthetic_image(20, 30, 1))
    code, _, err = run_stylize(
        capsys,
        str(tmp_path / "good.png"),
        f"--model={model_path}",
        f"--out_dir={tmp_path / 'out'}",
        f"--max_side={side}",
    )
    assert code == 2
    assert error_lines(err) == [
        f"error: --max_side must be 0 (keep the size) or >= 8, got {side}"
    ]
    assert "Traceback" not in err and not (tmp_path / "out").exists()


def test_stylizer_with_tiny_max_side_does_not_recurse(model_path):
    # The library refuses nothing: a 3 px long side is padded for the
    # generator and cropped back (it used to recurse forever).
    out = Stylizer(model_path, tile=0, max_side=3)(synthetic_image(20, 30, 1))
    assert out.shape == (2, 3, 3)
    code_ok = Stylizer(model_path, tile=0, max_side=8)(
        synthetic_image(20, 30, 1)
    )
    assert code_ok.shape == (5, 8, 3)


def test_config_validation_names_the_flag():
    with pytest.raises(ValueError, match="--batch must be >= 1, got 0"):
        StylizeConfig(inputs=("x",), batch=0).validate()
    assert StylizeConfig(inputs=("x",), max_side=8).validate().max_side == 8


# -- 12, 13. start-up noise and --help ----------------------------------------


def test_cli_is_quiet_and_help_shows_the_commands_flags(tmp_path, model_path):
    save_rgb(tmp_path / "good.png", synthetic_image(16, 16, 1))
    res = run_python(
        "-m",
        "uegan_tf.cli",
        "stylize",
        str(tmp_path / "good.png"),
        str(tmp_path / "missing.png"),
        f"--model={model_path}",
        f"--out_dir={tmp_path / 'out'}",
    )
    assert res.returncode == 1
    # Exactly the user's lines (and the progress bar): no cuInit / oneDNN
    # / absl start-up notices.
    lines = [
        line
        for line in res.stderr.splitlines()
        if line.strip() and not line.startswith("images:")
    ]
    assert lines == [
        f"error: {tmp_path / 'missing.png'}: no such file or folder",
        f"done with 1 error(s); results in {tmp_path / 'out'}",
    ], res.stderr
    assert (tmp_path / "out" / "good.png").exists()


# Runs a module (`-m` style) or a script with its arguments, then says on
# stderr whether TensorFlow was imported by the time the process exited.
_NO_TF_RUNNER = """
import atexit, os, runpy, sys
atexit.register(lambda: print(
    "tensorflow imported:", "tensorflow" in sys.modules, file=sys.stderr))
target, sys.argv = sys.argv[1], sys.argv[1:]
if target.endswith(".py"):
    sys.path.insert(0, os.path.dirname(target))
    runpy.run_path(target, run_name="__main__")
else:
    runpy.run_module(target, run_name="__main__", alter_sys=True)
"""


@pytest.mark.parametrize(
    "command, error",
    [
        (
            ["uegan_tf.cli", "stylize", "--model={missing}", "{photo}"],
            "error: cannot load the model: {missing}: no such file or folder",
        ),
        (
            ["uegan_tf.cli", "app", "--model={missing}"],
            "error: {missing}: no such file or folder",
        ),
        (
            ["uegan_tf.cli", "add-style", "mine", "{missing}"],
            "error: {missing}: no such file or folder",
        ),
        (
            [
                "tools/export_tflite.py",
                "--checkpoint={missing}",
                "--out_dir={out}",
            ],
            "error: {missing}: no such file or folder",
        ),
        (
            [
                "uegan_tf.eval.evaluate",
                "--models=m={missing}@400",
                "--photos={photos}",
                "--out={out}",
            ],
            "error: {missing}: no such file or folder",
        ),
        (
            ["tools/inspect_tfrecords.py", "{missing}"],
            "error: {missing}/manifest.json not found: prepare the data "
            "first with `python tools/make_tfrecords.py --photo_dir=... "
            "--style_dir=... --out_dir={missing}`",
        ),
        (
            [
                "uegan_tf.train",
                "--flagfile=configs/smoke.flags",
                "--records_dir={missing}",
                "--workdir={out}",
            ],
            "error: {missing}/manifest.json not found: prepare the data "
            "first with `python tools/make_tfrecords.py --photo_dir=... "
            "--style_dir=... --out_dir={missing}`",
        ),
        (
            [
                "tools/make_tfrecords.py",
                "--photo_dir={missing}",
                "--style_dir={photos}",
                "--out_dir={out}",
            ],
            "error: photo folder not found: {missing}",
        ),
    ],
    ids=[
        "stylize",
        "app",
        "add-style",
        "export",
        "evaluate",
        "inspect_tfrecords",
        "train",
        "make_tfrecords",
    ],
)
def test_bad_paths_are_refused_before_tensorflow_is_imported(
    tmp_path, command, error
):
    """A model or folder that names nothing: one `error:` line, exit 2,
    without TensorFlow's import (5-8 s on a 2-core CPU: the user waited
    that long for a typo), and nothing created."""
    save_rgb(tmp_path / "photos" / "p.png", synthetic_image(16, 16, 0))
    names = {
        "missing": str(tmp_path / "nope"),
        "photo": str(tmp_path / "photos" / "p.png"),
        "photos": str(tmp_path / "photos"),
        "out": str(tmp_path / "out"),
    }
    args = [a.format(**names) for a in command]
    if args[0].endswith(".py"):
        args[0] = str(REPO / args[0])
    res = run_python("-c", _NO_TF_RUNNER, *args)
    assert res.returncode == 2, res.stderr
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert lines == [error.format(**names), "tensorflow imported: False"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["photos"]


def test_stylize_of_only_missing_inputs_writes_nothing(tmp_path):
    res = run_python(
        "-c",
        _NO_TF_RUNNER,
        "uegan_tf.cli",
        "stylize",
        str(tmp_path / "a.jpg"),
        f"--out_dir={tmp_path / 'out'}",
    )
    assert res.returncode == 1
    assert res.stderr.splitlines() == [
        f"error: {tmp_path / 'a.jpg'}: no such file or folder",
        "done with 1 error(s); nothing written",
        "tensorflow imported: False",
    ]
    assert not (tmp_path / "out").exists()


def test_stylize_help_lists_its_own_flags_first(capsys):
    assert stylize.cli(["uegan stylize", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage:\n  uegan stylize INPUTS...")
    flag_lines = [
        line.split(":")[0].strip()
        for line in out.splitlines()
        if line.startswith("  --")
    ]
    # Every stylize flag, and only those (no TensorFlow / absl flags).
    assert flag_lines == [
        "--[no]allow_short_video",
        "--batch",
        "--[no]brightness",
        "--[no]examples",
        "--format",
        "--max_megapixels",
        "--max_memory",
        "--max_side",
        "--model",
        "--out_dir",
        "--overlap",
        "--[no]overwrite",
        "--precision",
        "--[no]side_by_side",
        "--[no]skip_existing",
        "--step",
        "--style",
        "--temporal_smoothing",
        "--tile",
        "--[no]verbose",
    ]


def test_verbose_is_read_before_the_flags_are_parsed():
    assert wants_verbose(["x", "--verbose"])
    assert wants_verbose(["x", "--verbose=true"])
    assert not wants_verbose(["x", "--noverbose"])
    assert not wants_verbose(["x", "--", "--verbose"])  # an input name


# -- 6. corrupt model files ---------------------------------------------------


def _official_checkpoint(folder):
    """A TF1-style checkpoint with every official generator variable name."""
    import tensorflow as tf

    from uegan_tf.importers import official_variable_map

    folder.mkdir(parents=True)
    names = sorted(official_variable_map())
    tf.raw_ops.SaveV2(
        prefix=str(folder / "Hayao-64.ckpt"),
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[tf.fill([64], float(i)) for i in range(len(names))],
    )
    return folder


def _workdir(folder, model_path):
    """A training work dir: config.json and one object-based checkpoint."""
    import tensorflow as tf

    from uegan_tf.config import TrainConfig

    folder.mkdir(parents=True)
    cfg = TrainConfig(workdir=str(folder)).to_dict()
    cfg["model"]["unet"] = False
    cfg["model"]["g_width"] = TINY_WIDTH
    (folder / "config.json").write_text(__import__("json").dumps(cfg))
    g = keras.models.load_model(model_path, compile=False)
    ckpt = tf.train.Checkpoint(generator=g, step=tf.Variable(3, tf.int64))
    tf.train.CheckpointManager(ckpt, str(folder / "checkpoints"), 2).save(3)
    return folder


def _damage(path, how):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if how == "truncate" else b"x" * 64)


@pytest.mark.parametrize("suffix", [".index", ".data-00000-of-00001"])
@pytest.mark.parametrize("how", ["truncate", "garbage"])
@pytest.mark.parametrize("kind", ["workdir", "tf1"])
def test_corrupt_checkpoint_is_one_model_error(
    tmp_path, model_path, suffix, how, kind
):
    from uegan_tf.inference.stylizer import ModelLoadError
    from uegan_tf.inference.stylizer import load_generator

    if kind == "workdir":
        folder = _workdir(tmp_path / "run", model_path)
        # Intact, it loads (the fixture is a real work dir).
        assert load_generator(str(folder))[1]["step"] == 3
    else:
        folder = _official_checkpoint(tmp_path / "tf1")
    _damage(next(folder.rglob(f"*{suffix}")), how)
    with pytest.raises(ModelLoadError) as e:
        load_generator(str(folder))
    message = str(e.value)
    assert "\n" not in message
    assert "is corrupt or truncated" in message, message
    assert ("ckpt-3" if kind == "workdir" else "Hayao-64.ckpt") in message


@pytest.fixture(scope="module")
def tiny_savedmodel(tmp_path_factory):
    """A SavedModel with a variable and a uint8 serving_default."""
    import tensorflow as tf

    class Identity(tf.Module):
        def __init__(self):
            self.v = tf.Variable(1.0)

        @tf.function(
            input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8)]
        )
        def serve(self, x):
            return {"out": x}

    path = tmp_path_factory.mktemp("sm") / "good"
    module = Identity()
    tf.saved_model.save(
        module, str(path), signatures={"serving_default": module.serve}
    )
    return path


@pytest.mark.parametrize(
    "name",
    [
        "saved_model.pb",
        "variables/variables.index",
        "variables/variables.data-00000-of-00001",
    ],
)
def test_corrupt_savedmodel_is_one_model_error(tmp_path, tiny_savedmodel, name):
    import shutil

    from uegan_tf.inference.stylizer import ModelLoadError

    # Intact, it loads and runs (identity).
    out = Stylizer(str(tiny_savedmodel), tile=0)(synthetic_image(8, 8, 1))
    np.testing.assert_array_equal(out, synthetic_image(8, 8, 1))
    damaged = tmp_path / "sm"
    shutil.copytree(tiny_savedmodel, damaged)
    _damage(damaged / name, "truncate")
    with pytest.raises(ModelLoadError) as e:
        Stylizer(str(damaged))
    message = str(e.value)
    assert "\n" not in message
    assert message.startswith(
        f"{damaged}: cannot load SavedModel (corrupt, truncated or not a "
        "SavedModel: "
    )


@pytest.mark.parametrize("how", ["truncate", "garbage"])
def test_corrupt_keras_file_is_called_corrupt(tmp_path, model_path, how):
    from uegan_tf.inference.stylizer import ModelLoadError
    from uegan_tf.inference.stylizer import load_generator

    path = tmp_path / "g.keras"
    path.write_bytes(pathlib.Path(model_path).read_bytes())
    _damage(path, how)
    with pytest.raises(ModelLoadError, match="corrupt .keras file") as e:
        load_generator(str(path))
    assert "not found" not in str(e.value).lower()


def test_stylize_and_export_with_a_corrupt_model_exit_2(
    tmp_path, model_path, capsys
):
    folder = _official_checkpoint(tmp_path / "tf1")
    _damage(next(folder.glob("*.index")), "truncate")
    save_rgb(tmp_path / "good.png", synthetic_image(16, 16, 1))
    code, _, err = run_stylize(
        capsys,
        str(tmp_path / "good.png"),
        f"--model={folder}",
        f"--out_dir={tmp_path / 'out'}",
    )
    assert code == 2
    (line,) = error_lines(err)
    assert line.startswith("error: cannot load the model:")
    assert "Hayao-64.ckpt is corrupt or truncated" in line
    code, _, err = run_tool(
        capsys,
        "export_tflite",
        f"--checkpoint={folder}",
        f"--out_dir={tmp_path / 'exports'}",
    )
    assert code == 2
    assert err.splitlines() == [
        line.replace("error: cannot load the model: ", "error: ")
    ], err
    assert not (tmp_path / "exports").exists()


# -- 2, 9. truncated videos ---------------------------------------------------


def _clip(path, frames=30):
    """An H.264 MP4 with its index first (as phones and web exports do)."""
    from uegan_tf.testing import make_test_clip

    return make_test_clip(path, frames=frames, audio=False, faststart=True)


def _cut_media_data(src, dst, keep):
    """Copy `src` keeping its header and a fraction `keep` of its frames."""
    data = src.read_bytes()
    start = data.find(b"mdat") + 4
    dst.write_bytes(data[: start + int((len(data) - start) * keep)])
    return dst


def _frames(path):
    import imageio_ffmpeg

    return imageio_ffmpeg.count_frames_and_secs(str(path))[0]


def test_truncated_video_fails_unless_short_is_allowed(
    tmp_path, model_path, capsys
):
    full = _clip(tmp_path / "full.mp4")
    short = _cut_media_data(full, tmp_path / "short.mp4", 0.5)
    decodable = _frames(short)
    assert 0 < decodable <= 20  # the fixture: 30 declared, fewer decodable
    out = tmp_path / "out"
    code, stdout, err = run_stylize(
        capsys,
        str(short),
        str(full),
        f"--model={model_path}",
        f"--out_dir={out}",
    )
    assert code == 1
    assert error_lines(err) == [
        f"error: {short}: only {decodable} of the 30 frames its header "
        "declares could be decoded (truncated or damaged file); nothing "
        "written (--allow_short_video keeps them)"
    ]
    # The good video of the same call is complete; nothing else is left.
    assert sorted(p.name for p in out.iterdir()) == ["full.mp4"]
    assert _frames(out / "full.mp4") == 30
    # Asked to accept it: written with every decodable frame, and said so.
    code, _, err = run_stylize(
        capsys,
        str(short),
        f"--model={model_path}",
        f"--out_dir={out}",
        "--allow_short_video",
    )
    assert code == 0
    assert f"warning: {short}: only {decodable} of the 30 frames" in err
    assert _frames(out / "short.mp4") == decodable


def test_video_without_frames_is_one_line_ffmpeg_detail_only_verbose(
    tmp_path, model_path, capsys
):
    from uegan_tf.inference.video import VideoError
    from uegan_tf.inference.video import stylize_video

    empty = _cut_media_data(
        _clip(tmp_path / "full.mp4"), tmp_path / "empty.mp4", 0.0
    )
    save_rgb(tmp_path / "good.png", synthetic_image(16, 16, 1))
    out = tmp_path / "out"
    args = [str(empty), str(tmp_path / "good.png"), f"--model={model_path}"]
    code, _, err = run_stylize(capsys, *args, f"--out_dir={out}")
    assert code == 1
    lines = [line for line in err.splitlines() if line.strip()]
    (line,) = error_lines(err)
    assert re.fullmatch(
        rf"error: {re.escape(str(empty))}: cannot decode the video "
        r"\(stream 0, offset 0x[0-9a-f]+: partial file\)",
        line,
    ), err
    assert not any("ffmpeg version" in line for line in lines)
    assert not any("configuration:" in line for line in lines)
    assert sorted(p.name for p in out.iterdir()) == ["good.png"]
    # --verbose adds ffmpeg's log under the line.
    code, _, err = run_stylize(
        capsys, *args, f"--out_dir={tmp_path / 'out2'}", "--verbose"
    )
    assert code == 1 and "configuration:" in err
    # The library error (what the web app shows) is one line too.
    with pytest.raises(VideoError) as e:
        stylize_video(Stylizer(model_path, tile=0), empty, tmp_path / "x.mp4")
    assert "\n" not in str(e.value) and "configuration:" in e.value.detail
    assert not list(tmp_path.glob(".x*")) and not (tmp_path / "x.mp4").exists()


def test_short_video_tolerance_and_ffmpeg_reason():
    from uegan_tf.inference.video import ffmpeg_reason
    from uegan_tf.inference.video import is_short

    # 2 frames or 5 % of the declared count, whichever is more.
    assert not is_short(28, 30) and is_short(27, 30)
    assert not is_short(950, 1000) and is_short(949, 1000)
    assert not is_short(3, None)  # nothing declared: nothing to compare
    log = (
        "ffmpeg version n9 Copyright\n"
        "  configuration: --enable-error-resilience --enable-gpl\n"
        "  libavutil      61.  1.102 / 61.  1.102\n"
        "[in#0/mov @ 0x55b9] stream 0, offset 0xa4e: partial file\n"
        "[vf#0:0 @ 0x55b9] Task finished with error code: -1094995529\n"
        "Conversion failed!\n"
    )
    assert ffmpeg_reason(log) == "stream 0, offset 0xa4e: partial file"
    assert ffmpeg_reason("") == "ffmpeg failed"


# -- 8. an output folder that is a file ---------------------------------------


def test_make_tfrecords_out_dir_that_is_a_file(tmp_path):
    from uegan_tf.data.prepare import DataPreparationError
    from uegan_tf.data.prepare import PrepareConfig
    from uegan_tf.data.prepare import prepare_dataset
    from uegan_tf.testing import write_image_folders

    photo, style = write_image_folders(tmp_path, 2, 2, size=(64, 64))
    (tmp_path / "taken").write_text("keep me")
    for out, problem in (
        (tmp_path / "taken", "taken is a file, not a folder"),
        (
            tmp_path / "taken" / "sub",
            f"sub is inside {tmp_path / 'taken'}, which is a file",
        ),
    ):
        cfg = PrepareConfig(
            out_dir=str(out),
            photo_dir=str(photo),
            style_dir=str(style),
            workers=1,
        )
        with pytest.raises(DataPreparationError, match=re.escape(problem)):
            prepare_dataset(cfg, log=lambda m: None)
    assert (tmp_path / "taken").read_text() == "keep me"


def test_export_out_dir_that_is_a_file(tmp_path, model_path, capsys):
    (tmp_path / "taken").write_text("keep me")
    code, out, err = run_tool(
        capsys,
        "export_tflite",
        f"--checkpoint={model_path}",
        f"--out_dir={tmp_path / 'taken'}",
    )
    assert code == 2 and out == ""  # refused before loading the model
    assert err.splitlines() == [
        f"error: --out_dir: {tmp_path / 'taken'} is a file, not a folder"
    ]
    assert (tmp_path / "taken").read_text() == "keep me"


def test_stylize_out_dir_that_is_a_file(tmp_path, model_path, capsys):
    (tmp_path / "taken").write_text("keep me")
    save_rgb(tmp_path / "good.png", synthetic_image(16, 16, 1))
    code, _, err = run_stylize(
        capsys,
        str(tmp_path / "good.png"),
        f"--model={model_path}",
        f"--out_dir={tmp_path / 'taken'}",
    )
    assert code == 2
    assert error_lines(err) == [
        f"error: --out_dir: {tmp_path / 'taken'} is a file, not a folder"
    ]


# -- 7. a truncated .tfrecord -------------------------------------------------


@pytest.fixture
def truncated_records(tmp_path):
    from uegan_tf.testing import write_fake_records

    records = write_fake_records(tmp_path, n_photo=3, n_style=3, size=32)
    shard = next(records.glob("photo-*.tfrecord"))
    data = shard.read_bytes()
    shard.write_bytes(data[:-100])  # the last record loses its tail
    return records, shard


def test_inspect_names_the_truncated_file(truncated_records, capsys):
    from uegan_tf.data.inspect import summarize
    from uegan_tf.data.pipeline import CorruptRecordsError

    records, shard = truncated_records
    with pytest.raises(CorruptRecordsError) as e:
        summarize(records)
    message = str(e.value)
    assert "\n" not in message
    assert message.startswith(f"{shard}: truncated or corrupt TFRecord file")
    assert "make_tfrecords.py" in message and f"--out_dir={records}" in message
    code, _, err = run_tool(capsys, "inspect_tfrecords", str(records))
    assert code == 1
    assert err.splitlines() == [f"error: {message}"]
    assert not (records / "contact_sheet.png").exists()


def test_training_on_a_truncated_shard_says_how_to_remake_it(
    truncated_records, tmp_path
):
    from uegan_tf.data.pipeline import CorruptRecordsError
    from uegan_tf.data.pipeline import verify_shards
    from uegan_tf.testing import tiny_train_config
    from uegan_tf.train.trainer import Trainer

    records, shard = truncated_records
    cfg = tiny_train_config(tmp_path / "run", records)
    with pytest.raises(CorruptRecordsError, match=re.escape(str(shard))):
        Trainer(cfg, progress=False, log=lambda m: None)
    assert not (tmp_path / "run").exists()  # refused before any output
    # Whole shards pass, with their record counts.
    whole = records.parent / "whole"
    from uegan_tf.testing import write_fake_records

    assert verify_shards(
        write_fake_records(whole, n_photo=3, n_style=2, size=32)
    ) == {"photo": 3, "style": 2}


def test_train_command_on_a_truncated_shard_is_one_line_exit_1(
    truncated_records, tmp_path, capsys, monkeypatch
):
    from uegan_tf import flags as uflags
    from uegan_tf.train import __main__ as train

    records, shard = truncated_records
    fv = flags.FlagValues()  # other binaries' flags stay out of the way
    uflags.define_train_flags(fv)
    monkeypatch.chdir(REPO)  # nested flagfile paths are repo-relative
    fv(
        [
            "train",
            "--flagfile=configs/smoke.flags",
            f"--records_dir={records}",
            f"--workdir={tmp_path / 'run'}",
        ]
    )
    code = train.main(["train"], fv)
    err = capsys.readouterr().err
    assert code == 1
    (line,) = err.splitlines()
    assert line.startswith(f"error: {shard}: truncated or corrupt TFRecord")
    assert "make_tfrecords.py" in line


# -- 10. leftovers of killed runs ---------------------------------------------


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_stale_temporaries_are_removed_on_the_next_run(
    tmp_path, model_path, capsys
):
    import os

    from uegan_tf.fileutil import clean_stale_temps
    from uegan_tf.fileutil import temp_prefix

    out = tmp_path / "out"
    out.mkdir()
    dead = _dead_pid()
    # What a kill leaves: a half-written image, a video temporary (its
    # suffix stays .mp4 for ffmpeg) and a half-written export folder.
    stale = [
        out / f"{temp_prefix('photo.png', dead)}k3j2.part",
        out / f"{temp_prefix('long', dead)}x9q1.mp4",
        out / f"{temp_prefix('1', dead)}abcd.part",
    ]
    for path in stale[:2]:
        path.write_bytes(b"half")
    stale[2].mkdir()
    (stale[2] / "saved_model.pb").write_bytes(b"half")
    live = out / f"{temp_prefix('busy.png', os.getpid())}zz.part"
    live.write_bytes(b"a writer that is still running")
    other = out / ".notes.txt"
    other.write_text("not ours")

    save_rgb(tmp_path / "good.png", synthetic_image(16, 16, 1))
    code, stdout, _ = run_stylize(
        capsys,
        str(tmp_path / "good.png"),
        f"--model={model_path}",
        f"--out_dir={out}",
    )
    assert code == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(
        ["good.png", live.name, other.name]
    )
    assert stdout.count("left by an interrupted run") == 3
    assert clean_stale_temps(tmp_path / "missing") == []


def test_prepare_removes_stale_shard_temporaries(tmp_path):
    from uegan_tf.data.prepare import PrepareConfig
    from uegan_tf.data.prepare import prepare_dataset
    from uegan_tf.fileutil import temp_prefix
    from uegan_tf.testing import write_image_folders

    photo, style = write_image_folders(tmp_path, 2, 2, size=(64, 64))
    out = tmp_path / "records"
    out.mkdir()
    stale = (
        out
        / f"{temp_prefix('photo-00000-of-00001.tfrecord', _dead_pid())}q.part"
    )
    stale.write_bytes(b"half a shard")
    messages = []
    prepare_dataset(
        PrepareConfig(
            out_dir=str(out),
            photo_dir=str(photo),
            style_dir=str(style),
            workers=1,
            min_side=16,
            size=32,
        ),
        log=messages.append,
    )
    assert not stale.exists()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]
    assert f"removed {stale.name}, left by an interrupted run" in messages


def test_resume_cleans_checkpoint_temps_and_metrics(tmp_path):
    import json

    from uegan_tf.testing import tiny_train_config
    from uegan_tf.testing import write_fake_records
    from uegan_tf.train.trainer import Trainer

    records = write_fake_records(tmp_path / "data", 4, 2, size=40)
    cfg = tiny_train_config(
        tmp_path / "run",
        records,
        epochs=2,
        init_epochs=2,  # content-only steps: the cheap ones
        checkpoint_every=2,
        sample_every=100,
        data={"num_val_images": 0},
        model={"g_width": TINY_WIDTH},
    )
    messages = []
    trainer = Trainer(cfg, progress=False, log=messages.append)
    trainer.total_steps = 2
    trainer.train()
    # What kill -9 after step 3, during the save of step 4, leaves: step
    # 3 logged but not checkpointed, a half-written checkpoint folder and
    # a torn last line.
    metrics = tmp_path / "run" / "metrics.jsonl"
    with metrics.open("a") as f:
        f.write(json.dumps({"step": 3, "phase": "init"}) + "\n")
        f.write('{"step": 4, "pha')
    temp = tmp_path / "run" / "checkpoints" / "ckpt-4_temp"
    temp.mkdir()
    (temp / "part-00000-of-00001.data-00000-of-00001").write_bytes(b"x")

    trainer.total_steps = 4
    assert trainer.train()["step"] == 4
    steps = [
        json.loads(line)["step"] for line in metrics.read_text().splitlines()
    ]
    assert steps == [1, 2, 3, 4]  # each step once, in order
    assert not temp.exists()
    assert (
        sorted(
            p.name
            for p in (tmp_path / "run" / "checkpoints").iterdir()
            if p.is_dir()
        )
        == []
    )
    assert any("dropped 2 line(s) after step 2" in m for m in messages)


# -- 11. entries a folder walk cannot use -------------------------------------


def _awkward_folder(root):
    """Three good photos and every kind of entry a walk must not drop."""
    for i in range(2):
        save_rgb(root / f"p{i}.png", synthetic_image(64, 64, i))
    (root / "dir.jpg").mkdir()
    save_rgb(root / "dir.jpg" / "inner.png", synthetic_image(64, 64, 5))
    (root / "dangling.jpg").symlink_to(root / "gone.jpg")
    (root / "loop_a.jpg").symlink_to(root / "loop_b.jpg")
    (root / "loop_b.jpg").symlink_to(root / "loop_a.jpg")
    (root / "elsewhere").symlink_to(root.parent)
    return {
        "dangling.jpg": "dangling symbolic link (its target does not exist)",
        "dir.jpg": "a folder with an image name (its contents are searched)",
        "elsewhere": "symbolic link to a folder (not followed)",
        "loop_a.jpg": "symbolic link loop",
        "loop_b.jpg": "symbolic link loop",
    }


def test_make_tfrecords_lists_every_skipped_entry(tmp_path):
    from uegan_tf.data.prepare import PrepareConfig
    from uegan_tf.data.prepare import prepare_dataset
    from uegan_tf.testing import write_image_folders

    _, style = write_image_folders(tmp_path, 0, 2, size=(64, 64))
    expected = _awkward_folder(tmp_path / "photo")
    messages = []
    manifest = prepare_dataset(
        PrepareConfig(
            out_dir=str(tmp_path / "records"),
            photo_dir=str(tmp_path / "photo"),
            style_dir=str(style),
            workers=1,
            size=32,
            min_side=16,
        ),
        log=messages.append,
    )
    assert manifest["photo"]["count"] == 3  # p0, p1 and dir.jpg/inner.png
    listed = {
        s["source"]: s["reason"]
        for s in manifest["skipped"]
        if s["kind"] == "photo"
    }
    assert listed == expected
    for source, reason in expected.items():
        assert f"skipped photo {source}: {reason}" in messages


def test_stylize_warns_about_the_same_entries(tmp_path):
    expected = _awkward_folder(tmp_path / "photo")
    warnings = []
    jobs, errors = expand_inputs(
        [str(tmp_path / "photo")], tmp_path / "out", warn=warnings.append
    )
    assert errors == []
    assert sorted(j.src.name for j in jobs) == ["inner.png", "p0.png", "p1.png"]
    assert sorted(warnings) == sorted(
        f"{tmp_path / 'photo' / name}: skipped, {reason}"
        for name, reason in expected.items()
    )


# -- 14. the pixel limit ------------------------------------------------------


def _png_header_only(path, width, height):
    """A PNG that declares width x height (no pixel data: never decoded)."""
    import struct
    import zlib

    def chunk(kind, data):
        body = kind + data
        return (
            struct.pack(">I", len(data))
            + body
            + struct.pack(">I", zlib.crc32(body))
        )

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 64))  # one row's start
        + chunk(b"IEND", b"")
    )
    return path


def test_huge_image_is_refused_from_its_header_with_the_flag(
    tmp_path, model_path, capsys
):
    import time

    from uegan_tf.image_io import MAX_PIXELS

    # The default follows the measured memory budget (image_io.MAX_PIXELS).
    assert MAX_PIXELS == 64_000_000
    huge = _png_header_only(tmp_path / "huge.png", 17000, 17000)  # 289 MP
    save_rgb(tmp_path / "good.png", synthetic_image(16, 16, 1))
    start = time.monotonic()
    code, _, err = run_stylize(
        capsys,
        str(huge),
        str(tmp_path / "good.png"),
        f"--model={model_path}",
        f"--out_dir={tmp_path / 'out'}",
    )
    assert time.monotonic() - start < 60  # refused, not stylized for hours
    assert code == 1
    assert error_lines(err) == [
        f"error: {huge}: image too large (17000x17000; the limit is 64 "
        "megapixels); --max_megapixels=289 would admit it (~12.5 GB of "
        "memory)"
    ]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.png"]
    # Raised, the header passes the limit (and the truncated file then
    # fails as what it is).
    above = _png_header_only(tmp_path / "above.png", 9000, 8000)  # 72 MP
    code, _, err = run_stylize(
        capsys,
        str(above),
        f"--model={model_path}",
        f"--out_dir={tmp_path / 'out2'}",
        "--max_megapixels=80",
    )
    assert code == 1
    assert "corrupt or truncated image" in error_lines(err)[0]
