"""Bundle a trained generator as a package style (maintainers' tool).

    python tools/bundle_style.py --workdir=runs/anime_ue --step=2600 \
        --name=anime --description="..."

Writes `uegan_tf/styles/<name>/generator.keras` and `style.json` (the model
card, `MODEL_CARD.md`, is written by hand next to them). The generator is
restored from the work dir's checkpoint of that step. The flags are
generated from `uegan_tf.config.BundleConfig` (one definition per setting).
"""

import json
import pathlib
import sys

import _bootstrap  # noqa: F401

from uegan_tf import flags as uflags
from uegan_tf.config import BundleConfig

USAGE = """\
  python tools/bundle_style.py --workdir=runs/anime_ue [--step=2600] \\
      --name=anime [--description="..."] [--licence="..."]

Bundle a trained generator as a package style (maintainers' tool): writes
uegan_tf/styles/<name>/generator.keras and style.json."""


def bundle(cfg):
    """Write the generator of `cfg`'s work dir as a bundled style.

    Returns:
        The exit code: 0 done, 2 no such work dir or checkpoint, or a
        damaged one (one `error:` line on stderr).
    """
    from uegan_tf import registry
    from uegan_tf.fileutil import write_text_atomic
    from uegan_tf.train.workdir import load_generator_from_workdir

    try:
        generator, info = load_generator_from_workdir(cfg.workdir, cfg.step)
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    folder = registry.BUNDLED_DIR / cfg.name
    folder.mkdir(parents=True, exist_ok=True)
    generator.save(folder / registry.GENERATOR_FILE)
    meta = {
        "kind": "bundled",
        "description": cfg.description,
        "licence": cfg.licence,
        "trained_steps": info["step"],
        "unet": generator.unet,
        "upsample": generator.upsample,
        "source": f"{pathlib.Path(cfg.workdir).name} step {info['step']}",
    }
    # The resolved training config, so that the card's flags can be checked.
    config_path = pathlib.Path(cfg.workdir) / "config.json"
    if config_path.exists():
        meta["training_config"] = json.loads(config_path.read_text())
    write_text_atomic(
        folder / registry.STYLE_FILE, json.dumps(meta, indent=2) + "\n"
    )
    print(f"bundled {cfg.workdir} step {info['step']} as {folder}")
    return 0


def cli(argv=None, flag_values=None):
    """`python tools/bundle_style.py`: flags from `BundleConfig`.

    Args:
        argv: the command line, program name first (default: sys.argv).
        flag_values: the flag registry (default: a fresh one).

    Returns:
        The exit code: 0 done, 2 bad flags or no such checkpoint.
    """
    return uflags.run_config_command(
        BundleConfig, USAGE, bundle, argv, flag_values
    )


if __name__ == "__main__":
    sys.exit(cli())
