"""Benchmark inference latency per runtime on this machine (run by hand).

    python bench/bench_inference.py [--checkpoint=SOURCE] \
        [--sizes=256,512,1024] [--repeats=10] [--warmup=2] [--threads=2] \
        [--backends=keras,keras_graph,savedmodel,tflite_fp32,tflite_fp16,\
tflite_int8,onnx] [--out=bench/results/inference.json]

Batch 1, float32 input in [-1, 1], latency of one call (median of
`--repeats` after `--warmup` calls). Backends:

- keras: eager `generator(x)`; keras_graph: the same in a `tf.function`;
- savedmodel: the exported `serve_float` signature (TF2 loader);
- tflite_fp32 / tflite_fp16 / tflite_int8: LiteRT (`ai-edge-litert`)
  with `--threads` threads and its default XNNPACK delegate; converted per
  size from the fixed-size signature (int8 calibrated on 4 scikit-image
  photos at that size);
- onnx: tf2onnx model (dynamic size) on ONNX Runtime's CPU provider with
  `--threads` intra-op threads.

Without --checkpoint a seeded random UE generator is used: the cost is the
same as with trained weights. Prints a Markdown table and writes JSON.
"""

import json
import os
import pathlib
import platform
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from absl import app  # noqa: E402
from absl import flags  # noqa: E402

BACKENDS = (
    "keras",
    "keras_graph",
    "savedmodel",
    "tflite_fp32",
    "tflite_fp16",
    "tflite_int8",
    "onnx",
)
TFLITE_MODES = {
    "tflite_fp32": "none",
    "tflite_fp16": "fp16",
    "tflite_int8": "int8",
}

_CHECKPOINT = flags.DEFINE_string(
    "checkpoint",
    None,
    "Generator source (see load_generator); default: a "
    "seeded random UE generator.",
)
_SIZES = flags.DEFINE_list("sizes", ["256", "512", "1024"], "Square sizes.")
_REPEATS = flags.DEFINE_integer("repeats", 10, "Timed calls per cell.")
_WARMUP = flags.DEFINE_integer("warmup", 2, "Untimed calls first.")
_THREADS = flags.DEFINE_integer("threads", 2, "TFLite / ORT threads.")
_BACKENDS = flags.DEFINE_list("backends", list(BACKENDS), "What to time.")
_OUT = flags.DEFINE_string(
    "out", "bench/results/inference.json", "JSON output."
)


def main(argv):
    del argv
    import keras
    import tensorflow as tf

    from uegan_tf import export as uexport
    from uegan_tf.fileutil import dir_size
    from uegan_tf.image_ops import to_unit_range_np
    from uegan_tf.inference.stylizer import load_generator
    from uegan_tf.models import build_generator

    tf.get_logger().setLevel("ERROR")
    unknown = set(_BACKENDS.value) - set(BACKENDS)
    if unknown:
        raise app.UsageError(f"unknown backends {sorted(unknown)}")
    if _CHECKPOINT.value:
        generator, _ = load_generator(_CHECKPOINT.value)
        source = _CHECKPOINT.value
    else:
        keras.utils.set_random_seed(0)
        generator = build_generator(unet=True)
        source = "random UE generator (seed 0)"

    rows, sizes_bytes = [], {}

    def record(backend, size, run, x, model_bytes):
        med, times = uexport.time_runs(run, x, _WARMUP.value, _REPEATS.value)
        rows.append(
            {
                "backend": backend,
                "size": size,
                "median_ms": round(med * 1e3, 1),
                "times_ms": [round(t * 1e3, 1) for t in times],
            }
        )
        if model_bytes is not None:
            sizes_bytes[backend] = model_bytes
        print(f"{backend:12s} {size:5d}px  {med * 1e3:9.1f} ms", flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        keras_file = tmp / "generator.keras"
        generator.save(keras_file)
        onnx_runner = None
        for size in (int(s) for s in _SIZES.value):
            x = to_unit_range_np(
                uexport.sample_photos((size, size), ("astronaut",))
            )
            saved = uexport.write_saved_model(
                generator,
                tmp / f"s{size}",
                fixed_size=(size, size),
                warmup_image=False,
            )
            if "keras" in _BACKENDS.value:
                record(
                    "keras",
                    size,
                    lambda v: generator(v, training=False).numpy(),
                    x,
                    keras_file.stat().st_size,
                )
            if "keras_graph" in _BACKENDS.value:
                graph_fn = tf.function(lambda v: generator(v, training=False))
                record(
                    "keras_graph",
                    size,
                    lambda v, f=graph_fn: f(v).numpy(),
                    x,
                    keras_file.stat().st_size,
                )
            if "savedmodel" in _BACKENDS.value:
                record(
                    "savedmodel",
                    size,
                    uexport.saved_model_runner(saved),
                    x,
                    dir_size(saved),
                )
            calibration = None
            for backend, mode in TFLITE_MODES.items():
                if backend not in _BACKENDS.value:
                    continue
                if mode == "int8" and calibration is None:
                    # The bundled photos but the benchmarked astronaut
                    # (scikit-image's motorcycle is not bundled).
                    calibration = uexport.sample_photos(
                        (size, size), ("coffee", "chelsea", "rocket")
                    )
                content = uexport.convert_to_tflite(
                    saved, mode, uexport.FIXED_SIGNATURE, calibration
                )
                runner = uexport.TFLiteRunner(content, _THREADS.value)
                record(backend, size, runner, x, len(content))
                del runner
            if "onnx" in _BACKENDS.value:
                if onnx_runner is None:
                    content = uexport.convert_to_onnx(saved)
                    onnx_runner = uexport.OnnxRunner(content, _THREADS.value)
                    sizes_bytes["onnx"] = len(content)
                record("onnx", size, onnx_runner, x, None)

    sizes = [int(s) for s in _SIZES.value]
    print()
    print(
        "| backend | model size (MB) | "
        + " | ".join(f"{s}² (ms)" for s in sizes)
        + " |"
    )
    print("|---|---|" + "---|" * len(sizes))
    for backend in [b for b in BACKENDS if b in _BACKENDS.value]:
        cells = []
        for s in sizes:
            hit = [
                r for r in rows if r["backend"] == backend and r["size"] == s
            ]
            cells.append(f"{hit[0]['median_ms']:.0f}" if hit else "n/a")
        mb = sizes_bytes.get(backend)
        print(
            f"| {backend} | {mb / 1e6:.2f} | "
            if mb
            else f"| {backend} | n/a | ",
            end="",
        )
        print(" | ".join(cells) + " |")
    out = pathlib.Path(_OUT.value)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                "machine": {
                    "cpu_count": os.cpu_count(),
                    "platform": platform.platform(),
                    "tensorflow": tf.__version__,
                    "keras": keras.__version__,
                    "load_average": list(os.getloadavg()),
                },
                "model": source,
                "batch": 1,
                "threads": _THREADS.value,
                "warmup": _WARMUP.value,
                "repeats": _REPEATS.value,
                "model_bytes": sizes_bytes,
                "rows": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nwrote {out}")


if __name__ == "__main__":
    app.run(main)
