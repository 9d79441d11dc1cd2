"""TFLite: conversion (float32, fp16, dynamic-range, int8) and a runner."""

import pathlib

import numpy as np
import tensorflow as tf

from uegan_tf.export.options import QUANT_LABELS
from uegan_tf.export.options import QUANTIZATIONS
from uegan_tf.export.options import ExportError
from uegan_tf.export.options import first_error_line
from uegan_tf.export.signatures import FIXED_SIGNATURE
from uegan_tf.export.signatures import FLOAT_INPUT
from uegan_tf.export.signatures import FLOAT_SIGNATURE
from uegan_tf.fileutil import atomic_path
from uegan_tf.image_ops import to_unit_range_np


def representative_dataset(images, signature_input=FLOAT_INPUT):
    """A converter `representative_dataset` over uint8 `[H, W, 3]` images.

    Each image is one calibration step (batch 1, float in [-1, 1]).
    """

    def gen():
        for image in images:
            yield {signature_input: to_unit_range_np([image])}

    return gen


def convert_to_tflite(
    saved_model_dir,
    quantize="none",
    signature=FLOAT_SIGNATURE,
    representative_images=None,
):
    """Convert one SavedModel signature to a TFLite flatbuffer.

    Modes: "none" (float32), "fp16" (float16 weights, float compute),
    "dynamic" (int8 weights, dynamic-range activations), "int8" (full
    integer: int8 weights and activations calibrated on
    `representative_images`, float32 input and output so that callers feed
    the same [-1, 1] floats; the layer norms stay float islands, as the
    converter leaves them).

    Args:
        saved_model_dir: a SavedModel from `write_saved_model`.
        quantize: one of `QUANTIZATIONS`.
        signature: `serve_float` (dynamic size) or `serve_tflite` (fixed).
        representative_images: uint8 `[H, W, 3]` images, required for int8;
            their size must fit the signature.

    Returns:
        The `.tflite` bytes.

    Raises:
        ValueError: unknown mode, or int8 without images.
        ExportError: the converter failed (first error line).
    """
    if quantize not in QUANTIZATIONS:
        raise ValueError(f"quantize must be in {QUANTIZATIONS}: {quantize!r}")
    converter = tf.lite.TFLiteConverter.from_saved_model(
        str(saved_model_dir), signature_keys=[signature]
    )
    # Only builtin ops: a model needing the Flex delegate would not run on
    # a plain LiteRT runtime.
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if quantize != "none":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if quantize == "fp16":
        converter.target_spec.supported_types = [tf.float16]
    elif quantize == "int8":
        if not representative_images:
            raise ValueError("int8 needs representative images")
        converter.representative_dataset = representative_dataset(
            representative_images
        )
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.TFLITE_BUILTINS_INT8
        ]
    try:
        return converter.convert()
    except Exception as e:  # ConverterError and friends: long MLIR dumps
        raise ExportError(
            f"TFLite conversion ({quantize}, {signature}) failed: "
            f"{first_error_line(e)}"
        ) from e


def tflite_interpreter(model_content, num_threads=2):
    """A LiteRT interpreter (XNNPACK by default) for a flatbuffer.

    Uses `ai_edge_litert` (the runtime TFLite models ship with), falling
    back to the deprecated `tf.lite.Interpreter` when it is not installed.
    """
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        Interpreter = tf.lite.Interpreter
    return Interpreter(model_content=model_content, num_threads=num_threads)


class TFLiteRunner:
    """Run a single-input, single-output float TFLite model.

    A dynamic-size model is resized to each new input shape before
    `allocate_tensors` (its default 1x1 shape cannot even be allocated: the
    reflect padding needs a larger input).

    Args:
        model_content: `.tflite` bytes.
        num_threads: interpreter threads.
    """

    def __init__(self, model_content, num_threads=2):
        self.interpreter = tflite_interpreter(model_content, num_threads)
        self.input = self.interpreter.get_input_details()[0]
        self.output = self.interpreter.get_output_details()[0]
        self.shape_signature = [
            int(d)
            for d in self.input.get("shape_signature", self.input["shape"])
        ]
        self.dynamic = any(d < 0 for d in self.shape_signature)
        self._shape = None
        if not self.dynamic:
            self.interpreter.allocate_tensors()
            self._shape = tuple(self.shape_signature)

    def __call__(self, x):
        """`x` float32 `[1, H, W, 3]` -> float32 `[1, H, W, 3]`."""
        x = np.asarray(x, dtype=np.float32)
        if x.shape != self._shape:
            if not self.dynamic:
                raise ValueError(
                    f"this TFLite model takes {self._shape}, got {x.shape}"
                )
            self.interpreter.resize_tensor_input(
                self.input["index"], list(x.shape)
            )
            self.interpreter.allocate_tensors()
            self._shape = x.shape
        self.interpreter.set_tensor(self.input["index"], x)
        self.interpreter.invoke()
        return self.interpreter.get_tensor(self.output["index"])


def write_models(saved, out_dir, stem, options, calibration, log=print):
    """One `.tflite` per quantization mode of `options` (none without
    modes); the format's row in `formats.FORMATS`.

    With a dynamic `options.size`, each mode is first converted from
    `serve_float`; if the converter cannot handle the dynamic graph, it is
    converted from the fixed-size `serve_tflite` signature instead and the
    report entry records why ("fallback").

    Yields:
        `(entry, content)`: the report entry (format, quantize, path,
        size_bytes[, fallback]) and the `.tflite` bytes, once written.
    """
    fixed = options.tflite_fixed_size
    dynamic_ok = options.size is None
    for mode in options.quantize:
        content, entry = None, {"format": "tflite", "quantize": mode}
        if dynamic_ok:
            try:
                content = convert_to_tflite(
                    saved, mode, FLOAT_SIGNATURE, calibration
                )
            except ExportError as e:
                # The failure is structural (same graph for every mode):
                # convert the rest at the fixed size straight away.
                dynamic_ok = False
                entry["fallback"] = str(e)
                log(
                    f"dynamic size not convertible, using fixed "
                    f"{fixed[0]}x{fixed[1]}: {e}"
                )
        if content is None:
            content = convert_to_tflite(
                saved, mode, FIXED_SIGNATURE, calibration
            )
        path = pathlib.Path(out_dir) / f"{stem}_{QUANT_LABELS[mode]}.tflite"
        with atomic_path(path) as tmp:
            pathlib.Path(tmp).write_bytes(content)
        entry.update(path=str(path), size_bytes=len(content))
        yield entry, content


def needs_calibration(options):
    """Whether `options` asks for int8 (calibration photos needed)."""
    return "int8" in options.quantize
