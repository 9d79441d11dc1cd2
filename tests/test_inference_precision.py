"""bfloat16 inference (`--precision=bf16`) and memory-budget tiling."""

import keras
import numpy as np
import pytest
from absl import flags
from absl.testing import flagsaver
from conftest import REPO
from conftest import peak_rss_of
from conftest import shared_path

from uegan_tf import app
from uegan_tf import precision
from uegan_tf.image_io import load_rgb
from uegan_tf.image_io import parse_memory
from uegan_tf.image_ops import fit_long_side
from uegan_tf.inference import stylize
from uegan_tf.inference.stylizer import Stylizer
from uegan_tf.inference.stylizer import choose_tile
from uegan_tf.inference.stylizer import stats_side_for
from uegan_tf.inference.stylizer import with_precision
from uegan_tf.models import build_generator
from uegan_tf.testing import synthetic_image

# Plumbing tests: the reference graph at 1/8 of its channels.
WIDTH = 4


@pytest.fixture(scope="module")
def model_path(tmp_path_factory):
    keras.utils.set_random_seed(7)
    path = tmp_path_factory.mktemp("model") / "g.keras"
    build_generator(unet=True, width=WIDTH).save(path)
    return str(path)


@pytest.fixture(scope="module")
def full_model_path(tmp_path_factory):
    """The reference network (memory measurements)."""
    keras.utils.set_random_seed(7)
    path = tmp_path_factory.mktemp("full_model") / "g.keras"
    build_generator(unet=True).save(path)
    return str(path)


@pytest.fixture
def native_bf16(monkeypatch):
    """Pretend the CPU has native bfloat16 (it runs emulated otherwise)."""
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda flags=None: True)


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * np.log10(255**2 / mse) if mse else np.inf


def test_bf16_generator_computes_in_bfloat16_with_float32_variables():
    g = build_generator(unet=True, width=WIDTH)
    fast = with_precision(g, "bf16")
    assert fast.width == WIDTH and fast.count_params() == g.count_params()
    assert with_precision(g, "fp32") is g
    assert fast.compute_dtype == "bfloat16"
    assert fast.a0.conv.compute_dtype == "bfloat16"
    assert {v.dtype for v in fast.weights} == {"float32"}
    # Layer-norm statistics and the output layer stay float32.
    assert fast.out_conv.compute_dtype == "float32"
    for a, b in zip(g.weights, fast.weights):
        np.testing.assert_array_equal(a.numpy(), b.numpy())
    y = fast(np.zeros((1, 16, 16, 3), np.float32))
    assert y.dtype == "float32"
    with pytest.raises(ValueError, match="unknown precision"):
        with_precision(g, "fp8")


def test_bf16_stylizer_on_a_real_photo(native_bf16):
    """Measured 54-56 dB on the six val photos at 512 px (bench/
    bench_precision.py); the bar keeps a 10 dB margin."""
    photo = shared_path("data", "val_photo", "skimage_coffee.jpg")
    rgb = fit_long_side(load_rgb(photo), 384)
    fp32 = Stylizer("anime", tile=0)
    bf16 = Stylizer("anime", tile=0, precision="bf16")
    assert bf16.precision == "bf16" and bf16.info["precision"] == "bf16"
    assert bf16.generator.compute_dtype == "bfloat16"
    assert psnr(fp32(rgb), bf16(rgb)) >= 45
    # Tiled with whole-image statistics, bf16 still agrees with fp32.
    tiled = bf16.with_options(tile=128, overlap=32)
    assert psnr(fp32(rgb), tiled(rgb)) >= 35


def test_no_native_bf16_says_so_once_and_runs_fp32(
    model_path, monkeypatch, capsys
):
    monkeypatch.setattr(precision, "cpu_has_bf16", lambda flags=None: False)
    notes = []
    s = Stylizer(model_path, tile=0, precision="bf16", note=notes.append)
    assert notes == [precision.NO_BF16_NOTE]
    assert s.precision == "fp32"
    assert s.generator.compute_dtype == "float32"
    assert s(synthetic_image(16, 16, 1)).shape == (16, 16, 3)
    # Default: one line on stderr.
    Stylizer(model_path, tile=0, precision="bf16")
    err = capsys.readouterr().err
    assert err.count("running in fp32") == 1
    assert "AVX512_BF16" in err
    with pytest.raises(ValueError, match="precision must be"):
        precision.inference_precision("fp16")


def test_stylize_and_app_flags(tmp_path):
    stylize.define_flags()
    with flagsaver.flagsaver():
        flags.FLAGS.unparse_flags()
        argv = flags.FLAGS(
            [
                "uegan stylize",
                "a.jpg",
                f"--out_dir={tmp_path}",
                "--precision=bf16",
                "--max_memory=800M",
            ]
        )
        cfg = stylize.config_from_flags(argv)
    assert cfg.precision == "bf16" and cfg.max_memory == 800_000_000
    with flagsaver.flagsaver():
        flags.FLAGS.unparse_flags()
        argv = flags.FLAGS(["uegan stylize", "a.jpg", f"--out_dir={tmp_path}"])
        cfg = stylize.config_from_flags(argv)
    assert cfg.precision == "fp32" and cfg.max_memory == 1_500_000_000
    with flagsaver.flagsaver():
        flags.FLAGS.unparse_flags()
        with pytest.raises(flags.IllegalFlagValueError):
            flags.FLAGS(["uegan stylize", "--precision=fp16"])
    config, _ = app.parse_args(["uegan app", "--precision=bf16"])
    assert config.precision == "bf16" and config.max_memory == 1_500_000_000
    config, _ = app.parse_args(
        ["uegan app", "--max_memory=3G", "--concurrency=2"]
    )
    assert config.max_memory == 3_000_000_000
    # The fixed part counted once, the rest shared by the 2 requests.
    from uegan_tf.inference.stylizer import MEMORY_BASE_BYTES as base

    assert config.request_memory() == base + (3_000_000_000 - base) // 2
    with pytest.raises(ValueError, match="should be one of <fp32|bf16>"):
        app.parse_args(["uegan app", "--precision=int8"])
    with pytest.raises(ValueError, match="memory size"):
        app.parse_args(["uegan app", "--max_memory=lots"])


def test_parse_memory():
    assert parse_memory("1.5G") == 1_500_000_000
    assert parse_memory("800M") == 800_000_000
    assert parse_memory("800mb") == 800_000_000
    assert parse_memory("2048k") == 2_048_000
    assert parse_memory("1e9") == 1_000_000_000
    for bad in ("", "G", "-1G", "0", "lots", "inf"):
        with pytest.raises(ValueError):
            parse_memory(bad)


def test_choose_tile_hand_computed():
    # Model: base 100, 10 B per generator pixel, image buffers 4 B/px tiled
    # and 1 B/px untiled.
    def tile(h, w, budget, **kw):
        kw = {
            "base": 100,
            "image_per_pixel": 4,
            "untiled_image_per_pixel": 1,
            "min_tile": 8,
            "tiled_slack": 0,
            **kw,
        }
        return choose_tile(h, w, budget, 10, **kw)

    # Untiled 100 + 11 * 400 = 4500 fits exactly.
    assert tile(20, 20, 4500) == 0
    # One byte less: tiles. Free 4499 - 100 - 4 * 400 = 2799 -> 279.9 px
    # per tile: 16 x 16 = 256 fits, 20 x 20 does not.
    assert tile(20, 20, 4499) == 16
    # A strip: 8 x 100 image; untiled 100 + 11 * 800 = 8900 > 5000. Free
    # 5000 - 100 - 3200 = 1700 -> 170 px: a tile of side t covers
    # 8 x min(t, 100); 8 x 20 = 160 fits, 8 x 24 = 192 does not.
    assert tile(8, 100, 5000) == 20
    # Slack only when tiled: 20 x 20 still fits untiled at 4500; tiled at
    # 4499 with 700 of slack the free 2099 -> 209.9 px: 12 x 12 (16 x 16 no).
    assert tile(20, 20, 4500, tiled_slack=700) == 0
    assert tile(20, 20, 4499, tiled_slack=700) == 12
    # Two tiles per call halve the pixels of each: 85 px -> 8 x 8.
    assert tile(8, 100, 5000, tile_batch=2) == 8
    # Nothing fits: the smallest tile anyway.
    assert tile(100, 100, 1000) == 8
    # Sides are multiples of 4.
    assert all(tile(50, 50, b) % 4 == 0 for b in range(11_000, 30_000, 997))
    # The project's model: a 1920x1080 photo is tiled under the default
    # budget, a 512x384 one is not; a bigger budget means bigger tiles.
    from uegan_tf.inference.stylizer import MODEL_BYTES_PER_PIXEL as k

    assert choose_tile(384, 512, 1_500_000_000, k["fp32"]) == 0
    t15 = choose_tile(1080, 1920, 1_500_000_000, k["fp32"])
    t3 = choose_tile(1080, 1920, 3_000_000_000, k["fp32"])
    assert 256 <= t15 < t3
    assert choose_tile(1080, 1920, 1_500_000_000, k["bf16"]) > t15


def test_stats_side_fits_the_tile_pixels():
    assert stats_side_for(3000, 4000, 1e12, 1024) == 1024
    # 250_000 px at 4:3 -> long side sqrt(250_000 * 4 / 3) = 577.
    assert stats_side_for(3000, 4000, 250_000, 1024) == 577
    assert stats_side_for(300, 400, 1e12, 1024) == 400


def test_budget_decides_tiling(model_path):
    s = Stylizer(model_path)
    assert not s.wants_tiles(384, 512)
    assert s.wants_tiles(1080, 1920)
    assert not s.with_options(max_memory=None).wants_tiles(1080, 1920)
    assert not Stylizer(model_path, tile=0).wants_tiles(5000, 5000)
    assert Stylizer(model_path, tile=256).tile_for(300, 200) == 256
    # Tiled under a tiny budget: close to untiled. The statistics copy is
    # downscaled to the tile's pixels too (here 224x320 -> ~150x214),
    # which costs more than the blending does.
    img = load_rgb(REPO / "uegan_tf" / "examples" / "coffee.jpg")[:224, :320]
    small = s.with_options(max_memory=850_000_000, overlap=16)
    assert 0 < small.tile_for(224, 320) < 224
    full = s(img)
    print("tile", small.tile_for(224, 320), "PSNR", psnr(full, small(img)))
    assert psnr(full, small(img)) >= 35


@pytest.mark.slow
def test_two_megapixel_photo_stays_under_a_small_budget(full_model_path):
    """A 1600x1250 image under a 1.2 GB budget; peak RSS in a subprocess.

    The budget counts the whole process: the interpreter, TensorFlow and
    a model measured ~0.8 GB after a warm-up call here, so 1.2 GB leaves
    ~0.4 GB for the tiles; untiled, the model estimates ~5.7 GB.
    """
    budget = 1_200_000_000
    script = (
        "import numpy as np\n"
        "from uegan_tf.inference.stylizer import Stylizer\n"
        f"s = Stylizer({full_model_path!r}, max_memory={budget})\n"
        "img = (np.random.default_rng(0).uniform(0, 255, (1250, 1600, 3))"
        ").astype(np.uint8)\n"
        "assert s.wants_tiles(1250, 1600)\n"
        "out = s(img)\n"
        "assert out.shape == (1250, 1600, 3)\n"
    )
    _, peak = peak_rss_of(script, timeout=1800)
    assert peak < budget, peak / 1e6


def test_export_tool_bf16_is_savedmodel_only(tmp_path, capsys):
    from conftest import run_tool

    code, out, err = run_tool(
        capsys,
        "export_tflite",
        "--checkpoint=anime",
        f"--out_dir={tmp_path / 'out'}",
        "--precision=bf16",
        "--format=tflite",
    )
    assert (code, out) == (2, "")  # refused before loading the model
    assert err == (
        "error: --precision=bf16 exports the SavedModel only; add "
        "--format=savedmodel (TFLite and ONNX quantize on their own: "
        "--quantize=fp16,int8)\n"
    )
    assert not (tmp_path / "out").exists()
