"""The export formats: one row per format, one module per converter.

`FORMATS[name]` is a `Format(write_models, runner, needs_calibration,
requires)` read from the module `uegan_tf/export/<name>.py`, for each
name of `config.EXPORT_FORMATS` (in that order, the order of the report):

- `write_models(saved_model_dir, out_dir, stem, options, calibration,
  log)` converts the SavedModel and writes the format's files, yielding
  `(report entry, model bytes)` per file;
- `Runner(model_bytes, num_threads)` runs one such model on float32
  `[1, H, W, 3]` in [-1, 1] (the checks compare it with Keras);
- `needs_calibration(options)`: whether it needs calibration photos;
- `REQUIRES`: the Python packages it needs beyond TensorFlow (the
  exporter refuses a format whose packages are missing before it writes
  anything).

A new format is one new module with these four and its name in
`config.EXPORT_FORMATS`; the orchestration (`exporter.export_generator`)
reads this table.
"""

import collections
import importlib

from uegan_tf.config import EXPORT_FORMATS

Format = collections.namedtuple(
    "Format", ["write_models", "runner", "needs_calibration", "requires"]
)


def _row(name):
    module = importlib.import_module(f"uegan_tf.export.{name}")
    return Format(
        module.write_models,
        module.Runner,
        module.needs_calibration,
        module.REQUIRES,
    )


FORMATS = {name: _row(name) for name in EXPORT_FORMATS}
