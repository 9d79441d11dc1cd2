"""Dataset preparation (make_tfrecords), records and the training pipeline."""

import json
import os
import pathlib
import sys

import cv2
import numpy as np
import pytest
import tensorflow as tf
from conftest import REPO
from conftest import finish
from conftest import shared_path
from conftest import start
from PIL import Image

from uegan_tf.config import DataConfig
from uegan_tf.data import schema
from uegan_tf.data.edge_smooth import edge_mask
from uegan_tf.data.edge_smooth import edge_smooth
from uegan_tf.data.inspect import contact_sheet
from uegan_tf.data.inspect import summarize
from uegan_tf.data.pipeline import build_train_dataset
from uegan_tf.data.pipeline import list_shards
from uegan_tf.data.pipeline import load_validation_images
from uegan_tf.data.pipeline import read_records
from uegan_tf.data.prepare import DataPreparationError
from uegan_tf.data.prepare import PrepareConfig
from uegan_tf.data.prepare import prepare_dataset
from uegan_tf.image_io import ImageReadError
from uegan_tf.image_io import load_rgb
from uegan_tf.image_io import save_rgb
from uegan_tf.testing import synthetic_image
from uegan_tf.testing import write_fake_records
from uegan_tf.testing import write_image_folders


def _prepare(tmp_path, photo, style, **kw):
    cfg = PrepareConfig(
        out_dir=str(tmp_path / "rec"),
        photo_dir=str(photo),
        style_dir=str(style),
        workers=1,
        **kw,
    )
    messages = []
    manifest = prepare_dataset(cfg, log=messages.append)
    return manifest, messages


def _records(path, kind):
    files = sorted(pathlib.Path(path).glob(schema.shard_pattern(kind)))
    ds = tf.data.TFRecordDataset([str(f) for f in files])
    return [schema.parse_example(s, kind) for s in ds]


def test_round_trip_pixels_shapes_and_ranges(tmp_path):
    # 64x64 sources at the prepared size: the records hold them unresized.
    for i in range(3):
        save_rgb(tmp_path / "p" / f"{i}.png", synthetic_image(64, 64, i))
        save_rgb(
            tmp_path / "s" / f"{i}.png",
            synthetic_image(64, 64, 10 + i, "anime"),
        )
    manifest, _ = _prepare(
        tmp_path, tmp_path / "p", tmp_path / "s", size=64, min_side=16
    )
    assert manifest["photo"]["count"] == 3
    assert manifest["style"]["count"] == 3
    by_name = {
        e["source"].numpy().decode(): e
        for e in _records(tmp_path / "rec", schema.PHOTO)
    }
    for i in range(3):
        source = load_rgb(tmp_path / "p" / f"{i}.png").astype(np.int32)
        stored = by_name[f"{i}.png"]["image"].numpy().astype(np.int32)
        assert stored.shape == source.shape == (64, 64, 3)
        # JPEG q95 with 4:4:4 chroma on a noisy image (noise sigma 12):
        # about 35.7 dB measured; 33 dB leaves room for other libjpegs.
        mse = np.mean((stored - source) ** 2)
        assert 10 * np.log10(255**2 / mse) > 33
        assert np.abs(stored - source).max() < 40

    # The pipeline: full-image crops (crop = size), no flips, in [-1, 1].
    cfg = DataConfig(
        records_dir=str(tmp_path / "rec"),
        crop_size=64,
        flip=False,
        shuffle_buffer=4,
    )
    batch = next(iter(build_train_dataset(cfg, 2, seed=3)))
    assert set(batch) == {"photo", "anime", "anime_gray", "anime_smooth_gray"}
    for value in batch.values():
        assert value.shape == (2, 64, 64, 3) and value.dtype == tf.float32
        assert float(tf.reduce_min(value)) >= -1.0
        assert float(tf.reduce_max(value)) <= 1.0
    sources = [
        load_rgb(tmp_path / "p" / f"{i}.png") / 127.5 - 1 for i in range(3)
    ]
    for img in batch["photo"].numpy():
        err = min(np.abs(img - s).mean() for s in sources)
        assert err < 4.0 / 127.5  # the JPEG error above, in [-1, 1] units
    gray = batch["anime_gray"].numpy()
    np.testing.assert_allclose(gray[..., 0], gray[..., 2])
    luma = np.tensordot(batch["anime"].numpy(), [0.299, 0.587, 0.114], 1)
    np.testing.assert_allclose(gray[..., 0], luma, atol=2e-3)


def test_pipeline_crops_flips_and_resizes(tmp_path):
    records = write_fake_records(tmp_path, n_photo=4, n_style=3, size=48)
    cfg = DataConfig(
        records_dir=str(records), crop_size=32, short_side=40, shuffle_buffer=4
    )
    ds = build_train_dataset(cfg, 3, seed=1)
    spec = {k: v.shape.as_list() for k, v in ds.element_spec.items()}
    assert spec == {
        k: [3, 32, 32, 3]
        for k in ("photo", "anime", "anime_gray", "anime_smooth_gray")
    }
    # The same seed gives the same batches (stateless crops and flips).
    a = [b["photo"].numpy() for b in ds.take(3)]
    b = [
        b["photo"].numpy() for b in build_train_dataset(cfg, 3, seed=1).take(3)
    ]
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_pipeline_iterator_checkpoint_resumes_the_sequence(tmp_path):
    records = write_fake_records(tmp_path, n_photo=4, n_style=3, size=40)
    cfg = DataConfig(records_dir=str(records), crop_size=32, shuffle_buffer=4)
    it = iter(build_train_dataset(cfg, 2, seed=5))
    next(it)
    ckpt = tf.train.Checkpoint(data=it)
    path = ckpt.write(str(tmp_path / "ckpt" / "it"))
    expected = [next(it)["photo"].numpy() for _ in range(3)]
    it2 = iter(build_train_dataset(cfg, 2, seed=5))
    tf.train.Checkpoint(data=it2).read(path).assert_consumed()
    for e in expected:
        np.testing.assert_array_equal(next(it2)["photo"].numpy(), e)


def test_pipeline_distributed_over_two_replicas(tmp_path, two_replicas):
    records = write_fake_records(tmp_path, n_photo=4, n_style=3, size=40)
    cfg = DataConfig(records_dir=str(records), crop_size=32, shuffle_buffer=4)
    strategy = two_replicas
    dist = strategy.distribute_datasets_from_function(
        lambda ctx: build_train_dataset(cfg, 4, ctx, seed=0)
    )
    batch = next(iter(dist))
    parts = strategy.experimental_local_results(batch["photo"])
    assert [p.shape for p in parts] == [(2, 32, 32, 3)] * 2


@pytest.mark.parametrize("num_pipelines", [2, 8])
def test_every_input_pipeline_gets_both_domains(tmp_path, num_pipelines):
    """Records, not files, are split between input pipelines (issue 14).

    2 files per kind: split by file, pipelines 2+ got no data at all.
    """
    records = write_fake_records(
        tmp_path, n_photo=12, n_style=10, size=24, shards=2
    )
    cfg = DataConfig(records_dir=str(records), crop_size=16, shuffle_buffer=4)
    seen = {kind: [] for kind in schema.KINDS}
    for i in range(num_pipelines):
        ctx = tf.distribute.InputContext(
            num_input_pipelines=num_pipelines,
            input_pipeline_id=i,
            num_replicas_in_sync=num_pipelines,
        )
        # A full training batch (photo and style) from this pipeline.
        batch = next(iter(build_train_dataset(cfg, num_pipelines, ctx)))
        assert batch["photo"].shape == (1, 16, 16, 3)
        assert batch["anime"].shape == (1, 16, 16, 3)
        for kind in schema.KINDS:
            files = list_shards(records, kind)
            assert len(files) == 2
            seen[kind] += [
                schema.parse_example(r, kind)["source"].numpy()
                for r in read_records(files, ctx)
            ]
    # One epoch over all pipelines: every record exactly once.
    for kind in schema.KINDS:
        every = [r["source"].numpy() for r in _records(records, kind)]
        assert sorted(seen[kind]) == sorted(every)
        assert len(set(every)) == len(every) == {"photo": 12, "style": 10}[kind]


def test_edge_smoothing_changes_edges_only():
    # Black left half, white right half, with a wide flat margin.
    img = np.zeros((40, 40, 3), np.uint8)
    img[:, 20:] = 255
    out = edge_smooth(img)
    mask = edge_mask(img)
    # Canny marks the step near columns 19-20; dilation widens it by 2.
    cols = np.where(mask.any(axis=0))[0]
    assert cols.min() >= 16 and cols.max() <= 23
    changed = np.any(out != img, axis=-1)
    assert changed[:, 18:22].all()  # the edge is blurred everywhere
    assert not changed[:, :14].any() and not changed[:, 26:].any()
    # A pixel next to the step: the 5x5 Gaussian (sigma 1.1) weighted sum.
    g = cv2.getGaussianKernel(5, 0)
    k = g @ g.T
    # At column 19 the 5 columns 17..21 are 0, 0, 0, 255, 255.
    expected = int(255 * k[:, 3:].sum())
    assert int(out[20, 19, 0]) == expected
    # Flat images are untouched.
    flat = np.full((32, 32, 3), 77, np.uint8)
    np.testing.assert_array_equal(edge_smooth(flat), flat)


def _write_bad_inputs(folder):
    folder.mkdir(parents=True)
    (folder / "empty.jpg").write_bytes(b"")
    good = synthetic_image(80, 96, 1)
    save_rgb(folder / "full.jpg", good)
    data = (folder / "full.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (folder / "text.jpg").write_text("this is not an image\n")
    cv2.imwrite(
        str(folder / "deep16.png"),
        (synthetic_image(80, 96, 2).astype(np.uint16) * 257)[..., ::-1],
    )
    rgba = np.dstack(
        [synthetic_image(80, 96, 3), np.full((80, 96), 128, np.uint8)]
    )
    Image.fromarray(rgba, "RGBA").save(folder / "alpha.png")
    Image.fromarray(synthetic_image(80, 96, 4)[..., 0], "L").save(
        folder / "gray.jpg"
    )
    Image.fromarray(np.zeros((1, 1, 3), np.uint8)).save(folder / "tiny.png")


def test_bad_inputs_are_skipped_or_converted(tmp_path):
    _write_bad_inputs(tmp_path / "photos")
    _, style = write_image_folders(tmp_path / "x", 0, 2)
    manifest, messages = _prepare(tmp_path, tmp_path / "photos", style, size=64)
    skipped = {s["source"]: s["reason"] for s in manifest["skipped"]}
    assert set(skipped) == {
        "empty.jpg",
        "truncated.jpg",
        "text.jpg",
        "tiny.png",
    }
    assert "empty" in skipped["empty.jpg"]
    assert "truncated" in skipped["truncated.jpg"]
    assert "not an image" in skipped["text.jpg"]
    assert "too small" in skipped["tiny.png"]
    assert len(messages) == 4 and all("\n" not in m for m in messages)
    assert manifest["photo"]["count"] == 4  # full, deep16, alpha, gray
    assert manifest["photo"]["skipped"] == 4
    names = {
        e["source"].numpy().decode()
        for e in _records(tmp_path / "rec", schema.PHOTO)
    }
    assert names == {"full.jpg", "deep16.png", "alpha.png", "gray.jpg"}


def test_image_modes_are_converted(tmp_path):
    _write_bad_inputs(tmp_path / "in")
    src = synthetic_image(80, 96, 2).astype(np.int32)
    deep = load_rgb(tmp_path / "in" / "deep16.png").astype(np.int32)
    assert deep.dtype == np.int32 and np.abs(deep - src).max() <= 1
    alpha = load_rgb(tmp_path / "in" / "alpha.png").astype(np.float64)
    # 50% alpha over white: (c * 128 + 255 * 127) / 255.
    expect = (synthetic_image(80, 96, 3) * 128.0 + 255 * 127.0) / 255
    assert np.abs(alpha - expect).max() <= 1.5
    gray = load_rgb(tmp_path / "in" / "gray.jpg")
    assert gray.shape == (80, 96, 3)
    np.testing.assert_array_equal(gray[..., 0], gray[..., 2])
    for name, reason in (
        ("empty.jpg", "empty"),
        ("text.jpg", "not an image"),
        ("truncated.jpg", "truncated"),
        ("missing.jpg", "no such file"),
    ):
        with pytest.raises(ImageReadError, match=reason):
            load_rgb(tmp_path / "in" / name)


def test_exif_orientation_is_honoured(tmp_path):
    img = Image.fromarray(synthetic_image(40, 60, 5))  # 60 wide, 40 high
    exif = img.getexif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise on display
    img.save(tmp_path / "rot.jpg", exif=exif)
    assert load_rgb(tmp_path / "rot.jpg").shape == (60, 40, 3)


def test_missing_or_empty_folders_are_clear_errors(tmp_path):
    photo, style = write_image_folders(tmp_path, 2, 2)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataPreparationError, match="photo folder not found"):
        _prepare(tmp_path, tmp_path / "nope", style)
    with pytest.raises(DataPreparationError, match="style folder has no"):
        _prepare(tmp_path, photo, tmp_path / "empty")


def test_tool_exit_codes_and_one_line_errors(tmp_path):
    photo, style = write_image_folders(tmp_path, 2, 2, size=(64, 64))
    tool = [sys.executable, str(REPO / "tools" / "make_tfrecords.py")]
    # The two runs at once (independent: their own output folders).
    bad = start(
        tool
        + [
            f"--photo_dir={tmp_path}/missing",
            f"--style_dir={style}",
            f"--out_dir={tmp_path}/bad_out",
        ]
    )
    good = start(
        tool
        + [
            f"--photo_dir={photo}",
            f"--style_dir={style}",
            f"--out_dir={tmp_path}/out",
            "--size=32",
            "--shards=2",
            "--min_side=16",
        ]
    )
    bad, good = finish(bad, timeout=120), finish(good, timeout=120)
    assert bad.returncode == 2
    assert "error: photo folder not found" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert not (tmp_path / "bad_out").exists()
    assert good.returncode == 0, good.stderr
    assert "wrote 2 photos (2 shards) and 2 style images" in good.stdout
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["photo"]["shards"] == [
        "photo-00000-of-00002.tfrecord",
        "photo-00001-of-00002.tfrecord",
    ]
    # Edge-smoothed copies were computed and the style mean recorded.
    assert manifest["sources"]["smooth"].startswith("computed")
    assert len(manifest["style"]["mean_rgb"]) == 3


def test_interrupted_run_leaves_no_partial_shards(tmp_path, monkeypatch):
    photo, style = write_image_folders(tmp_path, 5, 2)
    from uegan_tf.data import prepare as prepare_lib

    calls = {"n": 0}
    real = prepare_lib.prepare_image

    def failing(task):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(task)

    monkeypatch.setattr(prepare_lib, "prepare_image", failing)
    with pytest.raises(KeyboardInterrupt):
        _prepare(tmp_path, photo, style)
    assert os.listdir(tmp_path / "rec") == []


def test_smooth_dir_is_used_when_given(tmp_path):
    photo, style = write_image_folders(tmp_path, 2, 2, size=(64, 64))
    smooth = tmp_path / "smooth"
    for f in sorted(style.iterdir()):
        save_rgb(smooth / f.name, np.full((64, 64, 3), 200, np.uint8))
    cfg = PrepareConfig(
        out_dir=str(tmp_path / "rec"),
        photo_dir=str(photo),
        style_dir=str(style),
        smooth_dir=str(smooth),
        size=64,
        min_side=16,
        workers=1,
    )
    manifest = prepare_dataset(cfg, log=lambda m: None)
    assert manifest["sources"]["smooth"] == str(smooth)
    for ex in _records(tmp_path / "rec", schema.STYLE):
        assert np.abs(ex["smooth"].numpy().astype(int) - 200).max() <= 2


def test_imagefolder_and_tfds_sources(tmp_path):
    tfds = pytest.importorskip("tensorflow_datasets")
    _, style = write_image_folders(tmp_path / "s", 0, 2)
    root = tmp_path / "folder"
    for split, n in (("train", 3), ("test", 1)):
        for i in range(n):
            save_rgb(
                root / split / "photo" / f"{i}.jpg", synthetic_image(64, 80, i)
            )
    cfg = PrepareConfig(
        out_dir=str(tmp_path / "rec"),
        photo_source=f"imagefolder:{root}:train",
        style_dir=str(style),
        size=48,
        min_side=16,
        workers=1,
    )
    manifest = prepare_dataset(cfg, log=lambda m: None)
    assert manifest["photo"]["count"] == 3
    assert manifest["sources"]["photo"] == f"imagefolder:{root}:train"

    # A TFDS dataset that is not in the local data dir: a clear error, and
    # no download is attempted.
    missing = PrepareConfig(
        out_dir=str(tmp_path / "rec2"),
        photo_source="tfds:no_such_dataset_xyz",
        style_dir=str(style),
        workers=1,
        tfds_data_dir=str(tmp_path / "tfds"),
    )
    with pytest.raises(DataPreparationError, match="no_such_dataset_xyz"):
        prepare_dataset(missing, log=lambda m: None)
    # A registered dataset read through TFDS (mocked data, no network).
    with tfds.testing.mock_data(num_examples=4):
        cfg = PrepareConfig(
            out_dir=str(tmp_path / "rec3"),
            photo_source="tfds:tf_flowers:train",
            style_dir=str(style),
            size=32,
            min_side=1,
            workers=1,
        )
        manifest = prepare_dataset(cfg, log=lambda m: None)
    assert manifest["photo"]["count"] == 4


def test_inspect_counts_and_contact_sheet(tmp_path):
    records = write_fake_records(tmp_path, n_photo=3, n_style=2, size=40)
    info = summarize(records)
    assert info["photo"]["count"] == info["photo"]["manifest_count"] == 3
    assert info["style"]["count"] == 2
    assert info["photo"]["height"] == [40, 40]
    assert info["photo"]["width"] == [53, 53]  # 40 * 4/3, short side kept
    sheet = contact_sheet(records, n=3, size=32)
    # 4 rows (photo, style, gray, smooth) x 3 columns of 32 px, 4 px gaps.
    assert sheet.shape == (4 * 36 + 4, 3 * 36 + 4, 3)


def test_inspect_tool(tmp_path, capsys):
    from conftest import run_tool

    records = write_fake_records(tmp_path, n_photo=3, n_style=2, size=40)
    capsys.readouterr()  # the preparation's progress bars
    code, out, err = run_tool(capsys, "inspect_tfrecords", str(records))
    assert (code, err) == (0, "")
    photo, style, last = out.splitlines()
    assert photo.startswith("photo: 3 records in 1 shards, H 40-40, W 53-53")
    assert style.startswith("style: 2 records in 1 shards, H 40-40, W 53-53")
    assert photo.endswith("(uint8)") and style.endswith("(uint8)")
    sheet = records / "contact_sheet.png"
    assert last == (
        f"contact sheet (rows: photo, style, style gray, smoothed gray): "
        f"{sheet}"
    )
    # 4 rows x (at most --num=6) columns of 128 px, 4 px gaps.
    assert load_rgb(sheet).shape == (4 * 132 + 4, 3 * 132 + 4, 3)
    code, out, _ = run_tool(
        capsys,
        "inspect_tfrecords",
        str(records),
        "--num=2",
        f"--sheet={tmp_path / 'two.png'}",
    )
    assert code == 0 and out.endswith(f"{tmp_path / 'two.png'}\n")
    assert load_rgb(tmp_path / "two.png").shape == (4 * 132 + 4, 2 * 132 + 4, 3)
    # A count that differs from manifest.json: reported, exit 1.
    manifest = json.loads((records / "manifest.json").read_text())
    manifest["photo"]["count"] = 4
    (records / "manifest.json").write_text(json.dumps(manifest))
    code, out, _ = run_tool(capsys, "inspect_tfrecords", str(records))
    assert code == 1
    assert out.splitlines()[0].endswith("(uint8)  MISMATCH: manifest says 4")


@pytest.mark.parametrize(
    "args, message",
    [
        ([], "give the records folder (python tools/inspect_tfrecords.py DIR)"),
        (["a", "b"], "unexpected arguments: b"),
        (["a", "--num=0"], "--num must be >= 1, got 0"),
        (["a", "--num=six"], "flag --num=six: invalid literal for int()"),
        (["MISSING"], "MISSING/manifest.json not found: prepare the data"),
    ],
)
def test_inspect_tool_errors_exit_2(tmp_path, capsys, args, message):
    from conftest import run_tool

    args = [a.replace("MISSING", str(tmp_path / "nope")) for a in args]
    message = message.replace("MISSING", str(tmp_path / "nope"))
    code, out, err = run_tool(capsys, "inspect_tfrecords", *args)
    assert code == 2 and out == ""
    (line,) = err.splitlines()
    assert line.startswith(f"error: {message}")


def test_validation_images(tmp_path):
    folder = tmp_path / "val"
    save_rgb(folder / "a.png", synthetic_image(50, 70, 1))
    (folder / "broken.jpg").write_text("nope")
    save_rgb(folder / "b.jpg", synthetic_image(90, 40, 2))
    val = load_validation_images(folder, 32, max_images=5)
    assert val.shape == (2, 32, 32, 3)
    assert float(tf.reduce_min(val)) >= -1 and float(tf.reduce_max(val)) <= 1
    with pytest.raises(FileNotFoundError):
        load_validation_images(tmp_path / "nothing_here", 32)


def test_shared_data_is_written_completely(tmp_path):
    photos = shared_path("data", "train_photo")
    style = shared_path("data", "style_painted")
    cfg = PrepareConfig(
        out_dir=str(tmp_path / "rec"),
        photo_dir=str(photos),
        style_dir=str(style),
        workers=2,
    )
    manifest = prepare_dataset(cfg, log=lambda m: None)
    assert manifest["photo"]["count"] == 163
    assert manifest["style"]["count"] == 61
    assert manifest["skipped"] == []
    assert manifest["photo"]["height"][0] == 256 or (
        manifest["photo"]["width"][0] == 256
    )
