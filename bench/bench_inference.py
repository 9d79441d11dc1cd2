"""Benchmark inference latency per runtime on this machine (run by hand).

    python bench/bench_inference.py [--checkpoint=SOURCE] \
        [--sizes=256,512,1024] [--repeats=10] [--warmup=2] [--threads=2] \
        [--backends=keras,keras_graph,savedmodel,tflite_fp32,tflite_fp16,\
tflite_int8,onnx] [--psnr_photos=DIR] [--out=bench/results/inference.json]

Batch 1, float32 input in [-1, 1], latency of one call. Per size, every
backend is loaded first and then timed **interleaved**: `--repeats` rounds
of one call per backend (after `--warmup` calls each), median per backend.
The machine's load drifts (a training job shares the 2 cores), so only
ratios within one size's rounds are comparable; the table gives each
backend's median and its ratio to the SavedModel's. Backends:

- keras: eager `generator(x)`; keras_graph: the same in a `tf.function`;
- savedmodel: the exported `serve_float` signature (TF2 loader);
- tflite_fp32 / tflite_fp16 / tflite_int8: LiteRT (`ai-edge-litert`)
  with `--threads` threads and its default XNNPACK delegate; converted per
  size from the fixed-size signature (int8 calibrated on 3 bundled photos
  at that size); the JSON records XNNPACK's partitions
  (`export.xnnpack_delegation`) and each model's PSNR against Keras on the
  bundled photos and, if given, `--psnr_photos` (fitted to the size);
- onnx: tf2onnx model (dynamic size) on ONNX Runtime's CPU provider with
  `--threads` intra-op threads.

Without --checkpoint a seeded random UE generator is used: the cost is the
same as with trained weights. Prints a Markdown table and writes JSON
(`docs/environment.md#tflite-and-litert`).
"""

import json
import pathlib
import statistics
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

import benchlib  # noqa: E402
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
_PSNR_PHOTOS = flags.DEFINE_string(
    "psnr_photos",
    None,
    "Extra photo folder for the TFLite PSNRs (e.g. ../shared/data/"
    "val_photo); the 4 bundled photos are always used.",
)
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

    rows, sizes_bytes, tflite_info = [], {}, {}

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
            photos = uexport.sample_photos((size, size))
            if _PSNR_PHOTOS.value:
                photos += uexport.load_photos(
                    _PSNR_PHOTOS.value, (size, size), 20
                )
            runs = {}  # backend -> (run, model bytes)
            if "keras" in _BACKENDS.value:
                runs["keras"] = (
                    lambda v: generator(v, training=False).numpy(),
                    keras_file.stat().st_size,
                )
            if "keras_graph" in _BACKENDS.value:
                graph_fn = tf.function(lambda v: generator(v, training=False))
                runs["keras_graph"] = (
                    lambda v, f=graph_fn: f(v).numpy(),
                    keras_file.stat().st_size,
                )
            if "savedmodel" in _BACKENDS.value:
                runs["savedmodel"] = (
                    uexport.saved_model_runner(saved),
                    dir_size(saved),
                )
            calibration, references = None, None
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
                if references is None:
                    references = uexport.keras_outputs(generator, photos)
                delegation = uexport.xnnpack_delegation(content)
                check = uexport.compare(runner, photos, references)
                tflite_info[f"{backend}@{size}"] = {
                    "psnr_db": round(check["psnr_db"], 2),
                    "psnr_images": check["images"],
                    "nodes": delegation["nodes"],
                    "xnnpack_partitions": delegation["partitions"],
                    "undelegated": dict(delegation["undelegated"]),
                }
                runs[backend] = (runner, len(content))
            if "onnx" in _BACKENDS.value:
                if onnx_runner is None:
                    content = uexport.convert_to_onnx(saved)
                    onnx_runner = uexport.OnnxRunner(content, _THREADS.value)
                    sizes_bytes["onnx"] = len(content)
                runs["onnx"] = (onnx_runner, None)
            times = {backend: [] for backend in runs}
            for run, _ in runs.values():
                for _ in range(_WARMUP.value):
                    run(x)
            for _ in range(_REPEATS.value):  # interleaved rounds
                for backend, (run, _) in runs.items():
                    start = time.perf_counter()
                    run(x)
                    times[backend].append(time.perf_counter() - start)
            base = times.get("savedmodel")
            for backend, (_, model_bytes) in runs.items():
                med = statistics.median(times[backend])
                ratio = med / statistics.median(base) if base else None
                rows.append(
                    {
                        "backend": backend,
                        "size": size,
                        "median_ms": round(med * 1e3, 1),
                        "vs_savedmodel": round(ratio, 3) if ratio else None,
                        "times_ms": [round(t * 1e3, 1) for t in times[backend]],
                    }
                )
                if model_bytes is not None:
                    sizes_bytes[backend] = model_bytes
                info = tflite_info.get(f"{backend}@{size}")
                print(
                    f"{backend:12s} {size:5d}px  {med * 1e3:9.1f} ms"
                    + (f"  {ratio:.3f}x SavedModel" if ratio else "")
                    + (
                        f"  PSNR {info['psnr_db']:.2f} dB, "
                        f"{info['xnnpack_partitions']} XNNPACK partition(s)"
                        if info
                        else ""
                    ),
                    flush=True,
                )
            del runs

    sizes = [int(s) for s in _SIZES.value]
    table = []
    for backend in [b for b in BACKENDS if b in _BACKENDS.value]:
        cells, psnrs = [], []
        for s in sizes:
            hit = [
                r for r in rows if r["backend"] == backend and r["size"] == s
            ]
            ratio = hit[0]["vs_savedmodel"] if hit else None
            cells.append(
                f"{hit[0]['median_ms']:.0f}"
                + (f" ({ratio:.2f}x)" if ratio else "")
                if hit
                else "n/a"
            )
            info = tflite_info.get(f"{backend}@{s}")
            psnrs.append(f"{info['psnr_db']:.1f}" if info else "")
        mb = sizes_bytes.get(backend)
        table.append(
            [backend, f"{mb / 1e6:.2f}" if mb else "n/a", *cells, *psnrs]
        )
    header = [
        "backend",
        "model size (MB)",
        *(f"{s}² ms (vs SavedModel)" for s in sizes),
        *(f"{s}² PSNR (dB)" for s in sizes),
    ]
    print()
    print(benchlib.markdown_table(header, table))
    out = pathlib.Path(_OUT.value)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps(
            {
                # CPU model, date and load: ratios between runs on other
                # machines or loads are not comparable.
                "machine": {**benchlib.machine(), "keras": keras.__version__},
                "model": source,
                "batch": 1,
                "threads": _THREADS.value,
                "warmup": _WARMUP.value,
                "repeats": _REPEATS.value,
                "model_bytes": sizes_bytes,
                "interleaved": True,
                "psnr_photos": _PSNR_PHOTOS.value,
                "tflite": tflite_info,
                "rows": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"\nwrote {out}")


if __name__ == "__main__":
    app.run(main)
