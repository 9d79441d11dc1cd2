"""Benchmark the training step on this machine (run by hand).

    python bench/bench_train.py [--sizes=128,256] [--batch_size=4] \
        [--steps=5] [--out=bench/results/train.json]

Times the real `Trainer` steps (data pipeline included) for the full UE
step (U-Net generator + edge loss), the plain AnimeGANv2 step (--nounet, no
edge loss) and the content-only init step, on synthetic records. Prints a
table and writes JSON. Medians of `--steps` timed steps after 2 warm-up
steps (the first traces the graph). The VGG is VGG16 with random weights:
the cost is the same as with pretrained weights.
"""

import pathlib
import statistics
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from benchlib import write_json  # noqa: E402

flags.DEFINE_list("sizes", ["128", "256"], "Crop sizes.")
flags.DEFINE_integer("batch_size", 4, "Global batch size.")
flags.DEFINE_integer("steps", 5, "Timed steps per variant.")
flags.DEFINE_enum("vgg_arch", "vgg16", ["vgg16", "vgg19"], "Perceptual net.")
flags.DEFINE_string("out", "bench/results/train.json", "JSON output.")
FLAGS = flags.FLAGS


def time_steps(fn, iterator, warmup, steps):
    for _ in range(warmup):
        fn(iterator)
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        out = fn(iterator)
        float(next(iter(out.values())))  # wait for the step
        times.append(time.perf_counter() - t)
    return statistics.median(times), times


def main(argv):
    del argv
    import tensorflow as tf

    from uegan_tf.testing import tiny_train_config
    from uegan_tf.testing import write_fake_records
    from uegan_tf.train.trainer import Trainer

    tf.get_logger().setLevel("ERROR")
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        size_max = max(int(s) for s in FLAGS.sizes)
        records = write_fake_records(
            pathlib.Path(tmp) / "data",
            n_photo=16,
            n_style=16,
            size=size_max,
            workers=2,
        )
        for size in (int(s) for s in FLAGS.sizes):
            for name, unet, edge in (
                ("UE (unet + edge)", True, 5.0),
                ("AnimeGANv2 (plain)", False, 0.0),
            ):
                cfg = tiny_train_config(
                    pathlib.Path(tmp) / f"run_{size}_{unet}",
                    records,
                    batch_size=FLAGS.batch_size,
                    epochs=1000,
                    init_epochs=1,
                    steps_per_epoch=1000,
                    data={"crop_size": size, "short_side": size},
                    # The reference widths (tiny_train_config's are 4 / 8).
                    model={
                        "unet": unet,
                        "vgg_arch": FLAGS.vgg_arch,
                        "g_width": 32,
                        "d_channels": 64,
                    },
                    loss={"edge": edge},
                )
                trainer = Trainer(cfg, progress=False, log=lambda m: None)
                trainer.restore()
                it = trainer.iterator
                variants = [("gan", trainer.gan_fn)]
                if unet:
                    variants.append(("init", trainer.init_fn))
                for phase, fn in variants:
                    med, times = time_steps(fn, it, 2, FLAGS.steps)
                    label = name if phase == "gan" else "init (content only)"
                    row = {
                        "variant": label,
                        "size": size,
                        "batch": FLAGS.batch_size,
                        "median_step_s": round(med, 3),
                        "steps_per_s": round(1 / med, 3),
                        "images_per_s": round(FLAGS.batch_size / med, 2),
                        "steps_s": [round(t, 3) for t in times],
                    }
                    rows.append(row)
                    print(
                        f"{label:22s} {size:4d}px  {med:7.2f} s/step  "
                        f"{FLAGS.batch_size / med:6.2f} img/s",
                        flush=True,
                    )

    print()
    print("| variant | size | batch | s/step (median) | steps/s | img/s |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['variant']} | {r['size']} | {r['batch']} | "
            f"{r['median_step_s']} | {r['steps_per_s']} | "
            f"{r['images_per_s']} |"
        )
    write_json(FLAGS.out, {"vgg": FLAGS.vgg_arch, "rows": rows})


if __name__ == "__main__":
    app.run(main)
