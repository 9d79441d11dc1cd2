"""The tf.data training pipeline over prepared TFRecords.

Yields batches `{"photo", "anime", "anime_gray", "anime_smooth_gray"}`, each
`[B, S, S, 3]` float32 in [-1, 1], with photos and style images drawn
independently (as the reference's separate loaders do). Grayscale images are
BT.601 luma replicated to 3 channels (OpenCV `IMREAD_GRAYSCALE`).
"""

import pathlib

import tensorflow as tf

from uegan_tf.data import schema
from uegan_tf.errors import first_line
from uegan_tf.image_io import load_images
from uegan_tf.image_ops import fit_cover_tf
from uegan_tf.image_ops import resize_to_cover_tf
from uegan_tf.image_ops import to_unit_range

AUTOTUNE = tf.data.AUTOTUNE


def list_shards(records_dir, kind):
    """Sorted shard paths of one kind.

    Raises:
        FileNotFoundError: no shards (with a hint to run make_tfrecords).
    """
    files = sorted(
        str(p)
        for p in pathlib.Path(records_dir).glob(schema.shard_pattern(kind))
    )
    if not files:
        raise FileNotFoundError(
            f"no {kind} shards ({schema.shard_pattern(kind)}) in "
            f"{records_dir}: run tools/make_tfrecords.py first"
        )
    return files


class CorruptRecordsError(ValueError):
    """A TFRecord shard that cannot be read to its end; names the file."""


def remake_hint(records_dir):
    """How to write a records folder again (for error messages)."""
    return (
        "re-make the folder with `python tools/make_tfrecords.py "
        f"--photo_dir=... --style_dir=... --out_dir={records_dir}`"
    )


def corrupt_shard_error(path, error, records_dir=None):
    """A `CorruptRecordsError` for `path` from TF's `DataLossError`.

    TF's own message ("truncated record at 5163' failed with Read less
    bytes than requested [Op:IteratorGetNext]") names neither the file nor
    what to do.
    """
    reason = first_line(error).split("}} ")[-1].split(" [Op:")[0].strip()
    records_dir = records_dir or pathlib.Path(path).parent
    return CorruptRecordsError(
        f"{path}: truncated or corrupt TFRecord file ({reason}); "
        f"{remake_hint(records_dir)}"
    )


def verify_shards(records_dir):
    """Read every shard of a prepared folder to its end (framing + CRCs).

    Runs in-graph (`Dataset.reduce`), at disk speed, so that training
    fails at start with the file's name rather than at some step with an
    anonymous `DataLossError` from inside the interleaved pipeline.

    Returns:
        `{kind: number of records}`.

    Raises:
        FileNotFoundError: no shards of a kind.
        CorruptRecordsError: a shard is truncated or damaged.
    """
    counts = {}
    for kind in schema.KINDS:
        counts[kind] = 0
        for path in list_shards(records_dir, kind):
            try:
                n = tf.data.TFRecordDataset(path).reduce(
                    tf.constant(0, tf.int64), lambda n, _: n + 1
                )
            except tf.errors.DataLossError as e:
                raise corrupt_shard_error(path, e, records_dir) from None
            counts[kind] += int(n)
    return counts


def gray3(images):
    """BT.601 grayscale replicated to 3 channels (any float range)."""
    return tf.image.grayscale_to_rgb(tf.image.rgb_to_grayscale(images))


def augment(images, crop_size, seed, short_side=0, flip=True):
    """Resize, random-crop and randomly flip a stack of aligned images.

    Stateless random ops keyed by `seed`, so that the pipeline's iterator
    can be checkpointed (stateful random ops cannot be serialized) and a
    resumed run continues the same sequence.

    Args:
        images: `[N, H, W, 3]` uint8, cropped and flipped together (a style
            image and its smoothed copy stay aligned).
        crop_size: output side S.
        seed: `[2]` int seed of the stateless random ops.
        short_side: resize the short side to this first (0: keep).
        flip: random horizontal flip.

    Returns:
        `[N, S, S, 3]` float32 in [-1, 1].
    """
    x = resize_to_cover_tf(images, crop_size, short_side)
    n = tf.shape(x)[0]
    crop_seed, flip_seed = tf.unstack(
        tf.random.experimental.stateless_split(seed, 2)
    )
    x = tf.image.stateless_random_crop(
        x, tf.stack([n, crop_size, crop_size, 3]), seed=crop_seed
    )
    if flip:
        x = tf.cond(
            tf.random.stateless_uniform([], seed=flip_seed) < 0.5,
            lambda: tf.reverse(x, axis=[2]),
            lambda: x,
        )
    return to_unit_range(tf.clip_by_value(tf.round(x), 0.0, 255.0))


# File-order shuffle seed shared by all input pipelines of an unseeded run:
# record sharding needs every pipeline to see the records in the same order.
_SHARED_FILE_SEED = 14


def read_records(files, input_context=None, seed=None):
    """Serialized records of `files`: this input pipeline's share.

    Sharded by record, not by file (issue 14): shards hold ~256 records,
    so ~1,300 style images make 6 files and, split by file, workers 7-8 of
    an 8-worker run got no style data at all. Every pipeline reads all
    files in the same order (same-seed file shuffle, deterministic
    interleave) and keeps every N-th record, so each one gets photos and
    style images at any worker count, and together they read each record
    once per epoch. An explicit `shard` rather than
    `AutoShardPolicy.DATA`: `distribute_datasets_from_function` does not
    auto-shard (the dataset_fn must), and sharding here, before decoding
    and augmentation, drops the other pipelines' records unparsed.

    Args:
        files: TFRecord paths.
        input_context: `tf.distribute.InputContext` or None (one pipeline).
        seed: file-order shuffle seed; None: random unless sharded.
    """
    num = input_context.num_input_pipelines if input_context else 1
    sharded = num > 1
    file_seed = _SHARED_FILE_SEED if sharded and seed is None else seed
    ds = tf.data.Dataset.from_tensor_slices(files)
    ds = ds.shuffle(len(files), seed=file_seed)
    ds = ds.interleave(
        tf.data.TFRecordDataset,
        cycle_length=min(4, len(files)),
        num_parallel_calls=AUTOTUNE,
        # Sharded pipelines must agree on the record order.
        deterministic=sharded or seed is not None,
    )
    if sharded:
        ds = ds.shard(num, input_context.input_pipeline_id)
    return ds


def _stream(files, kind, batch_size, cfg, input_context, seed):
    """Shuffled, repeated, augmented, batched stream of one record kind."""
    ds = read_records(files, input_context, seed)
    # Shuffle serialized records (small) before repeat: every epoch sees
    # each image once, and an iterator checkpoint stays a few MB.
    ds = ds.shuffle(
        cfg.shuffle_buffer, seed=seed, reshuffle_each_iteration=True
    ).repeat()
    # A [2] seed per element for the stateless crop/flip.
    seeds = tf.data.Dataset.random(seed=seed).batch(2)
    ds = tf.data.Dataset.zip(ds, seeds)

    def parse(serialized, element_seed):
        ex = schema.parse_example(serialized, kind)
        if kind == schema.PHOTO:
            return augment(
                ex["image"][None],
                cfg.crop_size,
                element_seed,
                cfg.short_side,
                cfg.flip,
            )[0]
        both = tf.stack([ex["image"], ex["smooth"]])  # same crop and flip
        both = augment(
            both, cfg.crop_size, element_seed, cfg.short_side, cfg.flip
        )
        return {
            "anime": both[0],
            "anime_gray": gray3(both[0]),
            "anime_smooth_gray": gray3(both[1]),
        }

    ds = ds.map(
        parse, num_parallel_calls=AUTOTUNE, deterministic=seed is not None
    )
    # Fixed batch shapes for the step function (and for XLA).
    return ds.batch(batch_size, drop_remainder=True)


def build_train_dataset(cfg, global_batch_size, input_context=None, seed=None):
    """Training batches from `cfg.records_dir`.

    Usable directly or as the `dataset_fn` of
    `strategy.distribute_datasets_from_function` (pass the input context:
    the batch is then the per-replica batch and records are split between
    input pipelines, see `read_records`).

    Args:
        cfg: a `uegan_tf.config.DataConfig` (records_dir, crop_size,
            short_side, flip, shuffle_buffer).
        global_batch_size: batch size over all replicas.
        input_context: `tf.distribute.InputContext` or None.
        seed: makes the pipeline deterministic (tests); None for speed.

    Returns:
        A `tf.data.Dataset` of dicts with "photo", "anime", "anime_gray",
        "anime_smooth_gray", each `[B, S, S, 3]` float32 in [-1, 1].
    """
    batch = global_batch_size
    if input_context is not None:
        batch = input_context.get_per_replica_batch_size(global_batch_size)
    photos = _stream(
        list_shards(cfg.records_dir, schema.PHOTO),
        schema.PHOTO,
        batch,
        cfg,
        input_context,
        seed,
    )
    styles = _stream(
        list_shards(cfg.records_dir, schema.STYLE),
        schema.STYLE,
        batch,
        cfg,
        input_context,
        None if seed is None else seed + 1,
    )
    ds = tf.data.Dataset.zip(photos, styles).map(lambda p, s: {"photo": p, **s})
    return ds.prefetch(AUTOTUNE)


def load_validation_images(source, size, max_images=8):
    """A fixed batch of validation photos for sample grids.

    Args:
        source: a folder of images (any format `load_rgb` reads), or a
            records folder (its first photo records are used).
        size: each image is resized (short side) and centre-cropped to
            `size` x `size`.
        max_images: at most this many images.

    Returns:
        `[N, size, size, 3]` float32 in [-1, 1] (N >= 1).

    Raises:
        FileNotFoundError: no usable image in `source`.
    """
    source = pathlib.Path(source)
    images = []
    if any(source.glob(schema.shard_pattern(schema.PHOTO))):
        ds = tf.data.TFRecordDataset(list_shards(source, schema.PHOTO))
        for serialized in ds.take(max_images):
            images.append(
                schema.parse_example(serialized, schema.PHOTO)["image"]
            )
    else:
        # A bad validation image is skipped, not fatal.
        for _, rgb in load_images(source, max_images):
            images.append(tf.constant(rgb))
    if not images:
        raise FileNotFoundError(f"no validation images in {source}")
    return tf.stack([to_unit_range(fit_cover_tf(img, size)) for img in images])
