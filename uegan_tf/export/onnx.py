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
    split_reductions(model)
    return model.SerializeToString()


# Reductions that `split_reductions` rewrites (mean of means over equal
# blocks is the mean; sum of sums is the sum).
_SPLIT_REDUCE_OPS = ("ReduceMean", "ReduceSum")


def split_reductions(graph_or_model):
    """Rewrite every multi-axis ReduceMean/ReduceSum as one node per axis.

    ONNX Runtime's CPU reductions accumulate each output in float32 one
    element after another. The layer norm's statistics reduce a whole
    `[1, H, W, C]` activation to one value: 33 M elements at 1024² for the
    first layer, where the running sum dwarfs each addend, and the variance
    came out 8 % low (0.460 vs 0.501; `docs/environment.md#onnx`). One axis
    at a time (innermost first: at most a few thousand terms per sum) gives
    the mean to float32 rounding at any size, with the same one pass over
    the big tensor. Same maths, same graph otherwise; Keras is untouched.

    Args:
        graph_or_model: an `onnx.ModelProto` or `GraphProto`, changed in
            place (subgraphs included).

    Returns:
        The number of nodes rewritten.
    """
    import onnx
    from onnx import helper
    from onnx import numpy_helper

    graph = getattr(graph_or_model, "graph", graph_or_model)
    inits = {t.name: t for t in graph.initializer}
    nodes, count = [], 0
    for node in graph.node:
        for attr in node.attribute:  # If / Loop / Scan bodies
            subgraphs = [attr.g] if attr.type == attr.GRAPH else attr.graphs
            for sub in subgraphs:
                count += split_reductions(sub)
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        axes_input = len(node.input) > 1  # opset >= 18: an input
        if axes_input and node.input[1] in inits:
            axes = numpy_helper.to_array(inits[node.input[1]]).tolist()
        else:
            axes = attrs.get("axes")
        keepdims = attrs.get("keepdims", 1)
        if (
            node.op_type not in _SPLIT_REDUCE_OPS
            or axes is None
            or len(axes) < 2
            or (not keepdims and min(axes) < 0)
        ):
            nodes.append(node)
            continue
        # Innermost axis first: the one big pass is then a contiguous row
        # reduction; descending order also keeps the remaining (positive)
        # axes valid when keepdims=0.
        order = sorted(axes, key=lambda a: (a < 0, a), reverse=True)
        current = node.input[0]
        for i, axis in enumerate(order):
            name = f"{node.name}__axis{i}"
            last = i == len(order) - 1
            out = node.output[0] if last else f"{name}:0"
            inputs = [current]
            kwargs = {"keepdims": keepdims}
            if axes_input:
                inputs.append(f"{name}_axes")
                graph.initializer.append(
                    numpy_helper.from_array(
                        np.array([axis], np.int64), inputs[-1]
                    )
                )
            else:
                kwargs["axes"] = [axis]
            nodes.append(
                helper.make_node(node.op_type, inputs, [out], name, **kwargs)
            )
            current = out
        count += 1
    del graph.node[:]
    graph.node.extend(nodes)
    if graph is not graph_or_model:
        onnx.checker.check_model(graph_or_model)
    return count


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
