"""Inspect prepared TFRecords: counts, shapes, value ranges, contact sheet."""

import itertools

import numpy as np
import tensorflow as tf

from uegan_tf.data import schema
from uegan_tf.data.pipeline import corrupt_shard_error
from uegan_tf.data.pipeline import gray3
from uegan_tf.data.pipeline import list_shards
from uegan_tf.data.schema import read_manifest
from uegan_tf.image_ops import fit_cover_tf
from uegan_tf.image_ops import image_grid


def summarize(records_dir):
    """Read every record of a prepared folder and describe it.

    Returns:
        dict per kind ("photo", "style"): "count", "shards", "height" and
        "width" ([min, max]), "min"/"max" pixel values, and "manifest_count"
        (what manifest.json claims, for a consistency check).
    """
    manifest = read_manifest(records_dir)
    out = {}
    for kind in schema.KINDS:
        files = list_shards(records_dir, kind)
        hs, ws, lo, hi, n = [], [], 255, 0, 0
        for serialized, _ in _records_of(files, records_dir):
            ex = schema.parse_example(serialized, kind)
            images = [ex["image"]] + (
                [ex["smooth"]] if kind == schema.STYLE else []
            )
            for img in images:
                if img.shape != images[0].shape:
                    raise ValueError(
                        f"{ex['source']}: smooth copy size "
                        "differs from the image"
                    )
                lo = min(lo, int(tf.reduce_min(img)))
                hi = max(hi, int(tf.reduce_max(img)))
            hs.append(int(images[0].shape[0]))
            ws.append(int(images[0].shape[1]))
            n += 1
        out[kind] = {
            "count": n,
            "manifest_count": manifest[kind]["count"],
            "shards": len(files),
            "height": [min(hs), max(hs)] if hs else None,
            "width": [min(ws), max(ws)] if ws else None,
            "min": lo,
            "max": hi,
        }
    return out


def _records_of(files, records_dir):
    """`(serialized record, its file)`, one file at a time.

    Raises:
        CorruptRecordsError: a truncated or damaged file, by name.
    """
    for path in files:
        try:
            for serialized in tf.data.TFRecordDataset(path):
                yield serialized, path
        except tf.errors.DataLossError as e:
            raise corrupt_shard_error(path, e, records_dir) from None


def contact_sheet(records_dir, n=6, size=128):
    """A grid of examples: rows photo, style, style gray, smoothed gray.

    Each image is resized (short side) and centre-cropped to `size`.

    Returns:
        uint8 `[H, W, 3]`.
    """

    def take(kind):
        records = _records_of(list_shards(records_dir, kind), records_dir)
        return [
            schema.parse_example(s, kind)
            for s, _ in itertools.islice(records, n)
        ]

    def square(img):
        return fit_cover_tf(img, size).numpy().astype(np.uint8)

    photos = [square(e["image"]) for e in take(schema.PHOTO)]
    styles = take(schema.STYLE)
    color = [square(e["image"]) for e in styles]
    gray = [square(gray3(tf.cast(e["image"], tf.float32))) for e in styles]
    smooth = [square(gray3(tf.cast(e["smooth"], tf.float32))) for e in styles]
    return image_grid([photos, color, gray, smooth])
