"""ONNX: conversion with tf2onnx and an ONNX Runtime runner."""

import collections
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
    saved_model_dir, signature=FLOAT_SIGNATURE, opset=ONNX_OPSET, fuse=True
):
    """Convert a SavedModel signature to ONNX with tf2onnx.

    The input keeps the signature's name ("image", float32 `[1, H, W, 3]`
    NHWC in [-1, 1], H and W dynamic) and so does the output ("stylized").

    tf2onnx's graph is then rewritten for ONNX Runtime
    (`docs/environment.md#onnx`): `fuse_reflect_pads` and
    `fuse_layer_norms` (with `fuse`; the same network, fewer passes over
    memory), and always `split_reductions` (accuracy at large sizes).

    Args:
        saved_model_dir: the SavedModel version folder.
        signature: the float signature to convert.
        opset: ONNX opset.
        fuse: apply the speed rewrites (False: tf2onnx's graph, for
            comparison in `bench/bench_onnx_parity.py`).

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
    if fuse:
        fuse_reflect_pads(model)
        fuse_layer_norms(model)
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


# ---------------------------------------------------------------------------
# Rewrites of tf2onnx's graph for ONNX Runtime (`docs/environment.md#onnx`).
# Both keep the network's maths and replace a pattern of many small ops,
# each a full pass over an activation, by one ONNX op that ORT runs in
# fewer passes. A pattern that does not match exactly is left as it is.

# tf2onnx's "to the end" bound of a slice (INT32_MAX; INT64_MAX also seen).
_SLICE_END = 2**31 - 1


class _GraphIndex:
    """Producers, consumers, constants and static shapes of a graph.

    Args:
        model: an `onnx.ModelProto` (its main graph is indexed).
    """

    def __init__(self, model):
        import onnx

        self.graph = graph = model.graph
        self.initializers = {t.name: t for t in graph.initializer}
        self.constants = {
            n.output[0]: n for n in graph.node if n.op_type == "Constant"
        }
        self.producer, self.consumers = {}, collections.defaultdict(list)
        for node in graph.node:
            for name in node.output:
                self.producer[name] = node
            for name in dict.fromkeys(node.input):  # Mul(d, d): once
                self.consumers[name].append(node)
        self.graph_outputs = {o.name for o in graph.output}
        self.names = set(self.producer) | set(self.initializers)
        self.names |= {i.name for i in graph.input}
        # Static dims (None where dynamic) of every tensor ONNX's shape
        # inference can follow: the channel count of an activation is
        # static, H and W are not.
        inferred = onnx.shape_inference.infer_shapes(model).graph
        self.shapes = {}
        for info in (*inferred.input, *inferred.value_info, *inferred.output):
            tensor = info.type.tensor_type
            if tensor.HasField("shape"):
                self.shapes[info.name] = [
                    d.dim_value if d.HasField("dim_value") else None
                    for d in tensor.shape.dim
                ]

    def value(self, name):
        """The numpy value of a constant tensor, else None."""
        from onnx import numpy_helper

        if name in self.initializers:
            return numpy_helper.to_array(self.initializers[name])
        node = self.constants.get(name)
        if node is not None:
            for attr in node.attribute:
                if attr.name == "value":
                    return numpy_helper.to_array(attr.t)
        return None

    def only_consumer(self, name, op_type):
        """The one node reading `name`, if it is an `op_type` node."""
        users = self.consumers.get(name, [])
        if len(users) != 1 or name in self.graph_outputs:
            return None
        return users[0] if users[0].op_type == op_type else None

    def rank(self, name):
        shape = self.shapes.get(name)
        return None if shape is None else len(shape)

    def new_name(self, base):
        name, i = base, 0
        while name in self.names:
            i += 1
            name = f"{base}_{i}"
        self.names.add(name)
        return name

    def add_initializer(self, array, base):
        from onnx import numpy_helper

        name = self.new_name(base)
        self.graph.initializer.append(numpy_helper.from_array(array, name))
        return name


def _attribute(node, name, default=None):
    from onnx import helper

    for attr in node.attribute:
        if attr.name == name:
            return helper.get_attribute_value(attr)
    return default


def _replace_nodes(graph, replacements):
    """Put each `{id(node): [new nodes]}` in its node's place; then prune.

    A replaced node's new nodes read only tensors made before it, so the
    graph stays topologically sorted.
    """
    nodes = []
    for node in graph.node:
        nodes.extend(replacements.get(id(node), [node]))
    del graph.node[:]
    graph.node.extend(nodes)
    _prune(graph)


def _prune(graph):
    """Drop nodes and initializers that nothing reads (repeatedly)."""

    def reads(g):
        names = set()
        for node in g.node:
            names.update(node.input)
            for attr in node.attribute:  # If / Loop / Scan bodies
                for sub in [attr.g] if attr.type == attr.GRAPH else attr.graphs:
                    names |= reads(sub) | {o.name for o in sub.output}
        return names

    while True:
        used = reads(graph) | {o.name for o in graph.output}
        keep = [n for n in graph.node if any(o in used for o in n.output)]
        if len(keep) == len(graph.node):
            break
        del graph.node[:]
        graph.node.extend(keep)
    inits = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(inits)


def _one_row(index, node):
    """`(source, axis, row)` if `node` slices one row along one axis.

    `row` counts from the start (>= 0) or from the end (-2 is the row
    before the last), as `layers.reflect_pad` writes its slices; tf2onnx
    lists every axis, the others over their full range.
    """
    if node is None or node.op_type != "Slice" or len(node.input) < 3:
        return None
    values = [index.value(name) if name else None for name in node.input[1:5]]
    starts, ends, axes, steps = values + [None] * (4 - len(values))
    if starts is None or ends is None:
        return None
    axes = range(len(starts)) if axes is None else axes.tolist()
    steps = [1] * len(starts) if steps is None else steps.tolist()
    row = None
    for start, end, axis, step in zip(
        starts.tolist(), ends.tolist(), axes, steps
    ):
        if step != 1:
            return None
        if start == 0 and end >= _SLICE_END:
            continue  # the whole axis
        if row is not None or end != start + 1 or start == -1:
            return None
        row = (axis, start)
    return None if row is None else (node.input[0], *row)


def fuse_reflect_pads(model):
    """Rewrite `layers.reflect_pad`'s slices and concats as ONNX `Pad`.

    The Keras layer pads with one-row slices and concats (bit-identical to
    a reflect pad; TFLite needs that, `docs/design.md#reflect-padding`).
    tf2onnx keeps them: per padded conv 2-12 Slices and 2-6 Concats, each
    Concat a full copy of the activation, the H one and then the W one.
    ONNX Runtime's `Pad(mode="reflect")` writes the padded tensor once:
    per padded `[1, C, H, W]` activation, `Concat(rows p..1, x, rows
    -2..-1-q)` along H and the same along W become one
    `Pad(x, pads=[0, 0, p, l, 0, 0, q, r])`. The same values, bit for bit.

    Args:
        model: an `onnx.ModelProto`, changed in place.

    Returns:
        The number of `Pad` nodes written (one per padded activation).
    """
    index = _GraphIndex(model)
    replacements = {}
    for node in index.graph.node:
        if node.op_type != "Concat":
            continue
        axis = _attribute(node, "axis")
        rows, centre = [], []  # [(source, axis, row)], [concat input]
        for name in node.input:
            piece = index.producer.get(name)
            row = _one_row(index, piece)
            if row is not None:
                rows.append((len(centre), row))
                continue
            # reflect_pad joins the mirrored rows of a side first.
            inner = piece is not None and piece.op_type == "Concat"
            inner = inner and _attribute(piece, "axis") == axis
            inner = inner and index.only_consumer(name, "Concat") is node
            parts = (
                [_one_row(index, index.producer.get(i)) for i in piece.input]
                if inner
                else [None]
            )
            if all(parts):
                rows.extend((len(centre), r) for r in parts)
            else:
                centre.append(name)
        if len(centre) != 1 or not rows:
            continue
        x = centre[0]
        rank = index.rank(x)
        if rank is None or not -rank <= axis < rank:
            continue
        axis %= rank
        if any(src != x or a % rank != axis for _, (src, a, _) in rows):
            continue
        before = [r for pos, (_, _, r) in rows if pos == 0]
        after = [r for pos, (_, _, r) in rows if pos == 1]
        if before != list(range(len(before), 0, -1)) or after != list(
            range(-2, -2 - len(after), -1)
        ):
            continue  # not a reflection (the border row is not repeated)
        pads = np.zeros(2 * rank, np.int64)
        pads[axis], pads[rank + axis] = len(before), len(after)
        replacements[id(node)] = [
            _reflect_pad_node(index, x, pads, node.output[0], node.name)
        ]
    _replace_nodes(index.graph, replacements)
    return len(replacements) - _merge_reflect_pads(model)


def _reflect_pad_node(index, x, pads, output, name):
    from onnx import helper

    pads_name = index.add_initializer(pads, f"{name}_reflect_pads")
    return helper.make_node(
        "Pad", [x, pads_name], [output], f"{name}_reflect", mode="reflect"
    )


def _merge_reflect_pads(model):
    """Pad(Pad(x, H pads), W pads) -> one Pad(x, H + W pads); the count."""
    index = _GraphIndex(model)
    replacements, merged = {}, set()
    for node in index.graph.node:
        inner = index.producer.get(node.input[0])
        if (
            node.op_type != "Pad"
            or inner is None
            or inner.op_type != "Pad"
            or id(inner) in merged
            or index.only_consumer(inner.output[0], "Pad") is not node
            or {_attribute(n, "mode") for n in (node, inner)} != {b"reflect"}
            or any(len(n.input) > 2 for n in (node, inner))  # no axes
        ):
            continue
        outer_pads, inner_pads = (
            index.value(n.input[1]) for n in (node, inner)
        )
        if outer_pads is None or inner_pads is None:
            continue
        if np.any((outer_pads != 0) & (inner_pads != 0)):
            continue  # two pads of one axis: a reflection of a reflection
        merged.add(id(node))
        replacements[id(inner)] = []
        replacements[id(node)] = [
            _reflect_pad_node(
                index,
                inner.input[0],
                outer_pads + inner_pads,
                node.output[0],
                node.name,
            )
        ]
    _replace_nodes(index.graph, replacements)
    return len(merged)


def fuse_layer_norms(model):
    """Rewrite each layer norm's affine tail as one `BatchNormalization`.

    tf2onnx exports `layers.LayerNorm` on an NCHW activation `x` `[1, C, H,
    W]` as (one line per full pass over the activation; `mean` and `var`
    are `[1, 1, 1, 1]`, `gamma`, `beta` `[1, C, 1, 1]`):

        mean = ReduceMean(x)                      read
        d = Sub(x, mean)                          read, write
        var = ReduceMean(Mul(d, d))               read, write; read
        inv = Reciprocal(Sqrt(var + eps)) * gamma     (per channel)
        y = Sub(Mul(x, inv), Sub(Mul(mean, inv), beta))   2 x (read, write)

    (tf2onnx may reshape `Mul(mean, inv)` and drops `- beta` when beta is
    all zeros, as in a freshly built layer.)

    The last line becomes `y = BatchNormalization(d, gamma, beta, mean=0,
    var=Expand(var, [C]), epsilon=eps)`, ORT's per-channel
    `d * gamma / sqrt(var + eps) + beta` in one pass: one read-write pass
    fewer per norm, and the same statistics (the two-pass mean and
    variance of the Keras layer, which `split_reductions` then makes exact
    at any size). ORT's own `LayerNormalization` (axis=1, [C, 1, 1]
    affine) is exact (it sums in double) but one element at a time on
    one thread: 1.5x slower than these norms in the whole model; its
    `InstanceNormalization` on `[1, 1, C*H*W]` (what PyTorch's exporter
    writes for `GroupNorm(1, C)`) sums in float32 and drifts at 1024²
    (58.8 dB for one layer), as does GroupNormalization
    (`docs/environment.md#onnx`).

    Args:
        model: an `onnx.ModelProto`, changed in place.

    Returns:
        The number of layer norms rewritten.
    """
    from onnx import helper

    index = _GraphIndex(model)
    replacements = {}
    for sub in index.graph.node:
        match = sub.op_type == "Sub" and _match_layer_norm(index, sub)
        if not match:
            continue
        var, eps, gamma, beta, tail = match
        channels = gamma.size
        name = sub.name
        flat = index.new_name(f"{name}_var_flat")  # [1]
        per_channel = index.new_name(f"{name}_var_c")  # [C]
        one = index.add_initializer(np.array([1], np.int64), f"{name}_one")
        count = index.add_initializer(
            np.array([channels], np.int64), f"{name}_channels"
        )
        affine = [
            index.add_initializer(v.reshape(channels).astype(np.float32), n)
            for v, n in (
                (gamma, f"{name}_gamma"),
                (beta, f"{name}_beta"),
                (np.zeros(channels, np.float32), f"{name}_zero_mean"),
            )
        ]
        new = [
            helper.make_node("Reshape", [var, one], [flat], f"{name}_vr"),
            helper.make_node(
                "Expand", [flat, count], [per_channel], f"{name}_ve"
            ),
            helper.make_node(
                "BatchNormalization",
                [sub.output[0], *affine, per_channel],
                [tail[-1].output[0]],
                f"{name}_norm",
                epsilon=eps,
            ),
        ]
        for node in tail[:-1]:
            replacements[id(node)] = []
        replacements[id(tail[-1])] = new
    _replace_nodes(index.graph, replacements)
    return sum(1 for v in replacements.values() if v)


def _channel_vector(index, name, rank, channels):
    """The value of a constant `[1, C, 1, 1]` (NCHW per-channel), or None."""
    value = index.value(name)
    if value is None or value.size != channels or value.ndim > rank:
        return None
    shape = (1,) * (rank - value.ndim) + value.shape
    return value if shape == (1, channels) + (1,) * (rank - 2) else None


def _match_layer_norm(index, sub):
    """The layer norm around `d = Sub(x, mean)`, as `fuse_layer_norms` says.

    Returns:
        `(var, eps, gamma, beta, tail)` (the variance tensor's name, eps,
        the affine values, the nodes from `var + eps` to `y`) or None.
    """
    x, centre = sub.input
    mean = centre
    reshape = index.producer.get(centre)
    if reshape is not None and reshape.op_type == "Reshape":
        shape = index.value(reshape.input[1])
        if shape is None or np.any(shape != 1):
            return None
        mean = reshape.input[0]  # tf2onnx's transposed [1, 1, 1, 1]
    shape, rank = index.shapes.get(x), index.rank(x)
    mean_node = index.producer.get(mean)
    if (
        rank is None
        or rank < 3
        or shape[1] is None
        or mean_node is None
        or mean_node.op_type != "ReduceMean"
        or mean_node.input[0] != x
    ):
        return None

    def all_but_batch(node):  # ReduceMean over (1, ..., rank-1), keepdims
        axes = _attribute(node, "axes")
        if axes is None and len(node.input) > 1:
            axes = index.value(node.input[1])
            axes = None if axes is None else axes.tolist()
        return (
            axes is not None
            and sorted(a % rank for a in axes) == list(range(1, rank))
            and _attribute(node, "keepdims", 1) == 1
        )

    square = index.only_consumer(sub.output[0], "Mul")
    if square is None or list(square.input) != [sub.output[0]] * 2:
        return None
    var_node = index.only_consumer(square.output[0], "ReduceMean")
    if var_node is None or not (
        all_but_batch(mean_node) and all_but_batch(var_node)
    ):
        return None
    var = var_node.output[0]
    add = index.only_consumer(var, "Add")
    eps = None if add is None else index.value(add.input[1])
    if eps is None or eps.size != 1 or add.input[0] != var:
        return None
    sqrt = index.only_consumer(add.output[0], "Sqrt")
    recip = sqrt and index.only_consumer(sqrt.output[0], "Reciprocal")
    scale = recip and index.only_consumer(recip.output[0], "Mul")
    if scale is None or scale.input[0] != recip.output[0]:
        return None
    channels = shape[1]
    gamma = _channel_vector(index, scale.input[1], rank, channels)
    inv = scale.output[0]
    users = index.consumers.get(inv, [])
    if gamma is None or len(users) != 2 or inv in index.graph_outputs:
        return None
    # Mul(x, inv) and Mul(mean, inv) (either order).
    by_other = {
        next((i for i in u.input if i != inv), None): u
        for u in users
        if u.op_type == "Mul" and sorted(u.input).count(inv) == 1
    }
    scaled = by_other.get(x)
    shifted = by_other.get(mean, by_other.get(centre))
    if scaled is None or shifted is None:
        return None
    # mean * inv - beta, on to the final Sub: tf2onnx may put a Reshape
    # to `[1, C, 1, 1]` in between (a transpose of a per-channel vector),
    # and drops the Sub when beta is all zeros (a freshly built layer).
    tail = [add, sqrt, recip, scale, scaled, shifted]
    beta, shift = None, shifted.output[0]
    per_channel = [1, channels] + [1] * (rank - 2)
    out = index.only_consumer(scaled.output[0], "Sub")
    while out is not None and list(out.input) != [scaled.output[0], shift]:
        node = index.consumers.get(shift, [None])[0]
        if node is None or index.only_consumer(shift, node.op_type) is None:
            return None
        if node.op_type == "Reshape":
            target = index.value(node.input[1])
            if target is None or target.tolist() != per_channel:
                return None
        elif node.op_type == "Sub" and node.input[0] == shift and beta is None:
            beta = _channel_vector(index, node.input[1], rank, channels)
            if beta is None:
                return None
        else:
            return None
        tail.append(node)
        shift = node.output[0]
    if out is None or index.only_consumer(shift, "Sub") is not out:
        return None
    tail.append(out)
    if beta is None:
        beta = np.zeros(channels, np.float32)
    return var, float(eps.ravel()[0]), gamma, beta, tail


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


# The format's row (`formats.FORMATS`): its runner, and the packages the
# conversion and the check need (checked before the SavedModel is written).
Runner = OnnxRunner
REQUIRES = ("tf2onnx", "onnxruntime")
