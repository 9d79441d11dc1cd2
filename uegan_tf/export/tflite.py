"""TFLite: conversion (float32, fp16, dynamic-range, int8) and a runner."""

import collections
import pathlib
import re

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

# What the int8 model keeps in float (`docs/environment.md#tflite-and-
# litert`). The ops of every layer norm and its LeakyReLU, and the IRB
# residual ADDs: as int8 the norm requantized each full map ~5 times
# (x - mean, x * inv, + shift, LeakyReLU, concat scale) and quantized its
# statistics to 8 bits (the 1/std factor to ~1 % steps); in float each
# conv's int8 output is dequantized once and the block's output quantized
# once. Every one of these ops is an XNNPACK float op, so the model stays
# one delegate partition. (CONV_2D, DEPTHWISE_CONV_2D, the pads' slices
# and concats, RESIZE_BILINEAR and TANH stay int8.)
INT8_FLOAT_OPS = (
    "MEAN",
    "SQUARED_DIFFERENCE",
    "NEG",
    "RSQRT",
    "MUL",
    "ADD",
    "SUB",
    "LEAKY_RELU",
)
# ... and the whole H/4 bottleneck (C_0, the 4 inverted residual blocks,
# C_1: ~20 % of the FLOPs), matched on the TFLite tensor names' scopes
# (Keras layer names + "_1"). With int8 convs there, int8 measured 28.8 to
# 34.9 dB against Keras over seeds 0-5; in float, 31.2 to 38.0 dB.
INT8_FLOAT_SCOPE = re.compile(r"^C_(0|1|r\d+)(_\d+)?$")


def representative_dataset(images, signature_input=FLOAT_INPUT):
    """A converter `representative_dataset` over uint8 `[H, W, 3]` images.

    Each image is one calibration step (batch 1, float in [-1, 1]).
    """

    def gen():
        for image in images:
            yield {signature_input: to_unit_range_np([image])}

    return gen


def _converter(saved_model_dir, signature):
    converter = tf.lite.TFLiteConverter.from_saved_model(
        str(saved_model_dir), signature_keys=[signature]
    )
    # Only builtin ops: a model needing the Flex delegate would not run on
    # a plain LiteRT runtime.
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    return converter


def int8_float_nodes(float_content):
    """Tensor names of a float model that the int8 model keeps in float.

    The outputs of every op under an `INT8_FLOAT_SCOPE` scope (the H/4
    bottleneck), e.g. `ue_generator_1/C_r2_1/expand_1/conv_1/convolution1`.
    """
    interpreter = tflite_interpreter(float_content)
    names = {t["index"]: t["name"] for t in interpreter.get_tensor_details()}
    nodes = []
    for op in interpreter._get_ops_details():
        for index in op["outputs"]:
            name = names[index]
            if any(INT8_FLOAT_SCOPE.match(p) for p in name.split("/")):
                nodes.append(name)
    return nodes


def _convert_int8(saved_model_dir, signature, representative_images):
    """int8 convs and pads, float norms and bottleneck (`INT8_FLOAT_*`).

    Selective quantization: calibrate, then quantize with a deny list
    (the documented way is `tf.lite.experimental.QuantizationDebugger`'s
    `get_nondebug_quantized_model`). Input and output stay float32.
    """
    nodes = int8_float_nodes(_converter(saved_model_dir, signature).convert())
    converter = _converter(saved_model_dir, signature)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset(
        representative_images
    )
    converter.target_spec.supported_ops = [
        tf.lite.OpsSet.TFLITE_BUILTINS_INT8,
        tf.lite.OpsSet.TFLITE_BUILTINS,
    ]
    debugger = tf.lite.experimental.QuantizationDebugger(
        converter=converter,
        debug_dataset=representative_dataset(representative_images[:1]),
        debug_options=tf.lite.experimental.QuantizationDebugOptions(
            denylisted_ops=list(INT8_FLOAT_OPS),
            denylisted_nodes=nodes,
            fully_quantize=False,
        ),
    )
    return debugger.get_nondebug_quantized_model()


def convert_to_tflite(
    saved_model_dir,
    quantize="none",
    signature=FLOAT_SIGNATURE,
    representative_images=None,
):
    """Convert one SavedModel signature to a TFLite flatbuffer.

    Modes: "none" (float32), "fp16" (float16 weights, float compute),
    "dynamic" (int8 weights, dynamic-range activations), "int8" (int8
    weights and activations for the convolutions, pads and resizes,
    calibrated on `representative_images`; the layer norms, LeakyReLUs
    and the H/4 bottleneck stay float, see `INT8_FLOAT_OPS`; float32 input
    and output so that callers feed the same [-1, 1] floats).

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
    if quantize == "int8" and not representative_images:
        raise ValueError("int8 needs representative images")
    try:
        if quantize == "int8":
            return _convert_int8(
                saved_model_dir, signature, list(representative_images)
            )
        converter = _converter(saved_model_dir, signature)
        if quantize != "none":
            converter.optimizations = [tf.lite.Optimize.DEFAULT]
        if quantize == "fp16":
            converter.target_spec.supported_types = [tf.float16]
        return converter.convert()
    except Exception as e:  # ConverterError and friends: long MLIR dumps
        raise ExportError(
            f"TFLite conversion ({quantize}, {signature}) failed: "
            f"{first_error_line(e)}"
        ) from e


def xnnpack_delegation(model_content, num_threads=2):
    """How LiteRT's default XNNPACK delegate splits a model.

    After `allocate_tensors` the interpreter lists the model's nodes and
    one DELEGATE node per delegated partition; a node belongs to the
    partition whose outputs it reaches without crossing the partition's
    inputs. Whatever belongs to none runs on LiteRT's own kernels, and
    each partition boundary costs a hand-over between the two.

    Returns:
        dict "nodes" (the model's op count), "partitions" (DELEGATE nodes),
        "undelegated" (`collections.Counter` of op names).
    """
    interpreter = tflite_interpreter(model_content, num_threads)
    interpreter.allocate_tensors()
    ops = interpreter._get_ops_details()
    nodes = [op for op in ops if op["op_name"] != "DELEGATE"]
    partitions = [op for op in ops if op["op_name"] == "DELEGATE"]
    producer = {int(t): op["index"] for op in nodes for t in op["outputs"]}
    by_index = {op["index"]: op for op in nodes}
    delegated = set()
    for partition in partitions:
        boundary = {int(t) for t in partition["inputs"]}
        stack = [int(t) for t in partition["outputs"]]
        while stack:
            t = stack.pop()
            if t in boundary or t not in producer:
                continue
            node = producer[t]
            if node in delegated:
                continue
            delegated.add(node)
            stack += [int(i) for i in by_index[node]["inputs"] if i >= 0]
    return {
        "nodes": len(nodes),
        "partitions": len(partitions),
        "undelegated": collections.Counter(
            op["op_name"] for op in nodes if op["index"] not in delegated
        ),
    }


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


# The format's row (`formats.FORMATS`): its runner, and no package beyond
# TensorFlow (the converter is TF's; `tflite_interpreter` falls back to
# TF's interpreter without LiteRT).
Runner = TFLiteRunner
REQUIRES = ()
