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

The flags are generated from `uegan_tf.config.ImportConfig` (one
definition per setting); `--help` lists them without starting TensorFlow.
"""

import os
import pathlib
import sys

import _bootstrap  # noqa: F401

from uegan_tf import flags as uflags
from uegan_tf.config import ImportConfig

USAGE = """\
  python tools/import_animeganv2.py --source=CHECKPOINT_OR_PT [--name=NAME]
  python tools/import_animeganv2.py --download=Hayao     # needs internet

Convert released AnimeGANv2 weights (official TF1 checkpoint or PyTorch
port state dict) into a uegan style, or a .keras file with --out."""


def _style_name(path):
    """ "generator_Hayao_weight" -> "hayao"; "face_paint_512_v2.pt" ->
    "face_paint_512_v2"."""
    stem = path.stem.replace("generator_", "").replace("_weight", "")
    return stem.lower().split("-")[0]


def convert(cfg):
    """Convert the weights of `cfg` and register (or write) the generator.

    Returns:
        The exit code: 0 done, 2 missing or unreadable weights, an existing
        style or file, no connection (one `error:` line on stderr).
    """
    from uegan_tf import importers
    from uegan_tf import registry

    try:
        if cfg.download:
            kind, path = importers.download_weights(
                cfg.download, os.path.expanduser(cfg.cache_dir)
            )
            name = cfg.name or cfg.download.lower()
        else:
            path = pathlib.Path(cfg.source)
            kind = "pytorch" if path.suffix in (".pt", ".pth") else "tf1"
            name = cfg.name or _style_name(path)
        if kind == "tf1":
            generator = importers.convert_official_weights(
                str(path), unet=cfg.unet
            )
            source_desc = "official AnimeGANv2 TF1 checkpoint"
        else:
            sd = importers.read_pytorch_checkpoint(str(path))
            generator = importers.convert_pytorch_weights(
                sd, upsample=cfg.upsample, unet=cfg.unet
            )
            source_desc = f"animegan2-pytorch state dict ({cfg.upsample})"
        if cfg.out:
            out = pathlib.Path(cfg.out)
            if out.exists() and not cfg.overwrite:
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
                overwrite=cfg.overwrite,
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


def cli(argv=None, flag_values=None):
    """`python tools/import_animeganv2.py`: flags from `ImportConfig`.

    Args:
        argv: the command line, program name first (default: sys.argv).
        flag_values: the flag registry (default: a fresh one).

    Returns:
        The exit code: 0 done, 2 bad flags or a failed import.
    """
    return uflags.run_config_command(
        ImportConfig, USAGE, convert, argv, flag_values
    )


if __name__ == "__main__":
    sys.exit(cli())
