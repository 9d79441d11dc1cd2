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

TensorFlow is imported inside the functions that build or parse records:
the names and `read_manifest` serve the commands' checks before
TensorFlow starts (seconds), and the writer's worker processes.
"""

import json
import pathlib

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
    import tensorflow as tf

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
    import tensorflow as tf

    return tf.train.Feature(bytes_list=tf.train.BytesList(value=[value]))


def _int(value):
    import tensorflow as tf

    return tf.train.Feature(int64_list=tf.train.Int64List(value=[value]))


def make_example(encoded, height, width, source, smooth=None):
    """Serialise one record (`smooth` only for style records)."""
    import tensorflow as tf

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
    import tensorflow as tf

    parsed = tf.io.parse_single_example(serialized, feature_spec(kind))
    out = {
        "image": tf.io.decode_jpeg(parsed[IMAGE], channels=3),
        "source": parsed[SOURCE],
    }
    if kind == STYLE:
        out["smooth"] = tf.io.decode_jpeg(parsed[SMOOTH], channels=3)
    return out


def read_manifest(records_dir):
    """Load `manifest.json` of a prepared folder.

    Raises:
        FileNotFoundError: with a hint to run `tools/make_tfrecords.py`.
    """
    path = pathlib.Path(records_dir) / MANIFEST
    if not path.exists():
        raise FileNotFoundError(
            f"{path} not found: prepare the data first with "
            "`python tools/make_tfrecords.py --photo_dir=... --style_dir=... "
            f"--out_dir={records_dir}`"
        )
    return json.loads(path.read_text())
