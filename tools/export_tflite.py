"""Export a generator: versioned SavedModel, then TFLite and/or ONNX from it.

    python tools/export_tflite.py --checkpoint=WORKDIR_OR_WEIGHTS \
        --out_dir=exports [--name=uegan] [--version=N] \
        [--quantize=none,fp16,dynamic,int8] [--format=tflite,onnx] \
        [--size=dynamic|HxW] [--fixed_size=256x256] \
        [--representative_dir=PHOTOS] [--val_dir=PHOTOS] \
        [--precision=fp32|bf16] [--step=N] [--nowarmup]

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

The flags are generated from `uegan_tf.config.ExportConfig` (the tool's
settings) and `ExportOptions` (what the export writes): one definition per
setting. `--help` lists them without starting TensorFlow.
"""

import sys

import _bootstrap  # noqa: F401

from uegan_tf import flags as uflags
from uegan_tf.config import ExportConfig

USAGE = """\
  python tools/export_tflite.py --checkpoint=WORKDIR_OR_WEIGHTS \\
      --out_dir=exports [--quantize=none,fp16,dynamic,int8|all] \\
      [--format=tflite,onnx|savedmodel] [--size=dynamic|HxW] \\
      [--precision=fp32|bf16]

Export a generator: a versioned SavedModel, then TFLite and/or ONNX from
it, with a report of each model's size and PSNR against Keras."""


def export(cfg):
    """Load the generator of `cfg`, export it, print the report.

    Returns:
        The exit code: 0 done, 2 an unloadable model, an existing version
        or a failed conversion (one `error:` line on stderr).
    """
    from uegan_tf import export as uexport
    from uegan_tf.inference.stylizer import ModelLoadError
    from uegan_tf.inference.stylizer import load_generator

    try:
        generator, info = load_generator(
            cfg.checkpoint, step=cfg.step, precision=cfg.precision
        )
        print(
            f"loaded {info['kind']} {info['path']} ({info['precision']})",
            flush=True,
        )
        report = uexport.export_generator(
            generator, cfg.options, log=lambda msg: print(msg, flush=True)
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


def cli(argv=None, flag_values=None):
    """`python tools/export_tflite.py`: flags from `ExportConfig`.

    Args:
        argv: the command line, program name first (default: sys.argv).
        flag_values: the flag registry (default: a fresh one).

    Returns:
        The exit code: 0 done, 2 bad flags or a failed export.
    """
    return uflags.run_config_command(
        ExportConfig, USAGE, export, argv, flag_values
    )


if __name__ == "__main__":
    sys.exit(cli())
