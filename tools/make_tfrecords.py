"""Prepare training data: folders of images -> sharded TFRecords + manifest.

    python tools/make_tfrecords.py --photo_dir=dataset/train_photo \
        --style_dir=dataset/Hayao/style [--smooth_dir=dataset/Hayao/smooth] \
        --out_dir=data/hayao [--size=256] [--shards=N]

Photos can also come from TensorFlow Datasets (`--photo_source=tfds:NAME`,
local data dir only unless --tfds_download) or an ImageFolder tree
(`--photo_source=imagefolder:ROOT[:SPLIT]`). Bad files, and folder entries
that cannot be read as files (dangling or looping symbolic links, a folder
named `x.jpg`, links to folders), are skipped with a warning each and
listed in `manifest.json`. See `uegan_tf/data/prepare.py`.
"""

import sys

import _bootstrap  # noqa: F401
from absl import app

from uegan_tf import flags as uflags
from uegan_tf.quiet import define_verbose_flag
from uegan_tf.quiet import quiet_tensorflow


def main(argv):
    del argv
    try:  # flags, folders: checked before TensorFlow's import (seconds)
        cfg = uflags.prepare_config_from_flags()
        missing = cfg.missing_folder()
        if missing:
            raise ValueError(missing)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    quiet_tensorflow()  # reads --verbose from sys.argv
    from uegan_tf.data.prepare import DataPreparationError
    from uegan_tf.data.prepare import prepare_dataset

    try:
        manifest = prepare_dataset(
            cfg, log=lambda msg: print(f"warning: {msg}", file=sys.stderr)
        )
    except (DataPreparationError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(
        f"wrote {manifest['photo']['count']} photos "
        f"({len(manifest['photo']['shards'])} shards) and "
        f"{manifest['style']['count']} style images "
        f"({len(manifest['style']['shards'])} shards) to {cfg.out_dir}; "
        f"skipped {len(manifest['skipped'])} files (see manifest.json)"
    )
    return 0


if __name__ == "__main__":
    # Here, not at import: the spawned workers of prepare_dataset import
    # this file again (as __mp_main__) and must not define flags (nor
    # import TensorFlow: `main` does, after the checks).
    uflags.define_prepare_flags()
    define_verbose_flag()
    app.run(lambda argv: sys.exit(main(argv)))
