"""Convert released AnimeGANv2 weights into uegan_tf styles.

    # an official TF1 checkpoint folder (TachibanaYoshino/AnimeGANv2)
    python tools/import_animeganv2.py \
        --source=checkpoint/generator_Hayao_weight --name=hayao
    # a PyTorch port state dict (bryandlee/animegan2-pytorch), no torch needed
    python tools/import_animeganv2.py --source=face_paint_512_v2.pt \
        --name=face_paint_512_v2
    # or download first (needs internet)
    python tools/import_animeganv2.py --download=Paprika

The converted generator reproduces its source's numerics (official: legacy
TF1 bilinear resize, layer-norm epsilon 1e-12; PyTorch port: GroupNorm
epsilon 1e-5 and its align-corners resize to the stored encoder sizes, or
--upsample=half_pixel for its test.py mode); the mode is saved with the
model, so `uegan stylize --style=NAME` needs no extra flags. By default the
style is registered in $UEGAN_HOME/styles (see `uegan list-styles`);
--out=FILE.keras writes a file instead. --unet builds the UE generator with
zero skip weights (the same function), a starting point for fine-tuning.
"""

import os
import pathlib
import sys

import _bootstrap  # noqa: F401
from absl import app
from absl import flags

from uegan_tf.quiet import define_verbose_flag
from uegan_tf.quiet import quiet_tensorflow

define_verbose_flag()

flags.DEFINE_string(
    "source",
    None,
    "Official checkpoint folder/prefix or PyTorch .pt/.pth file.",
)
flags.DEFINE_string(
    "download",
    None,
    "Hayao | Shinkai | Paprika | paprika "
    "| face_paint_512_v1 | face_paint_512_v2 | "
    "celeba_distill (needs internet).",
)
flags.DEFINE_string(
    "cache_dir", os.path.join("~", ".uegan", "downloads"), "Where downloads go."
)
flags.DEFINE_string("name", None, "Style name (default: from the source).")
flags.DEFINE_string(
    "out", None, "Write a .keras file instead of registering a style."
)
flags.DEFINE_enum(
    "upsample",
    "align_corners",
    ["align_corners", "half_pixel"],
    "PyTorch sources: the port's resize mode.",
)
flags.DEFINE_bool("unet", False, "Build the UE generator (zero skips).")
flags.DEFINE_bool("overwrite", False, "Replace an existing style/file.")
FLAGS = flags.FLAGS


def main(argv):
    quiet_tensorflow(flags.FLAGS.verbose)
    del argv
    from uegan_tf import importers
    from uegan_tf import registry

    if bool(FLAGS.source) == bool(FLAGS.download):
        print(
            "error: give exactly one of --source and --download",
            file=sys.stderr,
        )
        return 2
    try:
        if FLAGS.download:
            kind, path = importers.download_weights(
                FLAGS.download, os.path.expanduser(FLAGS.cache_dir)
            )
            name = FLAGS.name or FLAGS.download.lower()
        else:
            path = pathlib.Path(FLAGS.source)
            kind = "pytorch" if path.suffix in (".pt", ".pth") else "tf1"
            name = (
                FLAGS.name
                or path.stem.replace("generator_", "")
                .replace("_weight", "")
                .lower()
                .split("-")[0]
            )
        if kind == "tf1":
            generator = importers.convert_official_weights(
                str(path), unet=FLAGS.unet
            )
            source_desc = "official AnimeGANv2 TF1 checkpoint"
        else:
            sd = importers.read_pytorch_checkpoint(str(path))
            generator = importers.convert_pytorch_weights(
                sd, upsample=FLAGS.upsample, unet=FLAGS.unet
            )
            source_desc = f"animegan2-pytorch state dict ({FLAGS.upsample})"
        if FLAGS.out:
            out = pathlib.Path(FLAGS.out)
            if out.exists() and not FLAGS.overwrite:
                raise FileExistsError(f"{out} exists (--overwrite)")
            out.parent.mkdir(parents=True, exist_ok=True)
            generator.save(out)
            where = out
        else:
            where = registry.add_style(
                name,
                generator,
                "converted",
                description=f"{source_desc}: {pathlib.Path(path).name}",
                source=str(path),
                overwrite=FLAGS.overwrite,
                extra={
                    "upsample": generator.upsample,
                    "norm_epsilon": generator.norm_epsilon,
                    "unet": generator.unet,
                },
            )
    except (
        FileNotFoundError,
        FileExistsError,
        ValueError,
        ConnectionError,
    ) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(
        f"converted {path} -> {where} (upsample={generator.upsample}, "
        f"norm_epsilon={generator.norm_epsilon:g}, unet={generator.unet})"
    )
    return 0


if __name__ == "__main__":
    app.run(lambda argv: sys.exit(main(argv)))
