"""Evaluation metrics with known answers, FID/KID, the grid and the runner."""

import json
import math

import cv2
import keras
import numpy as np
import pytest

from uegan_tf.eval import metrics
from uegan_tf.eval.evaluate import EvalConfig
from uegan_tf.eval.evaluate import comparison_grid
from uegan_tf.eval.evaluate import evaluate
from uegan_tf.eval.evaluate import fit_height
from uegan_tf.eval.evaluate import letterbox
from uegan_tf.eval.evaluate import parse_models
from uegan_tf.eval.evaluate import split_step
from uegan_tf.image_io import save_rgb
from uegan_tf.image_ops import image_grid
from uegan_tf.models import build_generator
from uegan_tf.testing import synthetic_image


def _step(shift=0, size=40):
    img = np.zeros((size, size, 3), np.uint8)
    img[:, size // 2 + shift :] = 255
    return img


def test_identical_images():
    img = synthetic_image(48, 64, 1)
    m = metrics.content_metrics(img, img)
    assert m["psnr_y"] == metrics.PSNR_CAP
    assert m["ssim_y"] == pytest.approx(1.0, abs=1e-6)
    assert m["delta_e"] == 0.0
    assert m["edge_f1"] == 1.0
    assert m["sobel_l1"] == 0.0


def test_psnr_and_delta_e_by_hand():
    a = np.full((16, 16, 3), 100, np.uint8)
    b = np.full((16, 16, 3), 110, np.uint8)
    # Luma differs by exactly 10 everywhere: 20 log10(255 / 10).
    assert metrics.psnr_luma(a, b) == pytest.approx(
        20 * math.log10(255 / 10), abs=1e-3
    )
    black = np.zeros((4, 4, 3), np.uint8)
    white = np.full((4, 4, 3), 255, np.uint8)
    # L* 0 -> 100 with a* = b* = 0: Delta E = 100.
    assert metrics.delta_e(black, white) == pytest.approx(100.0, abs=0.01)


def test_edge_f1_tolerance_by_hand():
    ref = _step()
    # A 1 px shift is within a 2 px tolerance, not within 0 px.
    assert metrics.edge_f1(ref, _step(1), tolerance=2) == 1.0
    assert metrics.edge_f1(ref, _step(1), tolerance=0) == 0.0
    # 6 px apart: no edge pixel matches.
    assert metrics.edge_f1(ref, _step(6), tolerance=2) == 0.0
    flat = np.full((40, 40, 3), 128, np.uint8)
    assert metrics.edge_f1(flat, flat) == 1.0
    assert metrics.edge_f1(ref, flat) == 0.0


def test_blur_moves_every_metric_the_expected_way():
    # Flat regions with dark outlines: Canny finds the outlines, and a
    # Gaussian blur weakens them below the thresholds step by step.
    img = synthetic_image(64, 80, 2, "anime")
    same = metrics.content_metrics(img, img)
    blurs = [
        metrics.content_metrics(img, cv2.GaussianBlur(img, (0, 0), s))
        for s in (1.0, 2.0, 4.0)
    ]
    for m in blurs:
        assert 15 < m["psnr_y"] < same["psnr_y"]
        assert m["ssim_y"] < same["ssim_y"]
        assert m["sobel_l1"] > same["sobel_l1"]
        assert m["delta_e"] > same["delta_e"]
    for key, sign in (
        ("psnr_y", -1),
        ("ssim_y", -1),
        ("edge_f1", -1),
        ("sobel_l1", 1),
        ("delta_e", 1),
    ):
        values = [m[key] for m in blurs]
        assert all(sign * (b - a) > 0 for a, b in zip(values, values[1:])), (
            key,
            values,
        )
    # Measured on this image: F1 0.94 (sigma 1), 0.53 (2), 0.0 (4).
    assert blurs[0]["edge_f1"] > 0.9 and blurs[2]["edge_f1"] == 0.0


def test_fid_and_kid_known_answers():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(200, 8))
    assert metrics.fid(a, a) == pytest.approx(0.0, abs=1e-6)
    # A constant shift c changes only the mean: FID = |c|^2.
    c = np.arange(8) * 0.1
    assert metrics.fid(a, a + c) == pytest.approx((c**2).sum(), rel=1e-6)
    k_same, _ = metrics.kid(a, a.copy(), subsets=3, subset_size=100)
    k_diff, _ = metrics.kid(a, a + 1.0, subsets=3, subset_size=100)
    # The unbiased estimator is not exactly 0 on a set against itself (the
    # cross term keeps the identical pairs): measured -0.086 vs 8.07.
    assert abs(k_same) < 0.02 * k_diff


def test_fid_kid_code_path_with_random_features():
    keras.utils.set_random_seed(1)
    net = keras.Sequential(
        [
            keras.Input((32, 32, 3)),
            keras.layers.Conv2D(8, 3, strides=2, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
        ]
    )
    ext = metrics.FeatureExtractor("model", net, size=32)
    photos = [synthetic_image(40, 50, i) for i in range(12)]
    anime = [synthetic_image(40, 50, 50 + i, "anime") for i in range(12)]
    fa, fb = ext(photos), ext(anime)
    assert fa.shape == (12, 8)
    assert metrics.fid(fa, fa) < 1e-6
    assert metrics.fid(fa, fb) > 1e-3
    assert (
        metrics.kid(fa, fb, subsets=2)[0]
        > metrics.kid(fa, ext(photos), subsets=2)[0]
    )


def test_grid_layout():
    photos = [synthetic_image(30, 60, 1), synthetic_image(60, 30, 2)]
    outs = {
        "a": [np.zeros_like(p) for p in photos],
        "b": [np.full_like(p, 255) for p in photos],
    }
    grid = comparison_grid(photos, outs, size=40, pad=4)
    assert grid.shape == (2 * 44 + 4, 3 * 44 + 4, 3)

    def cell(r, c):
        return grid[4 + r * 44 : 4 + r * 44 + 40, 4 + c * 44 : 4 + c * 44 + 40]

    np.testing.assert_array_equal(cell(0, 0), letterbox(photos[0], 40))
    np.testing.assert_array_equal(cell(1, 0), letterbox(photos[1], 40))
    # Model "a" (black output) in column 1, letterboxed on white.
    assert cell(0, 1)[20, 20].tolist() == [0, 0, 0]
    assert cell(0, 1)[2, 20].tolist() == [255, 255, 255]  # 60x30 -> bars


def test_grid_photo_columns_layout():
    """Before/after strips: a column per photo, every row 40 px tall;
    column widths from the photos' aspect (30x60 -> 80, 60x30 -> 20)."""
    photos = [synthetic_image(30, 60, 1), synthetic_image(60, 30, 2)]
    outs = {"a": [np.zeros_like(p) for p in photos]}
    grid = comparison_grid(photos, outs, size=40, pad=4, layout="photo_columns")
    assert grid.shape == (4 + 2 * 44, 4 + 80 + 4 + 20 + 4, 3)
    np.testing.assert_array_equal(grid[4:44, 4:84], fit_height(photos[0], 40))
    np.testing.assert_array_equal(grid[4:44, 88:108], fit_height(photos[1], 40))
    assert (grid[48:88, 4:84] == 0).all() and (grid[48:88, 88:108] == 0).all()
    assert (grid[44:48] == 255).all()  # the gap between the rows
    with pytest.raises(ValueError, match="layout must be one of"):
        comparison_grid(photos, outs, layout="diagonal")


def test_image_grid_mixed_sizes_by_hand():
    """Rows as tall as their tallest image, columns as wide as their widest;
    smaller images top left on white."""
    a = np.zeros((2, 3, 3), np.uint8)
    b = np.full((4, 1, 3), 7, np.uint8)
    grid = image_grid([[a, b], [b, a]], pad=1)
    # Heights max(2, 4) = 4 per row, widths max(3, 1) = 3 per column.
    assert grid.shape == (1 + 4 + 1 + 4 + 1, 1 + 3 + 1 + 3 + 1, 3)
    assert (grid[1:3, 1:4] == 0).all() and (grid[3:5, 1:4] == 255).all()
    assert (grid[1:5, 5:6] == 7).all() and (grid[1:5, 6:8] == 255).all()
    assert (grid[6:10, 1:2] == 7).all() and (grid[6:10, 2:4] == 255).all()


def test_parse_models():
    assert parse_models(["anime", "plain=runs/x@1200", " "]) == (
        ("anime", "anime"),
        ("plain", "runs/x@1200"),
    )
    assert split_step("runs/x@1200") == ("runs/x", 1200)
    assert split_step("runs/x") == ("runs/x", None)
    assert split_step("me@host/x") == ("me@host/x", None)


def test_missing_model_fails_before_any_work(tmp_path):
    """A missing `--models` source is refused before the photos, features
    or baselines are touched (it used to fail after minutes of work)."""
    from uegan_tf.inference.stylizer import ModelLoadError

    save_rgb(tmp_path / "photos" / "p.png", synthetic_image(36, 44, 0))
    cfg = EvalConfig(
        models=(("anime", "anime"), ("mine", str(tmp_path / "nope") + "@800")),
        photos=str(tmp_path / "photos"),
        out=str(tmp_path / "out"),
        features="none",
    )
    with pytest.raises(ModelLoadError, match="nope"):
        evaluate(cfg, log=lambda m: None)
    assert not (tmp_path / "out").exists()


def test_evaluate_end_to_end(tmp_path):
    for i in range(2):
        save_rgb(tmp_path / "photos" / f"p{i}.png", synthetic_image(36, 44, i))
    models, params = [], []
    for seed, name in ((1, "ue"), (2, "plain")):
        keras.utils.set_random_seed(seed)
        path = tmp_path / f"{name}.keras"
        # Tiny width: the table's plumbing, not the reference network.
        g = build_generator(unet=name == "ue", width=4)
        g.save(path)
        models.append((name, str(path)))
        params.append(g.count_params())
    summary = evaluate(
        EvalConfig(
            models=tuple(models),
            photos=str(tmp_path / "photos"),
            out=str(tmp_path / "out"),
            features="none",
            grid_size=32,
        ),
        log=lambda m: None,
    )
    assert [r["model"] for r in summary["rows"]] == [
        "input",
        "cv2.stylization",
        "cartoonizer",
        "ue",
        "plain",
    ]
    # The reference row: the photos compared with themselves.
    ref = summary["rows"][0]
    assert ref["params"] == 0 and ref["latency_s"] == 0
    assert (ref["psnr_y"], ref["ssim_y"], ref["edge_f1"]) == (100.0, 1.0, 1.0)
    assert ref["sobel_l1"] == 0 and ref["delta_e"] == 0
    # UE 2150c^2 + 1066c and plain 2060c^2 + 1066c at c = 4.
    assert params == [38_664, 37_224]
    assert [r["params"] for r in summary["rows"][3:]] == params
    for name in (
        "results.md",
        "results.csv",
        "per_image.csv",
        "results.json",
        "grid.png",
    ):
        assert (tmp_path / "out" / name).exists()
    table = (tmp_path / "out" / "results.md").read_text()
    assert table.splitlines()[0].startswith("| model | params | latency_s")
    data = json.loads((tmp_path / "out" / "results.json").read_text())
    assert len(data["per_image"]) == 10  # 2 photos x 5 rows
    from uegan_tf.image_io import load_rgb

    assert load_rgb(tmp_path / "out" / "grid.png").shape == (
        2 * 36 + 4,
        5 * 36 + 4,
        3,
    )


# ---------------------------------------------------------------------------
# Style gain and the non-learned baselines.


def test_window_moments_match_direct_statistics():
    rng = np.random.default_rng(0)
    fmap = rng.normal(size=(37, 50, 5)) * 10 + 3
    ys, xs = np.array([0, 4, 8, 24]), np.array([0, 16, 8, 36])
    for cell in (1, 2, 4):
        mean, sq = metrics.window_moments(fmap, ys, xs, 12, cell)
        for i, (y, x) in enumerate(zip(ys, xs)):
            win = fmap[y : y + 12, x : x + 12]
            np.testing.assert_allclose(mean[i], win.mean((0, 1)), rtol=1e-9)
            np.testing.assert_allclose(
                np.sqrt(sq[i] - mean[i] ** 2), win.std((0, 1)), rtol=1e-6
            )


def test_style_gain_two_sets_by_hand():
    # One-dimensional descriptors, two per set, so that KID uses the whole
    # set in every subset (the unbiased MMD^2 is then exact, no sampling).
    style = np.array([[2.0], [4.0]])  # mean 3, population std 1
    photos = np.array([[-1.0], [0.0]])  # standardised: -4, -3
    outputs = np.array([[1.0], [2.0]])  # standardised: -2, -1
    np.testing.assert_allclose(
        metrics.standardize(photos, style), [[-4.0], [-3.0]]
    )
    # k(x, y) = (x y / d + 1)^3 with d = 1; style standardised to -1, 1.
    # MMD^2 = k(a1, a2) + k(s1, s2) - 2 mean_ij k(a_i, s_j), where the
    # first two terms are the mean off-diagonal pairs (one pair each way).
    #   photos:  k(-4,-3) = 13^3 = 2197; k(-1,1) = 0;
    #            k(-4,-1) = 125, k(-4,1) = -27, k(-3,-1) = 64, k(-3,1) = -8
    #            -> 2197 + 0 - 2 * 154 / 4 = 2120
    #   outputs: k(-2,-1) = 27; cross: k(-2,-1) = 27, k(-2,1) = -1,
    #            k(-1,-1) = 8, k(-1,1) = 0 -> 27 + 0 - 2 * 34 / 4 = 10
    result = metrics.style_gain(outputs, photos, style, subsets=1)
    assert result["kid_photos"] == pytest.approx(2120.0)
    assert result["kid_outputs"] == pytest.approx(10.0)
    assert result["gain"] == pytest.approx(1 - 10 / 2120)
    # The photos scored as outputs: exactly no gain.
    assert metrics.style_gain(photos, photos, style)["gain"] == 0.0


def _real_sets(n_pictures=8):
    from conftest import shared_path

    from uegan_tf.image_io import find_images
    from uegan_tf.image_io import load_rgb

    weights = shared_path("weights", "vgg16_imagenet_features.npz")
    style_dir = shared_path("data", "style_anime")
    # One image per picture (the whole picture at short side 256).
    style = [
        load_rgb(p) for p in sorted(style_dir.glob("*_s256.jpg"))[:n_pictures]
    ]
    photos = [
        load_rgb(p) for p in find_images(shared_path("data", "val_photo"))
    ]
    return str(weights), style, photos


def _share_feature_maps(*descriptors):
    """One VGG16 pass per distinct image for all `descriptors`.

    Descriptors that share a VGG and differ only in their seed draw other
    windows from the same feature maps: the maps of an image already seen
    are reused (the same input through the same network), which halves
    the VGG passes of the test below.
    """
    taps, maps = descriptors[0]._taps, {}

    def cached(x):
        key = (tuple(x.shape), x.numpy().tobytes())
        if key not in maps:
            maps[key] = taps(x)
        return maps[key]

    for d in descriptors:
        assert d.vgg is descriptors[0].vgg
        d._taps = cached
    return maps


def test_style_gain_on_real_images():
    weights, style, photos = _real_sets()
    describe = metrics.StyleDescriptor(weights, seed=0)
    other_crops = metrics.StyleDescriptor(describe.vgg, seed=1)
    maps = _share_feature_maps(describe, other_crops)
    d_style, d_photos = describe(style), describe(photos)
    assert d_style.shape == (8 * 64, 2 * (64 + 128 + 256 + 512))
    # The style images, with other random windows, scored as outputs:
    # as close to the style as the style itself.
    self_score = metrics.style_gain(other_crops(style), d_photos, d_style)
    assert self_score["gain"] >= 0.8, self_score
    # The photos against themselves: no gain (evaluate draws the same
    # windows for a model's inputs and outputs); other random windows of
    # the same photos: near 0 (measured -0.08 to 0.04 over four draws).
    assert metrics.style_gain(d_photos, d_photos, d_style)["gain"] == 0.0
    again = metrics.style_gain(other_crops(photos), d_photos, d_style)
    assert abs(again["gain"]) < 0.15, again
    assert self_score["kid_photos"] > 10 * abs(self_score["kid_outputs"])
    # A negative control: a plain colour grade (contrast x0.7 about the
    # mean) is not a style. Without the contrast normalisation it scored
    # 0.53; with it, measured 0.02 on the full style set.
    graded = [
        np.clip(p.mean((0, 1)) + (p - p.mean((0, 1))) * 0.7, 0, 255).astype(
            np.uint8
        )
        for p in photos
    ]
    grade = metrics.style_gain(describe(graded), d_photos, d_style)
    assert abs(grade["gain"]) < 0.15, grade
    # One pass per distinct image: the style, the photos, the graded ones.
    assert len(maps) == len(style) + 2 * len(photos)
    # ... and the normalisation itself: fixed luma mean and spread.
    fixed = metrics.StyleDescriptor.normalize_contrast(photos[0])
    luma = fixed @ np.array([0.299, 0.587, 0.114])
    assert luma.mean() == pytest.approx(metrics.LUMA_MEAN, abs=2.0)
    assert luma.std() == pytest.approx(metrics.LUMA_STD, abs=2.0)


def test_baselines_restyle_deterministically():
    from uegan_tf.eval.baselines import BASELINES
    from uegan_tf.eval.baselines import BaselineStylizer

    img = synthetic_image(64, 80, 3)
    for name, fn in BASELINES.items():
        out = fn(img)
        assert out.shape == img.shape and out.dtype == np.uint8, name
        np.testing.assert_array_equal(out, fn(img))  # deterministic
        assert np.abs(out.astype(int) - img).mean() > 2, name
    cartoon = BASELINES["cartoonizer"](img)
    # A palette of at most 8 colours plus the black outlines.
    assert len(np.unique(cartoon.reshape(-1, 3), axis=0)) <= 9
    assert (cartoon.sum(-1) == 0).mean() > 0.005  # outlines: 0.9 % here
    big = synthetic_image(60, 200, 4)
    assert BaselineStylizer("cartoonizer", max_side=100)(big).shape == (
        30,
        100,
        3,
    )
    with pytest.raises(KeyError, match="unknown baseline"):
        BaselineStylizer("sketch")


def test_evaluate_rows_have_style_gain_on_real_images(tmp_path):
    weights, style, photos = _real_sets(6)
    for i, img in enumerate(style):
        save_rgb(tmp_path / "style" / f"s{i}.png", img)
    for i, img in enumerate(photos[:3]):
        save_rgb(tmp_path / "photos" / f"p{i}.png", img)
    summary = evaluate(
        EvalConfig(
            models=(),
            photos=str(tmp_path / "photos"),
            out=str(tmp_path / "out"),
            style_dir=str(tmp_path / "style"),
            vgg16_weights=weights,
            features="none",
            style_crops=16,
        ),
        log=lambda m: None,
    )
    rows = {r["model"]: r for r in summary["rows"]}
    assert list(rows) == ["input", "cv2.stylization", "cartoonizer"]
    assert rows["input"]["style_gain"] == 0.0
    for name in ("cv2.stylization", "cartoonizer"):
        assert rows[name]["params"] == 0
        assert -1.0 < rows[name]["style_gain"] < 1.0
        assert rows[name]["ssim_y"] < 1.0
    header = (tmp_path / "out" / "results.md").read_text().splitlines()[0]
    assert "style_gain" in header and "kid_local" in header


def test_command_flags_come_from_the_config(tmp_path, capsys):
    """`python -m uegan_tf.eval.evaluate`, in-process: one flag per
    `EvalConfig` setting, one-line errors, the table and files."""
    from absl import flags

    from uegan_tf.eval.evaluate import cli

    for i in range(2):
        save_rgb(tmp_path / "photos" / f"p{i}.png", synthetic_image(40, 48, i))
    keras.utils.set_random_seed(0)
    build_generator(unet=True, width=4).save(tmp_path / "tiny.keras")

    def run(*args):
        code = cli(["evaluate", *args], flags.FlagValues())
        out, err = capsys.readouterr()
        return code, out, err

    code, out, _ = run("--help")
    assert code == 0 and "--style_crops" in out and "--nobaselines" in out
    code, _, err = run(f"--out={tmp_path / 'o'}")
    assert (code, err) == (2, "error: --photos is required\n")
    code, _, err = run("--photos=x", "--out=y", "--grid_size=0")
    assert (code, err) == (2, "error: --grid_size must be >= 1, got 0\n")
    code, _, err = run("--photos=x", "--out=y", "--features=fid")
    assert code == 2 and err.startswith("error: ") and err.count("\n") == 1
    code, _, err = run("--photos=x", "--out=y", "stray")
    assert (code, err) == (2, "error: unexpected arguments: stray\n")
    code, out, err = run(
        f"--models=mine={tmp_path / 'tiny.keras'}",
        f"--photos={tmp_path / 'photos'}",
        f"--out={tmp_path / 'out'}",
        "--features=none",
        "--nobaselines",
        "--grid_size=32",
    )
    assert code == 0, err
    table = [line for line in out.splitlines() if line.startswith("|")]
    assert [line.split("|")[1].strip() for line in table[2:]] == [
        "input",
        "mine",
    ]
    assert (tmp_path / "out" / "grid.png").exists()
    saved = json.loads((tmp_path / "out" / "results.json").read_text())
    assert [r["model"] for r in saved["rows"]] == ["input", "mine"]
