"""Bundle a trained generator as a package style (maintainers' tool).

    python tools/bundle_style.py --workdir=runs/demo_ue --step=2000 \
        --name=painted --description="..."

Writes `uegan_tf/styles/<name>/generator.keras` and `style.json` (the model
card, `MODEL_CARD.md`, is written by hand next to them). The generator is
restored from the work dir's checkpoint of that step.
"""

import json
import pathlib
import sys

import _bootstrap  # noqa: F401
from absl import app
from absl import flags

from uegan_tf.quiet import define_verbose_flag
from uegan_tf.quiet import quiet_tensorflow

define_verbose_flag()

flags.DEFINE_string("workdir", None, "Training work dir.")
flags.DEFINE_integer("step", None, "Checkpoint step (default: latest).")
flags.DEFINE_string("name", None, "Style name.")
flags.DEFINE_string("description", "", "One line for `uegan list-styles`.")
flags.DEFINE_string("licence", "", "Licence note for style.json.")
FLAGS = flags.FLAGS


def main(argv):
    quiet_tensorflow(flags.FLAGS.verbose)
    del argv
    from uegan_tf import registry
    from uegan_tf.fileutil import write_text_atomic
    from uegan_tf.train.workdir import load_generator_from_workdir

    if not FLAGS.workdir or not FLAGS.name:
        print("error: --workdir and --name are required", file=sys.stderr)
        return 2
    try:
        generator, info = load_generator_from_workdir(FLAGS.workdir, FLAGS.step)
    except FileNotFoundError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    folder = registry.BUNDLED_DIR / FLAGS.name
    folder.mkdir(parents=True, exist_ok=True)
    generator.save(folder / registry.GENERATOR_FILE)
    meta = {
        "kind": "bundled",
        "description": FLAGS.description,
        "licence": FLAGS.licence,
        "trained_steps": info["step"],
        "unet": generator.unet,
        "upsample": generator.upsample,
        "source": f"{pathlib.Path(FLAGS.workdir).name} step {info['step']}",
    }
    # The resolved training config, so that the card's flags can be checked.
    config_path = pathlib.Path(FLAGS.workdir) / "config.json"
    if config_path.exists():
        meta["training_config"] = json.loads(config_path.read_text())
    write_text_atomic(
        folder / registry.STYLE_FILE, json.dumps(meta, indent=2) + "\n"
    )
    print(f"bundled {FLAGS.workdir} step {info['step']} as {folder}")
    return 0


if __name__ == "__main__":
    app.run(lambda argv: sys.exit(main(argv)))
