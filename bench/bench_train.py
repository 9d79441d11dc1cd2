"""Benchmark the training step on this machine (run by hand).

    python bench/bench_train.py [--sizes=128,256] [--batch_size=4] \
        [--steps=5] [--precisions=float32,mixed_bfloat16] \
        [--track_steps=300 [--records_dir=runs/anime_data] \
         [--vgg_weights=PATH/vgg16_imagenet_features.npz]] \
        [--out=bench/results/train.json]

Times the real `Trainer` steps (data pipeline included) for the full UE
step (U-Net generator + edge loss), the plain AnimeGANv2 step (--nounet, no
edge loss) and the content-only init step, on synthetic records, under
each `--precisions` policy; prints a table with each step's speed-up over
float32 and writes JSON. Medians of `--steps` timed steps after 2 warm-up
steps (the first traces the graph). The VGG is VGG16 with random weights:
the cost is the same as with pretrained weights.

`--track_steps=N` also trains N GAN steps of the UE generator at the first
size under each precision, from the same seeded weights on the same batches
(`--records_dir`: prepared records, e.g. the real data; default the
synthetic ones), and compares the loss curves: whether bfloat16 training
follows the float32 run (issue 15).
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
flags.DEFINE_list(
    "precisions",
    ["float32", "mixed_bfloat16"],
    "Training precisions (TrainConfig.precision) to time.",
)
flags.DEFINE_integer(
    "track_steps", 0, "GAN steps of the loss-tracking comparison (0: none)."
)
flags.DEFINE_string(
    "records_dir", None, "Records for --track_steps (default: synthetic)."
)
flags.DEFINE_string(
    "vgg_weights",
    "none",
    "VGG weights of --track_steps (the offline VGG16 .npz for real losses).",
)
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

    from uegan_tf.testing import write_fake_records

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
        for size, precision in (
            (int(s), p) for s in FLAGS.sizes for p in FLAGS.precisions
        ):
            for name, unet, edge in (
                ("UE (unet + edge)", True, 5.0),
                ("AnimeGANv2 (plain)", False, 0.0),
            ):
                trainer = reference_trainer(
                    pathlib.Path(tmp) / f"run_{size}_{unet}_{precision}",
                    records,
                    precision,
                    init_epochs=1,
                    data={"crop_size": size, "short_side": size},
                    model={"unet": unet},
                    loss={"edge": edge},
                )
                it = trainer.iterator
                variants = [("gan", trainer.gan_fn)]
                if unet:
                    variants.append(("init", trainer.init_fn))
                for phase, fn in variants:
                    med, times = time_steps(fn, it, 2, FLAGS.steps)
                    label = name if phase == "gan" else "init (content only)"
                    row = {
                        "variant": label,
                        "precision": precision,
                        "size": size,
                        "batch": FLAGS.batch_size,
                        "median_step_s": round(med, 3),
                        "steps_per_s": round(1 / med, 3),
                        "images_per_s": round(FLAGS.batch_size / med, 2),
                        "steps_s": [round(t, 3) for t in times],
                    }
                    rows.append(row)
                    print(
                        f"{label:22s} {precision:15s} {size:4d}px  "
                        f"{med:7.2f} s/step  "
                        f"{FLAGS.batch_size / med:6.2f} img/s",
                        flush=True,
                    )

        tracking = None
        if FLAGS.track_steps:
            tracking = track_losses(
                tmp, FLAGS.records_dir or records, int(FLAGS.sizes[0])
            )

    for r in rows:  # speed-up over float32 for the same variant and size
        base = [
            b["median_step_s"]
            for b in rows
            if b["precision"] == "float32"
            and (b["variant"], b["size"]) == (r["variant"], r["size"])
        ]
        r["speedup_vs_float32"] = (
            round(base[0] / r["median_step_s"], 2) if base else None
        )
    print()
    print(
        "| variant | precision | size | batch | s/step (median) | "
        "vs float32 | img/s |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['variant']} | {r['precision']} | {r['size']} | "
            f"{r['batch']} | {r['median_step_s']} | "
            f"{r['speedup_vs_float32']}x | {r['images_per_s']} |"
        )
    if tracking:
        print_tracking(tracking)
    write_json(
        FLAGS.out, {"vgg": FLAGS.vgg_arch, "rows": rows, "tracking": tracking}
    )


def reference_trainer(workdir, records, precision, model, **changes):
    """A restored `Trainer` at the reference widths (tiny_train_config's
    are 4 / 8) with `--vgg_arch` and `--batch_size`; `model` adds model
    settings, `changes` other config sections or fields."""
    from uegan_tf.testing import tiny_train_config
    from uegan_tf.train.trainer import Trainer

    cfg = tiny_train_config(
        workdir,
        records,
        batch_size=FLAGS.batch_size,
        epochs=1000,
        steps_per_epoch=1000,
        model={
            "vgg_arch": FLAGS.vgg_arch,
            "g_width": 32,
            "d_channels": 64,
            **model,
        },
        precision=precision,
        **changes,
    )
    trainer = Trainer(cfg, progress=False, log=lambda m: None)
    trainer.restore()
    return trainer


def track_losses(tmp, records, size):
    """N GAN steps of the UE generator under each precision, same start.

    The reference widths, seed 0 weights, the same batches (the iterator
    is seeded by the config); the metrics of every step are read back.

    Returns:
        `{precision: {metric: [value per step]}}`.
    """

    curves = {}
    for precision in FLAGS.precisions:
        trainer = reference_trainer(
            pathlib.Path(tmp) / f"track_{precision}",
            records,
            precision,
            init_epochs=0,
            data={"crop_size": size, "short_side": 0},
            model={"vgg_weights": FLAGS.vgg_weights},
        )
        curve = {}
        t = time.perf_counter()
        for _ in range(FLAGS.track_steps):
            for k, v in trainer.gan_fn(trainer.iterator).items():
                curve.setdefault(k, []).append(float(v))
        print(
            f"tracked {FLAGS.track_steps} GAN steps in {precision} "
            f"({time.perf_counter() - t:.0f} s)",
            flush=True,
        )
        curves[precision] = curve
    return curves


def print_tracking(curves, window=50):
    """Each loss term's mean over the first and the last `window` steps,
    per precision, and the largest gap between the precisions' moving
    averages (relative to float32's)."""
    import numpy as np

    names = list(curves)
    ref = curves[names[0]]
    print()
    print(f"Loss tracking ({names[0]} vs {', '.join(names[1:])}; means over")
    print(f"{window}-step windows; gap: largest |difference| of the")
    print(f"{window}-step moving averages relative to {names[0]}'s)")
    print()
    print(
        "| metric | "
        + " | ".join(f"{n} first / last" for n in names)
        + " | largest gap |"
    )
    print("|---|" + "---|" * len(names) + "---|")
    kernel = np.ones(window) / window
    for key in ref:
        if not key.startswith("loss/"):
            continue
        cells, gaps = [], []
        smooth_ref = np.convolve(ref[key], kernel, "valid")
        for n in names:
            v = np.asarray(curves[n][key])
            cells.append(f"{v[:window].mean():.4g} / {v[-window:].mean():.4g}")
            smooth = np.convolve(v, kernel, "valid")
            gaps.append(
                np.max(np.abs(smooth - smooth_ref) / np.abs(smooth_ref))
            )
        print(f"| {key} | " + " | ".join(cells) + f" | {max(gaps):.1%} |")


if __name__ == "__main__":
    app.run(main)
