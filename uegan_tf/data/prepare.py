"""Prepare training data once: image folders -> sharded TFRecords + manifest.

The library behind `tools/make_tfrecords.py`. The slow image work (decoding
every format, EXIF rotation, resizing, edge smoothing, JPEG encoding) runs
here once, in parallel worker processes, so that training only reads
shards.
"""

import datetime
import json
import multiprocessing
import os
import pathlib
import tempfile

import numpy as np
import tensorflow as tf
from tqdm import tqdm

from uegan_tf.config import PrepareConfig  # noqa: F401 (re-exported)
from uegan_tf.data import schema
from uegan_tf.data.preprocess import prepare_image
from uegan_tf.errors import first_line
from uegan_tf.fileutil import clean_stale_temps
from uegan_tf.fileutil import output_dir_problem
from uegan_tf.fileutil import publish
from uegan_tf.fileutil import temp_prefix
from uegan_tf.fileutil import write_text_atomic
from uegan_tf.image_io import find_images

# Records per shard to aim for when --shards is not given: a few MB each,
# enough shards for interleaved reading and per-worker sharding.
TARGET_RECORDS_PER_SHARD = 256


class DataPreparationError(Exception):
    """A user error that stops preparation (missing or empty source)."""


def _folder_tasks(folder, what, skipped=None):
    """One task per image under `folder`.

    Entries that look like images but cannot be read as files (dangling
    or looping symbolic links, a folder named `dir.jpg`) and symbolic
    links to folders go to `skipped` as `{"source", "reason"}`.
    """
    found_skipped = []
    try:
        files = find_images(folder, skipped=found_skipped)
    except FileNotFoundError:
        raise DataPreparationError(
            f"{what} folder not found: {folder}"
        ) from None
    if not files:
        raise DataPreparationError(
            f"{what} folder has no images (.jpg .png .webp .bmp ...): {folder}"
        )
    root = pathlib.Path(folder)
    if skipped is not None:
        skipped.extend(
            {"source": str(p.relative_to(root)), "reason": reason}
            for p, reason in found_skipped
        )
    return [{"path": str(f), "source": str(f.relative_to(root))} for f in files]


def _tfds_photo_tasks(cfg):
    """Photos from TFDS, as in-memory arrays (yielded lazily)."""
    try:
        import tensorflow_datasets as tfds
    except ImportError:
        raise DataPreparationError(
            "tensorflow-datasets is not installed: pip install 'uegan_tf[data]'"
        ) from None
    kind, _, rest = cfg.photo_source.partition(":")
    if kind == "tfds":
        name, _, split = rest.partition(":")
        split = split or "train"
        try:
            builder = tfds.builder(name, data_dir=cfg.tfds_data_dir)
            if cfg.tfds_download:
                builder.download_and_prepare()
            ds = builder.as_dataset(split=split)
        except Exception as e:  # TFDS raises many types; all are user errors
            first = first_line(e)
            hint = (
                ""
                if cfg.tfds_download
                else (
                    " (nothing is downloaded unless --tfds_download is given)"
                )
            )
            raise DataPreparationError(
                f"cannot read TFDS dataset {name!r} split {split!r}: "
                f"{first}{hint}"
            ) from None
    elif kind == "imagefolder":
        root, _, split = rest.partition(":")
        if not os.path.isdir(root):
            raise DataPreparationError(f"ImageFolder root not found: {root}")
        builder = tfds.folder_dataset.ImageFolder(root)
        splits = list(builder.info.splits.keys())
        split = split or ("train" if "train" in splits else (splits or [""])[0])
        if split not in splits:
            raise DataPreparationError(
                f"ImageFolder {root} has no split {split!r} (has {splits}); "
                "layout: ROOT/SPLIT/LABEL/image.jpg"
            )
        ds = builder.as_dataset(split=split, shuffle_files=False)
    else:
        raise DataPreparationError(
            f"unknown photo source {cfg.photo_source!r}: use "
            "tfds:NAME[:SPLIT] or imagefolder:ROOT[:SPLIT]"
        )
    image_key = None
    for key, spec in ds.element_spec.items():
        if len(spec.shape) == 3 and spec.dtype == tf.uint8:
            image_key = key
            break
    if image_key is None:
        raise DataPreparationError(
            f"{cfg.photo_source} has no uint8 image feature"
        )
    try:
        count = int(ds.cardinality())
    except (TypeError, ValueError):
        count = -1

    def generate():
        for i, example in enumerate(ds.as_numpy_iterator()):
            yield {
                "array": example[image_key],
                "source": f"{cfg.photo_source}#{i}",
            }

    return generate(), count


def _style_tasks(cfg, skipped=None):
    tasks = _folder_tasks(cfg.style_dir, "style", skipped)
    smooth = {}
    if cfg.smooth_dir:
        for t in _folder_tasks(cfg.smooth_dir, "smooth"):
            smooth[str(pathlib.Path(t["source"]).with_suffix(""))] = t["path"]
    for t in tasks:
        t["smooth"] = True
        if cfg.smooth_dir:
            key = str(pathlib.Path(t["source"]).with_suffix(""))
            t["smooth_path"] = smooth.get(key)
    return tasks


class _ShardWriter:
    """Round-robin writer of `num_shards` files, renamed into place at the end.

    Shards are written under temporary names in the output folder and
    renamed only after every record is written, so that a half-written shard
    never exists under its final name; on failure the temporary files are
    deleted.
    """

    def __init__(self, out_dir, kind, num_shards):
        self.out_dir = pathlib.Path(out_dir)
        self.kind = kind
        self.num_shards = num_shards
        self.final = [
            self.out_dir / schema.shard_name(kind, i, num_shards)
            for i in range(num_shards)
        ]
        self.tmp = []
        self.writers = []
        for path in self.final:
            fd, tmp = tempfile.mkstemp(
                prefix=temp_prefix(path.name), suffix=".part", dir=self.out_dir
            )
            os.close(fd)
            self.tmp.append(tmp)
            self.writers.append(tf.io.TFRecordWriter(tmp))
        self.count = 0

    def write(self, record):
        self.writers[self.count % self.num_shards].write(record)
        self.count += 1

    def commit(self):
        for w in self.writers:
            w.close()
        # Drop empty shards (fewer records than shards) by renumbering.
        used = min(self.count, self.num_shards)
        final = [
            self.out_dir / schema.shard_name(self.kind, i, used)
            for i in range(used)
        ]
        for tmp, path in zip(self.tmp[:used], final):
            publish(tmp, path)
        for tmp in self.tmp[used:]:
            os.unlink(tmp)
        self.final = final
        return [p.name for p in final]

    def abort(self):
        for w in self.writers:
            try:
                w.close()
            except Exception:  # best effort while failing
                pass
        for tmp in self.tmp:
            if os.path.exists(tmp):
                os.unlink(tmp)


def _num_shards(cfg, count):
    if cfg.shards:
        return cfg.shards
    return max(1, -(-max(count, 1) // TARGET_RECORDS_PER_SHARD))


def _run_kind(cfg, kind, tasks, count, pool, log):
    """Process and write one kind; returns its manifest section."""
    if count == 0:
        raise DataPreparationError(f"no {kind} images to write")
    settings = {
        "size": cfg.size,
        "min_side": cfg.min_side,
        "quality": cfg.quality,
    }
    writer = _ShardWriter(cfg.out_dir, kind, _num_shards(cfg, count))
    skipped = []
    means = []
    heights, widths = [], []
    work = ({**t, **settings} for t in tasks)
    try:
        results = (
            pool.imap(prepare_image, work, chunksize=4)
            if pool
            else (map(prepare_image, work))
        )
        bar = tqdm(
            results,
            total=count if count > 0 else None,
            unit="img",
            desc=f"{kind:>5}",
            dynamic_ncols=True,
        )
        for r in bar:
            if not r["ok"]:
                skipped.append({"source": r["source"], "reason": r["reason"]})
                log(f"skipped {kind} {r['source']}: {r['reason']}")
                continue
            writer.write(
                schema.make_example(
                    r["image"],
                    r["height"],
                    r["width"],
                    r["source"],
                    smooth=r["smooth"],
                )
            )
            means.append(r["channel_mean"])
            heights.append(r["height"])
            widths.append(r["width"])
            if (
                cfg.max_photos
                and kind == schema.PHOTO
                and (writer.count >= cfg.max_photos)
            ):
                break
        if writer.count == 0:
            raise DataPreparationError(
                f"every {kind} image was skipped ({len(skipped)} files); "
                "see the warnings above"
            )
        shards = writer.commit()
    except BaseException:
        writer.abort()
        raise
    section = {
        "count": writer.count,
        "skipped": len(skipped),
        "shards": shards,
        "height": [min(heights), max(heights)],
        "width": [min(widths), max(widths)],
        "mean_rgb": [round(float(v), 4) for v in np.mean(means, axis=0)],
    }
    return section, skipped


def prepare_dataset(cfg, log=print):
    """Write photo and style shards plus `manifest.json` into `cfg.out_dir`.

    Args:
        cfg: a `PrepareConfig`.
        log: where one-line warnings go (skipped files).

    Returns:
        The manifest dict (also written to `out_dir/manifest.json`).

    Raises:
        DataPreparationError: a missing or empty source folder, or no usable
            image in a source.
    """
    cfg.validate()
    missing = cfg.missing_folder()
    if missing:
        raise DataPreparationError(missing)
    problem = output_dir_problem(cfg.out_dir)
    if problem:
        raise DataPreparationError(f"--out_dir: {problem}")
    # Collect inputs first, so that a bad folder fails before any work.
    # Entries the folder walk cannot use are listed, never dropped silently.
    walk_skipped = {schema.PHOTO: [], schema.STYLE: []}
    style_tasks = _style_tasks(cfg, walk_skipped[schema.STYLE])
    if cfg.photo_dir is not None:
        photo_tasks = _folder_tasks(
            cfg.photo_dir, "photo", walk_skipped[schema.PHOTO]
        )
        photo_count = len(photo_tasks)
        if cfg.max_photos:
            photo_count = min(photo_count, cfg.max_photos)
            photo_tasks = photo_tasks[:photo_count]
        photo_from = os.path.abspath(cfg.photo_dir)
    else:
        photo_tasks, photo_count = _tfds_photo_tasks(cfg)
        if cfg.max_photos:
            photo_count = (
                min(photo_count, cfg.max_photos)
                if (photo_count > 0)
                else cfg.max_photos
            )
        photo_from = cfg.photo_source
    for kind, entries in walk_skipped.items():
        for s in entries:
            log(f"skipped {kind} {s['source']}: {s['reason']}")
    out = pathlib.Path(cfg.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for path in clean_stale_temps(out):
        log(f"removed {path.name}, left by an interrupted run")
    old = {
        p.name for k in schema.KINDS for p in out.glob(schema.shard_pattern(k))
    }

    workers = cfg.workers or os.cpu_count() or 1
    # spawn: workers import only numpy/PIL/OpenCV, never TF's threads.
    pool = (
        multiprocessing.get_context("spawn").Pool(workers)
        if workers > 1
        else None
    )
    try:
        photo, photo_skipped = _run_kind(
            cfg, schema.PHOTO, photo_tasks, photo_count, pool, log
        )
        style, style_skipped = _run_kind(
            cfg, schema.STYLE, style_tasks, len(style_tasks), pool, log
        )
    finally:
        if pool:
            pool.terminate()
            pool.join()

    # AnimeGAN's data_mean offsets (BGR): m - mean_c, m = mean of channels.
    r, g, b = style["mean_rgb"]
    m = (r + g + b) / 3
    manifest = {
        "schema_version": schema.SCHEMA_VERSION,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
        "size": cfg.size,
        "quality": cfg.quality,
        "sources": {
            "photo": photo_from,
            "style": os.path.abspath(cfg.style_dir),
            "smooth": (
                os.path.abspath(cfg.smooth_dir)
                if cfg.smooth_dir
                else "computed (Canny 100/200, 5x5 dilation, 5x5 Gaussian)"
            ),
        },
        "photo": photo,
        "style": style,
        "style_data_mean_offsets_bgr": [
            round(m - b, 4),
            round(m - g, 4),
            round(m - r, 4),
        ],
        "skipped": [
            {"kind": kind, **s}
            for kind, entries in (
                (schema.PHOTO, walk_skipped[schema.PHOTO] + photo_skipped),
                (schema.STYLE, walk_skipped[schema.STYLE] + style_skipped),
            )
            for s in entries
        ],
    }
    write_text_atomic(out / schema.MANIFEST, json.dumps(manifest, indent=2))
    # Shards of an earlier run with other shard counts are now stale.
    new = set(photo["shards"]) | set(style["shards"])
    for name in old - new:
        (out / name).unlink(missing_ok=True)
    return manifest
