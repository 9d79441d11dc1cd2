"""Export a generator for serving: SavedModel, TFLite, ONNX, and checks.

The one library behind `tools/export_tflite.py` and `bench/`. Everything is
converted from one SavedModel; each format is a converter module behind
one table (`formats.FORMATS`):

- `options.py`: `ExportError`; `ExportOptions` and `parse_hw` ("HxW"),
  defined with the other settings in `uegan_tf/config.py`;
- `signatures.py`: the served signature, input and output names;
- `savedmodel.py`: the `ExportArchive`, versions, signatures;
- `serving.py`: TF Serving warm-up requests, `SessionModel`;
- `photos.py`: calibration and check photos (a folder or the bundled ones);
- `tflite.py`, `onnx.py`: one converter and runner per format;
- `formats.py`: the table `{format: (write_models, runner, ...)}`;
- `checks.py`: PSNR, comparison with Keras, timing;
- `exporter.py`: `export_generator`, the whole export, and its report.

The names below are re-exported: `from uegan_tf import export as uexport`.
"""

from uegan_tf.export.checks import compare
from uegan_tf.export.checks import keras_outputs
from uegan_tf.export.checks import psnr
from uegan_tf.export.checks import time_runs
from uegan_tf.export.exporter import export_generator
from uegan_tf.export.exporter import report_table
from uegan_tf.export.formats import FORMATS
from uegan_tf.export.onnx import ONNX_OPSET
from uegan_tf.export.onnx import OnnxRunner
from uegan_tf.export.onnx import convert_to_onnx
from uegan_tf.export.onnx import fuse_layer_norms
from uegan_tf.export.onnx import fuse_reflect_pads
from uegan_tf.export.onnx import split_reductions
from uegan_tf.export.options import DEFAULT_FIXED_SIZE
from uegan_tf.export.options import QUANTIZATIONS
from uegan_tf.export.options import ExportError
from uegan_tf.export.options import ExportOptions
from uegan_tf.export.options import parse_hw
from uegan_tf.export.photos import SAMPLE_PHOTOS
from uegan_tf.export.photos import load_photos
from uegan_tf.export.photos import sample_photos
from uegan_tf.export.savedmodel import existing_versions
from uegan_tf.export.savedmodel import next_version
from uegan_tf.export.savedmodel import saved_model_runner
from uegan_tf.export.savedmodel import signature_names
from uegan_tf.export.savedmodel import stylize_float
from uegan_tf.export.savedmodel import write_saved_model
from uegan_tf.export.serving import WARMUP_FILE
from uegan_tf.export.serving import SessionModel
from uegan_tf.export.serving import read_warmup_requests
from uegan_tf.export.serving import warmup_requests
from uegan_tf.export.serving import write_warmup_requests
from uegan_tf.export.signatures import FIXED_SIGNATURE
from uegan_tf.export.signatures import FLOAT_SIGNATURE
from uegan_tf.export.tflite import TFLiteRunner
from uegan_tf.export.tflite import convert_to_tflite
from uegan_tf.export.tflite import tflite_interpreter
from uegan_tf.export.tflite import xnnpack_delegation

__all__ = [
    "DEFAULT_FIXED_SIZE",
    "FIXED_SIGNATURE",
    "FLOAT_SIGNATURE",
    "FORMATS",
    "ONNX_OPSET",
    "QUANTIZATIONS",
    "SAMPLE_PHOTOS",
    "WARMUP_FILE",
    "ExportError",
    "ExportOptions",
    "OnnxRunner",
    "SessionModel",
    "TFLiteRunner",
    "compare",
    "convert_to_onnx",
    "fuse_layer_norms",
    "fuse_reflect_pads",
    "split_reductions",
    "convert_to_tflite",
    "existing_versions",
    "export_generator",
    "keras_outputs",
    "load_photos",
    "next_version",
    "parse_hw",
    "psnr",
    "read_warmup_requests",
    "report_table",
    "sample_photos",
    "saved_model_runner",
    "signature_names",
    "stylize_float",
    "tflite_interpreter",
    "time_runs",
    "warmup_requests",
    "write_saved_model",
    "write_warmup_requests",
    "xnnpack_delegation",
]
