"""The stylize command: sizes, tiling, videos, bad inputs."""

import subprocess

import imageio_ffmpeg
import keras
import numpy as np
import pytest
from absl import flags
from conftest import REPO
from conftest import peak_rss_of
from PIL import Image

from uegan_tf import cli
from uegan_tf.image_io import load_rgb
from uegan_tf.image_io import save_rgb
from uegan_tf.inference.stylize import StylizeConfig
from uegan_tf.inference.stylize import run
from uegan_tf.inference.stylizer import Stylizer
from uegan_tf.inference.stylizer import match_brightness
from uegan_tf.inference.stylizer import tile_grid
from uegan_tf.inference.video import probe
from uegan_tf.inference.video import temporal_blend
from uegan_tf.models import build_generator
from uegan_tf.testing import make_test_clip
from uegan_tf.testing import synthetic_image

FFMPEG = imageio_ffmpeg.get_ffmpeg_exe()


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    keras.utils.set_random_seed(5)
    path = tmp_path_factory.mktemp("model") / "g.keras"
    build_generator(unet=True).save(path)
    return str(path)


@pytest.fixture(scope="module")
def stylizer(model_path):
    return Stylizer(model_path, tile=0)


@pytest.fixture(scope="module")
def tiny_model_path(tmp_path_factory):
    """A width-4 generator (32 is the reference): for plumbing tests."""
    keras.utils.set_random_seed(5)
    path = tmp_path_factory.mktemp("tiny") / "g.keras"
    build_generator(unet=True, width=4).save(path)
    return str(path)


@pytest.fixture(scope="module")
def tiny_stylizer(tiny_model_path):
    return Stylizer(tiny_model_path, tile=0)


def run_cli(capsys, *args):
    """`uegan ARGS...` in-process: (exit code, stdout, stderr)."""
    code = cli.main(["uegan", *args], flags.FlagValues())
    out, err = capsys.readouterr()
    return code, out, err


def test_output_size_equals_input_size_for_odd_sizes(tiny_stylizer):
    stylizer = tiny_stylizer
    for h, w in ((131, 257), (37, 45), (4, 4), (1, 1), (3, 10)):
        img = synthetic_image(h, w, 1)
        out = stylizer(img)
        assert out.shape == (h, w, 3) and out.dtype == np.uint8
    with pytest.raises(ValueError, match="empty image"):
        stylizer(np.zeros((0, 10, 3), np.uint8))


def test_uint8_pipeline_equals_the_float_generator(tiny_stylizer):
    stylizer = tiny_stylizer
    img = synthetic_image(48, 40, 2)
    expected = stylizer.generator(img[None] / 127.5 - 1.0).numpy()[0]
    expected = np.clip(np.round((expected + 1) * 127.5), 0, 255)
    diff = np.abs(stylizer(img).astype(int) - expected.astype(int))
    # Rounding at .5 boundaries may differ between graph and eager float32.
    assert diff.max() <= 1 and (diff == 0).mean() > 0.99


def test_tiled_matches_untiled(model_path, stylizer):
    img = np.asarray(Image.open(REPO / "uegan_tf" / "examples" / "coffee.jpg"))[
        :224, :320
    ]
    full = stylizer(img).astype(np.float64)
    # Whole-image statistics (the image is below stats_side): tiles are
    # normalised exactly as the untiled pass.
    tiled = Stylizer(model_path, tile=128, overlap=32, tile_batch=4)(img)
    diff = np.abs(full - tiled)
    inner = diff[16:-16, 16:-16]
    psnr = 10 * np.log10(255**2 / np.mean(inner**2))
    assert psnr >= 35, psnr
    # No seam: across every tile boundary the tiled image changes no more
    # than the untiled one does there (+ a small tolerance).
    for y in tile_grid(224, 320, 128 * 128, 32, max_side=128)[2][1:]:
        for c in (y + 8, y + 16, y + 24):  # inside the blending band
            jump_t = np.abs(
                np.diff(tiled[c - 1 : c + 1].astype(float), axis=0)
            ).mean()
            jump_f = np.abs(np.diff(full[c - 1 : c + 1], axis=0)).mean()
            assert jump_t <= jump_f + 2.0
    # Tile-local statistics are what makes naive tiling drift.
    naive = Stylizer(model_path, tile=128, overlap=32)
    naive.generator = None  # forces the per-tile statistics path
    naive_psnr = 10 * np.log10(
        255**2 / np.mean((full - naive(img))[16:-16, 16:-16] ** 2)
    )
    assert naive_psnr < psnr


def test_auto_tiling_by_memory_budget(model_path):
    s = Stylizer(model_path, max_memory=1_500_000_000)
    assert s.wants_tiles(2000, 2000) and not s.wants_tiles(256, 256)
    assert not Stylizer(model_path, tile=0).wants_tiles(5000, 5000)


def test_max_side_and_brightness(tiny_model_path):
    img = synthetic_image(120, 200, 3)
    s = Stylizer(tiny_model_path, tile=0, max_side=100, brightness=True)
    out = s(img)
    assert out.shape == (60, 100, 3)
    luma = np.array([0.299, 0.587, 0.114])
    small = s.prepare(img)
    assert abs((out @ luma).mean() - (small @ luma).mean()) < 1.0
    # A black output is left alone (no division by zero).
    black = np.zeros((8, 8, 3), np.uint8)
    np.testing.assert_array_equal(match_brightness(black, img[:8, :8]), black)


def test_temporal_blend_keeps_static_regions_and_follows_motion():
    prev_in = np.zeros((4, 4, 3), np.uint8)
    cur_in = prev_in.copy()
    cur_in[:, 2:] = 200  # the right half moved
    prev_out = np.full((4, 4, 3), 100, np.uint8)
    cur = np.full((4, 4, 3), 50, np.uint8)
    out = temporal_blend(cur, prev_out, cur_in, prev_in, 0.5)
    assert (out[:, :2] == 75).all()  # static: half way to the previous
    assert (out[:, 2:] == 50).all()  # moved: the new frame


def test_video_keeps_frames_fps_and_audio(tmp_path, tiny_model_path):
    model_path = tiny_model_path
    src = make_test_clip(tmp_path / "clip.mov", frames=12)
    frames_in, _ = imageio_ffmpeg.count_frames_and_secs(str(src))
    cfg = StylizeConfig(
        inputs=(str(src),),
        out_dir=str(tmp_path / "out"),
        model=model_path,
        batch=5,
        temporal_smoothing=0.5,
    )
    assert run(cfg, log=lambda m: None, progress=False) == 0
    out = tmp_path / "out" / "clip.mp4"
    frames_out, _ = imageio_ffmpeg.count_frames_and_secs(str(out))
    assert frames_out == frames_in == 12
    info = probe(out)
    assert info["has_audio"] and float(info["fps"]) == 8.0
    assert (info["width"], info["height"]) == (64, 48)
    # Side by side doubles the width; a clip without audio stays silent.
    silent = make_test_clip(tmp_path / "silent.mp4", frames=5, audio=False)
    cfg = StylizeConfig(
        inputs=(str(silent),),
        out_dir=str(tmp_path / "sbs"),
        model=model_path,
        side_by_side=True,
    )
    assert run(cfg, log=lambda m: None, progress=False) == 0
    info = probe(tmp_path / "sbs" / "silent.mp4")
    assert not info["has_audio"] and info["width"] == 128


class _InvertStylizer:
    """A stand-in generator: inverts colours, can fail at a given call."""

    def __init__(self, fail_at=None):
        self.calls = 0
        self.fail_at = fail_at

    def prepare(self, rgb):
        return rgb

    def stylize_batch(self, frames):
        self.calls += 1
        if self.calls == self.fail_at:
            raise RuntimeError("generator failed")
        return 255 - np.asarray(frames)


def _decode(path):
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    w, h = meta["size"]
    return np.stack(
        [np.frombuffer(f, np.uint8).reshape(h, w, 3) for f in reader]
    )


def test_overlapped_video_equals_sequential_in_order(tmp_path):
    """Decode / stylize / encode threads give the same frames, in order."""
    from uegan_tf.inference.video import stylize_video

    src = make_test_clip(tmp_path / "clip.mp4", frames=11, size="96x64")
    outs = {}
    for overlap in (True, False):
        dst = tmp_path / f"out_{overlap}.mp4"
        info = stylize_video(
            _InvertStylizer(), src, dst, batch=3, overlap=overlap
        )
        assert info["frames"] == 11
        assert 0 <= info["model_seconds"] <= info["seconds"]
        outs[overlap] = _decode(dst)
    assert outs[True].shape == (11, 64, 96, 3)
    np.testing.assert_array_equal(outs[True], outs[False])
    # In order: each output frame is closest to the inverse of its own
    # input frame (testsrc frames differ a little from one to the next;
    # H.264 round trips cost ~2 grey levels).
    out = outs[True].astype(np.int16)[:, None]
    inverted = (255 - _decode(src).astype(np.int16))[None]
    dist = np.abs(out - inverted).mean(axis=(2, 3, 4))  # [out, in]
    assert list(dist.argmin(axis=1)) == list(range(11))
    assert dist.diagonal().max() < 4


@pytest.mark.parametrize("where", ["model", "writer"])
def test_overlapped_video_error_stops_all_threads(tmp_path, where):
    import threading

    from uegan_tf.inference.video import stylize_video

    src = make_test_clip(tmp_path / "clip.mp4", frames=20, audio=False)
    before = threading.active_count()
    stylizer = _InvertStylizer(fail_at=3 if where == "model" else None)

    def progress(done):
        if where == "writer" and done >= 4:
            raise OSError("disk full")

    with pytest.raises((RuntimeError, OSError), match="failed|disk full"):
        stylize_video(
            stylizer,
            src,
            tmp_path / "out" / "clip.mp4",
            batch=2,
            progress=progress,
        )
    # Our decode and encode threads are joined (a count of all threads
    # was flaky under load: imageio-ffmpeg's stderr reader of the closed
    # ffmpeg process may still be finishing).
    assert [
        t.name for t in threading.enumerate() if t.name.startswith("video-")
    ] == []
    assert threading.active_count() <= before + 1
    # Nothing half-written: no output, no temporary file.
    assert list((tmp_path / "out").iterdir()) == []


def test_bad_inputs_one_line_each_others_processed(
    tmp_path, tiny_model_path, capsys
):
    inp = tmp_path / "in"
    save_rgb(inp / "good.png", synthetic_image(40, 52, 1))
    (inp / "corrupt.jpg").write_bytes(b"\xff\xd8\xff\xe0garbage")
    (inp / "notes.png").write_text("plain text")
    (inp / "empty.mp4").write_bytes(b"")
    subprocess.run(
        [
            FFMPEG,
            "-y",
            "-loglevel",
            "error",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=300",
            "-t",
            "0.5",
            "-c:a",
            "aac",
            str(inp / "audio_only.mp4"),
        ],
        check=True,
    )
    args = [
        "stylize",
        str(inp),
        str(tmp_path / "missing.jpg"),
        f"--model={tiny_model_path}",
        f"--out_dir={tmp_path / 'out'}",
    ]
    code, _, err = run_cli(capsys, *args)
    assert code == 1
    assert "Traceback" not in err
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(errors) == 5, err
    text = "\n".join(errors)
    assert "missing.jpg: no such file" in text
    assert "corrupt.jpg: corrupt or truncated" in text
    assert "notes.png: not an image" in text
    assert "empty.mp4: not a readable video" in text or (
        "empty.mp4: no video stream" in text
    )
    assert "audio_only.mp4: no video stream" in text
    assert load_rgb(tmp_path / "out" / "in" / "good.png").shape == (40, 52, 3)

    # Existing outputs are neither overwritten nor silently skipped...
    again = args[:2] + args[3:]
    code, _, err = run_cli(capsys, *again)
    assert code == 1 and "exists (use --overwrite" in err
    # ...unless asked.
    code, out, err = run_cli(capsys, *again, "--skip_existing")
    # (the four bad files still fail; the good one is skipped, not an error)
    assert code == 1 and "skip (exists)" in out
    assert "exists (use" not in err

    # An output folder that cannot be created: one line, exit 2.
    (tmp_path / "file").write_text("x")
    code, _, err = run_cli(
        capsys,
        *args[:2],
        f"--model={tiny_model_path}",
        f"--out_dir={tmp_path / 'file' / 'sub'}",
    )
    assert code == 2
    last = err.strip().splitlines()[-1]
    assert last.startswith("error:") and "file" in last
    assert "Traceback" not in err


def test_unknown_style_is_a_clear_error(tmp_path, capsys):
    code, _, err = run_cli(
        capsys, "stylize", "--style=nope", "--examples", f"--out_dir={tmp_path}"
    )
    assert code == 2
    assert "unknown style 'nope'" in err
    assert "Traceback" not in err


def test_usage_errors_are_one_line(tmp_path, capsys):
    for args, message in (
        (["--tile=10"], "error: --tile must be 0 or >= 64, got 10"),
        (["--tile=x"], "error: flag --tile=x: invalid literal for int()"),
        (
            ["--style=a", "--model=b"],
            "error: give --style or --model, not both",
        ),
        (["--format=gif"], "error: flag --format=gif: value should be one of"),
    ):
        code, out, err = run_cli(
            capsys, "stylize", "x.jpg", f"--out_dir={tmp_path}", *args
        )
        assert code == 2 and out == ""
        (line,) = err.splitlines()
        assert line.startswith(message), line
    code, _, err = run_cli(capsys, "stylize", f"--out_dir={tmp_path}")
    assert code == 2 and err.startswith("error: no inputs")


def test_peak_rss_of_measures_the_child_alone():
    """The memory tests' measure: a small child of a big parent is small.

    `ru_maxrss` of a subprocess includes its parent's peak (Linux carries
    it over at exec): the slow memory tests failed at 2.2 and 6.9 GB in a
    pytest worker that had run big tests before.
    """
    big = np.ones(2**27)  # 1 GiB, touched: this process's peak is >= it
    _, peak = peak_rss_of("x = 1", timeout=120)
    assert big.sum() == 2**27
    assert peak < 300 * 2**20, peak / 2**20


@pytest.mark.slow
def test_large_image_runs_in_bounded_memory(tmp_path, model_path):
    """A 4000x3000 photo, tiled automatically; peak RSS measured."""
    script = (
        "import numpy as np\n"
        "from uegan_tf.inference.stylizer import Stylizer\n"
        f"s = Stylizer({model_path!r}, tile_batch=1)\n"
        "img = (np.random.default_rng(0).uniform(0, 255, (3000, 4000, 3))"
        ").astype(np.uint8)\n"
        "out = s(img)\n"
        "assert out.shape == (3000, 4000, 3)\n"
    )
    _, peak = peak_rss_of(script, timeout=3600)
    peak_mb = peak / 2**20
    # Untiled, the 32/64-channel full-resolution activations alone would
    # need several GB each; tiled (512 px tiles + a 1024 px statistics
    # pass) the process stays under 4 GB (measured: see the README).
    assert peak_mb < 4096, peak_mb
    print(f"peak RSS {peak_mb:.0f} MB")


def test_missing_model_is_reported_before_existing_outputs(tmp_path, capsys):
    """With outputs that already exist, a --model that names nothing is
    still the error (exit 2), not a list of "exists" errors (exit 1)."""
    save_rgb(tmp_path / "photos" / "a.jpg", np.full((16, 16, 3), 90, np.uint8))
    save_rgb(tmp_path / "out" / "a.jpg", np.zeros((16, 16, 3), np.uint8))
    code, _, err = run_cli(
        capsys,
        "stylize",
        str(tmp_path / "photos"),
        f"--out_dir={tmp_path / 'out'}",
        f"--model={tmp_path / 'nope'}",
    )
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(
        "error: cannot load the model"
    )
    assert "exists" not in err
