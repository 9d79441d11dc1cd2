"""Benchmark the training input pipeline (run by hand).

    python bench/bench_pipeline.py [--records_dir=DIR] [--crop_size=256] \
        [--batch_size=12] [--batches=40] [--out=bench/results/pipeline.json]

Measures images/s delivered by `build_train_dataset` (decode, resize, crop,
flip, grayscale, batching; one "image" = one photo + one style example with
its gray and smoothed-gray copies). Without --records_dir it prepares the
shared real data (../shared/data) or, when absent, synthetic images. Prints
a table next to the training step's consumption rate read from
bench/results/train.json (written by bench/bench_train.py), and writes
JSON.
"""

import json
import pathlib
import statistics
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

flags.DEFINE_string("records_dir", None, "Prepared records (optional).")
flags.DEFINE_integer("crop_size", 256, "Crop side.")
flags.DEFINE_integer("batch_size", 12, "Batch size.")
flags.DEFINE_integer("batches", 40, "Timed batches per round.")
flags.DEFINE_integer("rounds", 3, "Rounds (median reported).")
flags.DEFINE_string("out", "bench/results/pipeline.json", "JSON output.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    import tensorflow as tf

    from uegan_tf.config import DataConfig
    from uegan_tf.data.pipeline import build_train_dataset
    from uegan_tf.data.prepare import PrepareConfig
    from uegan_tf.data.prepare import prepare_dataset
    from uegan_tf.testing import write_fake_records

    tmp = tempfile.TemporaryDirectory()
    records = FLAGS.records_dir
    source = records
    if records is None:
        shared = ROOT.parent / "shared" / "data"
        if (shared / "train_photo").is_dir():
            records = str(pathlib.Path(tmp.name) / "records")
            prepare_dataset(
                PrepareConfig(
                    out_dir=records,
                    photo_dir=str(shared / "train_photo"),
                    style_dir=str(shared / "style_painted"),
                ),
                log=lambda m: None,
            )
            source = "../shared/data (163 photos, 61 painted)"
        else:
            records = str(write_fake_records(tmp.name, 64, 32, 288))
            source = "synthetic"
    cfg = DataConfig(records_dir=records, crop_size=FLAGS.crop_size)
    ds = build_train_dataset(cfg, FLAGS.batch_size)
    it = iter(ds)
    for _ in range(5):  # warm-up: fill shuffle and prefetch buffers
        next(it)
    rates = []
    for _ in range(FLAGS.rounds):
        t = time.perf_counter()
        for _ in range(FLAGS.batches):
            batch = next(it)
        float(batch["photo"][0, 0, 0, 0])
        rates.append(
            FLAGS.batches * FLAGS.batch_size / (time.perf_counter() - t)
        )
    pipeline = statistics.median(rates)

    rows = [
        {
            "what": f"input pipeline ({FLAGS.crop_size}px, batch "
            f"{FLAGS.batch_size})",
            "images_per_s": round(pipeline, 1),
        }
    ]
    train_json = ROOT / "bench" / "results" / "train.json"
    if train_json.exists():
        for r in json.loads(train_json.read_text())["rows"]:
            rows.append(
                {
                    "what": f"train step: {r['variant']} "
                    f"({r['size']}px, batch {r['batch']})",
                    "images_per_s": r["images_per_s"],
                }
            )
    print(f"source: {source}; TensorFlow {tf.__version__}")
    print("| what | images/s |\n|---|---|")
    for r in rows:
        print(f"| {r['what']} | {r['images_per_s']} |")
    out = (
        ROOT / FLAGS.out
        if not pathlib.Path(FLAGS.out).is_absolute()
        else pathlib.Path(FLAGS.out)
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps({"source": source, "rounds": rates, "rows": rows}, indent=2)
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    app.run(main)
