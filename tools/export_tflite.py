"""Export a generator: versioned SavedModel, then TFLite and/or ONNX from it.

    python tools/export_tflite.py --checkpoint=WORKDIR_OR_WEIGHTS \
        --out_dir=exports [--name=uegan] [--version=N] \
        [--quantize=none,fp16,dynamic,int8] [--format=tflite,onnx] \
        [--size=dynamic|HxW] [--fixed_size=256x256] \
        [--representative_dir=PHOTOS] [--val_dir=PHOTOS] \
        [--precision=fp32|bf16]

--checkpoint takes anything `uegan_tf.inference.stylizer.load_generator`
takes: a .keras generator, a training work dir (--step picks a
checkpoint), a style name or an official AnimeGANv2 TF1 checkpoint folder.

Writes, each file atomically:

- `OUT/<name>/<version>/`: the SavedModel (signatures `serving_default`
  uint8 images, `serve_bytes` JPEG/PNG -> PNG, `serve_float` and
  `serve_tflite` float32), with TF Serving warmup requests in
  `assets.extra/`. `OUT/<name>` is the TF Serving base path;
- `OUT/<name>_v<version>_{float32,fp16,dynamic,int8}.tflite`;
- `OUT/<name>_v<version>.onnx` with `--format=onnx` (or `tflite,onnx`;
  `--format=savedmodel` writes the SavedModel only);
- `OUT/<name>_v<version>_report.json`: sizes and PSNR of every model
  against the Keras generator on the validation photos (also printed).

TFLite models take float32 `[1, H, W, 3]` in [-1, 1] and return the same
(int8 is full-integer inside with float input/output). `--size=dynamic`
(default) makes H and W dynamic when the converter can handle the graph,
and falls back to `--fixed_size` otherwise (the report says why). Int8 is
calibrated on `--representative_dir` photos fitted to the fixed size
(the bundled example photos, whole and in quadrants, when not given).
`--precision=bf16` writes a SavedModel of the bfloat16 generator
(`inference.with_precision`: bfloat16 convolutions, float32 layer-norm
statistics, output conv and tanh; same weights) and nothing else: TFLite
and ONNX have no use for a bfloat16 graph (they quantize on their own),
so it needs `--format=savedmodel`. On a CPU without native bfloat16 it
says so and exports fp32. See `export/README.md`.
"""

import sys

import _bootstrap  # noqa: F401
from absl import app
from absl import flags

from uegan_tf.precision import INFERENCE_PRECISIONS
from uegan_tf.quiet import define_verbose_flag
from uegan_tf.quiet import quiet_tensorflow

define_verbose_flag()

_CHECKPOINT = flags.DEFINE_string(
    "checkpoint",
    None,
    "Generator source: .keras file, training work dir, "
    "style name or official TF1 checkpoint folder.",
    required=True,
)
_STEP = flags.DEFINE_integer(
    "step", None, "With a work dir: the checkpoint step (default: latest)."
)
_OUT_DIR = flags.DEFINE_string(
    "out_dir", None, "Export base folder.", required=True
)
_NAME = flags.DEFINE_string(
    "name",
    "uegan",
    "Model name: OUT/<name>/<version>/ (the TF Serving model name).",
)
_VERSION = flags.DEFINE_integer(
    "version",
    None,
    "Integer version (default: one more than the largest "
    "existing version, or 1).",
)
_QUANTIZE = flags.DEFINE_list(
    "quantize",
    ["none"],
    "TFLite modes, comma-separated: none (float32), "
    "fp16 (float16 weights), dynamic (int8 weights), int8 (full integer, "
    "calibrated), or all.",
)
_FORMAT = flags.DEFINE_list(
    "format",
    ["tflite"],
    "What to convert the SavedModel to: tflite, onnx "
    "(comma-separated), or savedmodel for the SavedModel only.",
)
_SIZE = flags.DEFINE_string(
    "size",
    "dynamic",
    "TFLite input size: HxW, or dynamic (any size, with "
    "a fallback to --fixed_size where the converter cannot).",
)
_FIXED_SIZE = flags.DEFINE_string(
    "fixed_size",
    "256x256",
    "With --size=dynamic: the size of the "
    "fixed-size signature (fallback), of the int8 calibration crops and "
    "of the check images.",
)
_REPRESENTATIVE_DIR = flags.DEFINE_string(
    "representative_dir",
    None,
    "Photos for int8 calibration (default: the bundled example photos).",
)
_VAL_DIR = flags.DEFINE_string(
    "val_dir",
    None,
    "Photos for the PSNR checks (default: "
    "--representative_dir, else the bundled example photos).",
)
_CALIBRATION_STEPS = flags.DEFINE_integer(
    "calibration_steps", 100, "At most this many calibration photos."
)
_NUM_EVAL_IMAGES = flags.DEFINE_integer(
    "num_eval_images", 8, "At most this many check photos (0: no checks)."
)
_PRECISION = flags.DEFINE_enum(
    "precision",
    "fp32",
    list(INFERENCE_PRECISIONS),
    "Precision of the exported SavedModel's generator (bf16: SavedModel "
    "only, --format=savedmodel).",
)
_WARMUP = flags.DEFINE_bool(
    "warmup",
    True,
    "Write TF Serving warmup requests into <version>/assets.extra/.",
)


def _options():
    from uegan_tf import export as uexport

    quantize = [q.strip().lower() for q in _QUANTIZE.value if q.strip()]
    if quantize == ["all"]:
        quantize = list(uexport.QUANTIZATIONS)
    formats = [f.strip().lower() for f in _FORMAT.value if f.strip()]
    if formats == ["savedmodel"]:
        formats = []
    return uexport.ExportOptions(
        out_dir=_OUT_DIR.value,
        name=_NAME.value,
        version=_VERSION.value,
        formats=tuple(formats),
        quantize=tuple(quantize),
        size=uexport.parse_hw(_SIZE.value),
        fixed_size=uexport.parse_hw(_FIXED_SIZE.value)
        or uexport.DEFAULT_FIXED_SIZE,
        representative_dir=_REPRESENTATIVE_DIR.value,
        val_dir=_VAL_DIR.value,
        calibration_steps=_CALIBRATION_STEPS.value,
        num_eval_images=_NUM_EVAL_IMAGES.value,
        warmup=_WARMUP.value,
    ).validate()


def main(argv):
    quiet_tensorflow(flags.FLAGS.verbose)
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {argv[1:]}")
    # Imported here so that --help does not pay for TensorFlow.
    from uegan_tf import export as uexport
    from uegan_tf.inference.stylizer import ModelLoadError
    from uegan_tf.inference.stylizer import load_generator

    try:
        options = _options()
        if _PRECISION.value == "bf16" and options.formats:
            raise ValueError(
                "--precision=bf16 exports the SavedModel only; add "
                "--format=savedmodel (TFLite and ONNX quantize on their own: "
                "--quantize=fp16,int8)"
            )
        generator, info = load_generator(
            _CHECKPOINT.value, step=_STEP.value, precision=_PRECISION.value
        )
        print(
            f"loaded {info['kind']} {info['path']} ({info['precision']})",
            flush=True,
        )
        report = uexport.export_generator(
            generator, options, log=lambda msg: print(msg, flush=True)
        )
    except (
        ModelLoadError,
        uexport.ExportError,
        ValueError,
        FileExistsError,
    ) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print()
    print(uexport.report_table(report))
    print(f"\nPSNR: {report['psnr']}; report: {report['report_path']}")
    return 0


if __name__ == "__main__":
    app.run(lambda argv: sys.exit(main(argv)))
