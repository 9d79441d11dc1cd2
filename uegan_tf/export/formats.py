"""The export formats: one row per format, one module per converter.

`FORMATS[name]` is a `Format(write_models, runner, needs_calibration)`:

- `write_models(saved_model_dir, out_dir, stem, options, calibration,
  log)` converts the SavedModel and writes the format's files, yielding
  `(report entry, model bytes)` per file;
- `runner(model_bytes, num_threads)` runs one such model on float32
  `[1, H, W, 3]` in [-1, 1] (the checks compare it with Keras);
- `needs_calibration(options)`: whether it needs calibration photos.

A new format is one new module with these three and one row here; the
orchestration (`exporter.export_generator`) and `ExportOptions.validate`
read this table. The order is the order of the report.
"""

import collections

from uegan_tf.export import onnx
from uegan_tf.export import tflite

Format = collections.namedtuple(
    "Format", ["write_models", "runner", "needs_calibration"]
)

FORMATS = {
    "tflite": Format(
        tflite.write_models, tflite.TFLiteRunner, tflite.needs_calibration
    ),
    "onnx": Format(onnx.write_models, onnx.OnnxRunner, onnx.needs_calibration),
}
