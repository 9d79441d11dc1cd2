"""ONNX: conversion with tf2onnx and an ONNX Runtime runner."""

import os
import pathlib

import numpy as np
import tensorflow as tf

from uegan_tf.export.options import ExportError
from uegan_tf.export.options import first_error_line as _first_error_line
from uegan_tf.export.signatures import FLOAT_INPUT
from uegan_tf.export.signatures import FLOAT_SIGNATURE
from uegan_tf.fileutil import atomic_path

ONNX_OPSET = 17


def convert_to_onnx(
    saved_model_dir, signature=FLOAT_SIGNATURE, opset=ONNX_OPSET
):
    """Convert a SavedModel signature to ONNX with tf2onnx.

    The input keeps the signature's name ("image", float32 `[1, H, W, 3]`
    NHWC in [-1, 1], H and W dynamic) and so does the output ("stylized").

    Returns:
        The serialized ONNX model (bytes).

    Raises:
        ExportError: tf2onnx is missing or failed.
    """
    try:
        import tf2onnx
    except ImportError:
        raise ExportError(
            "ONNX export needs tf2onnx (pip install tf2onnx)"
        ) from None
    loaded = tf.saved_model.load(str(saved_model_dir))
    fn = loaded.signatures[signature]
    spec = fn.structured_input_signature[1][FLOAT_INPUT]
    spec = tf.TensorSpec(spec.shape, spec.dtype, name=FLOAT_INPUT)

    # tf2onnx traces a tf.function; a restored signature is a concrete
    # function, so wrap it.
    @tf.function(input_signature=[spec], autograph=False)
    def wrapped(image):
        return fn(**{FLOAT_INPUT: image})

    try:
        model, _ = tf2onnx.convert.from_function(
            wrapped, input_signature=[spec], opset=opset
        )
    except Exception as e:
        raise ExportError(
            f"ONNX conversion failed: {_first_error_line(e)}"
        ) from e
    return model.SerializeToString()


class OnnxRunner:
    """Run the ONNX model with ONNX Runtime on the CPU.

    Args:
        model: ONNX bytes or a file path.
        num_threads: intra-op threads.
    """

    def __init__(self, model, num_threads=2):
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.intra_op_num_threads = num_threads
        options.inter_op_num_threads = 1
        if isinstance(model, (str, os.PathLike)):
            model = str(model)
        self.session = ort.InferenceSession(
            model, sess_options=options, providers=["CPUExecutionProvider"]
        )
        self.input_name = self.session.get_inputs()[0].name

    def __call__(self, x):
        """`x` float32 `[1, H, W, 3]` -> float32 `[1, H, W, 3]`."""
        return self.session.run(
            None, {self.input_name: np.asarray(x, dtype=np.float32)}
        )[0]


def write_models(saved, out_dir, stem, options, calibration, log=print):
    """`<stem>.onnx` (float32, dynamic H and W); the format's row.

    Yields:
        `(entry, content)`: the report entry and the ONNX bytes, once
        written.
    """
    del options, calibration, log  # one model, no calibration
    content = convert_to_onnx(saved)
    path = pathlib.Path(out_dir) / f"{stem}.onnx"
    with atomic_path(path) as tmp:
        pathlib.Path(tmp).write_bytes(content)
    yield (
        {
            "format": "onnx",
            "quantize": "none",
            "path": str(path),
            "size_bytes": len(content),
            "input_shape": [1, -1, -1, 3],
            "opset": ONNX_OPSET,
        },
        content,
    )


def needs_calibration(options):
    """ONNX models are float: no calibration photos."""
    del options
    return False
