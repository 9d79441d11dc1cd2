"""The TFRecord schema: the one definition of feature keys and file names.

Used by the writer (`tools/make_tfrecords.py`), the training pipeline, the
inspector, TFLite calibration and serving warm-up.

Each record is one image, resized so that its short side is the prepared
size (aspect ratio kept, so that the pipeline can random-crop):

- photo records: `image/encoded` (JPEG, RGB), `image/height`,
  `image/width`, `image/source` (relative file name);
- style records: the same, plus `smooth/encoded`, the edge-smoothed copy
  of the style image (same size). Grayscale versions are derived in the
  pipeline (BT.601), not stored.
"""

import tensorflow as tf

IMAGE = "image/encoded"
HEIGHT = "image/height"
WIDTH = "image/width"
SOURCE = "image/source"
SMOOTH = "smooth/encoded"

PHOTO = "photo"
STYLE = "style"
KINDS = (PHOTO, STYLE)

MANIFEST = "manifest.json"
SCHEMA_VERSION = 1


def shard_name(kind, index, num_shards):
    """`photo-00003-of-00008.tfrecord`."""
    return f"{kind}-{index:05d}-of-{num_shards:05d}.tfrecord"


def shard_pattern(kind):
    """Glob matching every shard of `kind`."""
    return f"{kind}-?????-of-?????.tfrecord"


def feature_spec(kind):
    """`tf.io.parse_single_example` spec for a record kind."""
    spec = {
        IMAGE: tf.io.FixedLenFeature([], tf.string),
        HEIGHT: tf.io.FixedLenFeature([], tf.int64),
        WIDTH: tf.io.FixedLenFeature([], tf.int64),
        SOURCE: tf.io.FixedLenFeature([], tf.string, default_value=""),
    }
    if kind == STYLE:
        spec[SMOOTH] = tf.io.FixedLenFeature([], tf.string)
    return spec


def _bytes(value):
    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int(value):
    return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))


def make_example(encoded, height, width, source, smooth=None):
    """Serialise one record (`smooth` only for style records)."""
    feature = {
        IMAGE: _bytes(encoded),
        HEIGHT: _int(height),
        WIDTH: _int(width),
        SOURCE: _bytes(source.encode("utf-8")),
    }
    if smooth is not None:
        feature[SMOOTH] = _bytes(smooth)
    example = tf.train.Example(features=tf.train.Features(feature=feature))
    return example.SerializeToString()


def parse_example(serialized, kind):
    """Parse and decode one record: a dict of uint8 `[H, W, 3]` images.

    Keys: "image" (and "smooth" for style records), "source".
    """
    parsed = tf.io.parse_single_example(serialized, feature_spec(kind))
    out = {
        "image": tf.io.decode_jpeg(parsed[IMAGE], channels=3),
        "source": parsed[SOURCE],
    }
    if kind == STYLE:
        out["smooth"] = tf.io.decode_jpeg(parsed[SMOOTH], channels=3)
    return out
