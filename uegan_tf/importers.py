"""Import released AnimeGANv2 generator weights into `uegan_tf` generators.

Two sources:

- the official TF1 checkpoints (`TachibanaYoshino/AnimeGANv2`,
  `checkpoint/generator_<Style>_weight/`), read with
  `tf.train.load_checkpoint` (no TF1 graph code): legacy bilinear resize,
  layer-norm epsilon 1e-12;
- the PyTorch port's state dicts (`bryandlee/animegan2-pytorch`), see
  `load_pytorch_state_dict`.

Either source also initialises a UE generator exactly: the U-Net skip
kernel slices are zero, so the UE generator starts as the released model.
"""

import os

import numpy as np
import tensorflow as tf

from uegan_tf.models.generator import generator_sublayers

OFFICIAL_PREFIX = "generator/G_MODEL"

# Official variable scope of each plain-generator sublayer. A conv block
# `(scope, conv, norm)` reads `<scope>/<conv>/weights` and
# `<scope>/<norm>/{gamma,beta}`.
_OFFICIAL_CONV_SCOPES = {
    "A_0": ("A", "Conv", "LayerNorm"),
    "A_1": ("A", "Conv_1", "LayerNorm_1"),
    "A_2": ("A", "Conv_2", "LayerNorm_2"),
    "B_0": ("B", "Conv", "LayerNorm"),
    "B_1": ("B", "Conv_1", "LayerNorm_1"),
    "C_0": ("C", "Conv", "LayerNorm"),
    "C_1": ("C", "Conv_1", "LayerNorm_1"),
    "D_0": ("D", "Conv", "LayerNorm"),
    "D_1": ("D", "Conv_1", "LayerNorm_1"),
    "E_0": ("E", "Conv", "LayerNorm"),
    "E_1": ("E", "Conv_1", "LayerNorm_1"),
    "E_2": ("E", "Conv_2", "LayerNorm_2"),
}


def official_variable_map():
    """`{official variable name: (sublayer name, role)}` for the generator.

    Roles: "kernel", "gamma", "beta" for conv blocks; for IRB `C_r<i>`:
    "expand/kernel", "expand/gamma", ..., "depthwise/kernel",
    "depthwise/bias", "project/..."; "out/kernel" for the output conv.
    77 entries, 2,143,552 values.
    """
    p = OFFICIAL_PREFIX
    out = {}
    for name, (scope, conv, norm) in _OFFICIAL_CONV_SCOPES.items():
        out[f"{p}/{scope}/{conv}/weights"] = (name, "kernel")
        out[f"{p}/{scope}/{norm}/gamma"] = (name, "gamma")
        out[f"{p}/{scope}/{norm}/beta"] = (name, "beta")
    for i in range(1, 5):
        r = f"{p}/C/r{i}"
        name = f"C_r{i}"
        out[f"{r}/Conv/weights"] = (name, "expand/kernel")
        out[f"{r}/LayerNorm/gamma"] = (name, "expand/gamma")
        out[f"{r}/LayerNorm/beta"] = (name, "expand/beta")
        out[f"{r}/r{i}/w"] = (name, "depthwise/kernel")
        out[f"{r}/r{i}/bias"] = (name, "depthwise/bias")
        out[f"{r}/1/gamma"] = (name, "depthwise/gamma")
        out[f"{r}/1/beta"] = (name, "depthwise/beta")
        out[f"{r}/Conv_1/weights"] = (name, "project/kernel")
        out[f"{r}/2/gamma"] = (name, "project/gamma")
        out[f"{r}/2/beta"] = (name, "project/beta")
    out[f"{p}/out_layer/Conv/weights"] = ("out_layer", "out/kernel")
    return out


def _conv_block_variables(block):
    """`{"kernel", "bias"?, "gamma", "beta"}` variables of a ConvNormLReLU."""
    conv = block.conv
    variables = {
        "kernel": conv.kernel,
        "gamma": block.norm.gamma,
        "beta": block.norm.beta,
    }
    if block.depthwise:
        variables["bias"] = conv.bias
    return variables


def generator_variables(generator):
    """`{(sublayer name, role): variable}` of a generator (see the map)."""
    out = {}
    for name, layer in generator_sublayers(generator):
        if name == "out_layer":
            out[(name, "out/kernel")] = layer.kernel
        elif name.startswith("C_r"):
            for part in ("expand", "depthwise", "project"):
                block = getattr(layer, part)
                for role, var in _conv_block_variables(block).items():
                    out[(name, f"{part}/{role}")] = var
        else:
            for role, var in _conv_block_variables(layer).items():
                out[(name, role)] = var
    return out


def assign_into(variable, value, key):
    """Assign `value` into `variable`, zero-filling UE skip input channels.

    A UE generator's first convs of D and E have more input channels than the
    plain network; the released kernel fills the leading ones and the skip
    slice is zeroed (function-preserving initialisation).
    """
    value = np.asarray(value, dtype=np.float32)
    shape = tuple(variable.shape)
    if value.shape != shape:
        ok = (
            value.ndim == 4
            and value.shape[:2] == shape[:2]
            and value.shape[3] == shape[3]
            and value.shape[2] < shape[2]
        )
        if not ok:
            raise ValueError(
                f"{key}: source shape {value.shape} does not fit {shape}"
            )
        pad = np.zeros(
            (*shape[:2], shape[2] - value.shape[2], shape[3]), np.float32
        )
        value = np.concatenate([value, pad], axis=2)
    variable.assign(value)


def read_official_checkpoint(path):
    """Read an official AnimeGANv2 generator checkpoint into numpy arrays.

    Args:
        path: a checkpoint directory (with a `checkpoint` state file) or a
            checkpoint prefix (`.../Hayao-64.ckpt`).

    Returns:
        `{official variable name: np.ndarray}` for the 77 generator
        variables.

    Raises:
        FileNotFoundError: no checkpoint at `path`.
        ValueError: the checkpoint lacks generator variables.
    """
    prefix = path
    if os.path.isdir(path):
        prefix = tf.train.latest_checkpoint(path)
        if prefix is None:
            # A folder without a `checkpoint` state file: take the only
            # `*.index` in it.
            index = [f for f in os.listdir(path) if f.endswith(".index")]
            if len(index) != 1:
                raise FileNotFoundError(
                    f"no TF checkpoint found in {path!r}"
                )
            prefix = os.path.join(path, index[0][: -len(".index")])
    elif not tf.io.gfile.exists(path + ".index"):
        raise FileNotFoundError(f"no TF checkpoint at {path!r}")
    reader = tf.train.load_checkpoint(prefix)
    names = official_variable_map()
    available = reader.get_variable_to_shape_map()
    missing = [n for n in names if n not in available]
    if missing:
        raise ValueError(
            f"{prefix} is not an AnimeGANv2 generator checkpoint: "
            f"{len(missing)} of {len(names)} variables missing, e.g. "
            f"{missing[0]}"
        )
    return {n: reader.get_tensor(n) for n in names}


def load_official_checkpoint(generator, path):
    """Load an official AnimeGANv2 TF1 generator checkpoint into `generator`.

    The generator must use the reference numerics to reproduce the official
    outputs: `upsample="tf1"`, `norm_epsilon=1e-12` (the defaults). A UE
    generator is initialised with zero skip slices (same function).

    Args:
        generator: a built `uegan_tf.models.Generator`.
        path: checkpoint directory or prefix.

    Returns:
        The generator.
    """
    values = read_official_checkpoint(path)
    variables = generator_variables(generator)
    for name, key in official_variable_map().items():
        assign_into(variables[key], values[name], name)
    return generator
