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

import contextlib
import os

import numpy as np
import tensorflow as tf

from uegan_tf.errors import first_line
from uegan_tf.models.generator import generator_sublayers
from uegan_tf.models.generator import zero_fill_skip_channels

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

    See `models.generator.zero_fill_skip_channels`: the released kernel
    fills the leading input channels and the skip slice is zeroed.
    """
    value = zero_fill_skip_channels(value, variable.shape, key)
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
                raise FileNotFoundError(f"no TF checkpoint found in {path!r}")
            prefix = os.path.join(path, index[0][: -len(".index")])
    elif not tf.io.gfile.exists(path + ".index"):
        raise FileNotFoundError(f"no TF checkpoint at {path!r}")
    names = official_variable_map()
    with corrupt_checkpoint_as_value_error(prefix):
        reader = tf.train.load_checkpoint(prefix)
        available = reader.get_variable_to_shape_map()
        missing = [n for n in names if n not in available]
        if missing:
            raise ValueError(
                f"{prefix} is not an AnimeGANv2 generator checkpoint: "
                f"{len(missing)} of {len(names)} variables missing, e.g. "
                f"{missing[0]}"
            )
        return {n: reader.get_tensor(n) for n in names}


@contextlib.contextmanager
def corrupt_checkpoint_as_value_error(prefix):
    """Turn TensorFlow's errors on a damaged checkpoint into one line.

    A truncated or overwritten `.index` raises `OpError` ("not an sstable
    (bad magic number)"), a short `.data` file `IndexError` ("Read less
    bytes than requested") or `DataLossError`: raised as `ValueError`
    naming the checkpoint, so that callers report it like any bad model.
    """
    try:
        yield
    except (tf.errors.OpError, IndexError) as e:
        reason = first_line(e)
        raise ValueError(
            f"checkpoint {prefix} is corrupt or truncated (its .index or "
            f".data file: {reason})"
        ) from None


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


# ---------------------------------------------------------------------------
# The PyTorch port (bryandlee/animegan2-pytorch, `model.py`).
#
# Its `ConvNormLReLU` is `nn.Sequential(pad, conv, GroupNorm(1), LeakyReLU)`
# (state-dict indices 1 = conv, 2 = norm); an `InvertedResBlock` keeps
# `layers = [ConvNormLReLU 1x1, ConvNormLReLU depthwise (bias), Conv2d 1x1,
# GroupNorm]`. Conv kernels are OIHW; depthwise kernels (C, 1, 3, 3).

PYTORCH_EPSILON = 1e-5  # nn.GroupNorm's default

_PYTORCH_CONV_BLOCKS = {
    "A_0": "block_a.0",
    "A_1": "block_a.1",
    "A_2": "block_a.2",
    "B_0": "block_b.0",
    "B_1": "block_b.1",
    "C_0": "block_c.0",
    "C_1": "block_c.5",
    "D_0": "block_d.0",
    "D_1": "block_d.1",
    "E_0": "block_e.0",
    "E_1": "block_e.1",
    "E_2": "block_e.2",
}


def pytorch_key_map():
    """`{state-dict key: (sublayer name, role)}` for the port's Generator.

    77 entries (the same 2,143,552 values as the official checkpoint).
    """
    out = {}
    for name, prefix in _PYTORCH_CONV_BLOCKS.items():
        out[f"{prefix}.1.weight"] = (name, "kernel")
        out[f"{prefix}.2.weight"] = (name, "gamma")
        out[f"{prefix}.2.bias"] = (name, "beta")
    for i in range(1, 5):
        p = f"block_c.{i}.layers"
        name = f"C_r{i}"
        out[f"{p}.0.1.weight"] = (name, "expand/kernel")
        out[f"{p}.0.2.weight"] = (name, "expand/gamma")
        out[f"{p}.0.2.bias"] = (name, "expand/beta")
        out[f"{p}.1.1.weight"] = (name, "depthwise/kernel")
        out[f"{p}.1.1.bias"] = (name, "depthwise/bias")
        out[f"{p}.1.2.weight"] = (name, "depthwise/gamma")
        out[f"{p}.1.2.bias"] = (name, "depthwise/beta")
        out[f"{p}.2.weight"] = (name, "project/kernel")
        out[f"{p}.3.weight"] = (name, "project/gamma")
        out[f"{p}.3.bias"] = (name, "project/beta")
    out["out_layer.0.weight"] = ("out_layer", "out/kernel")
    return out


def _pytorch_to_keras(value, role):
    """OIHW -> HWIO; depthwise (C, 1, kh, kw) -> (kh, kw, C, 1)."""
    value = np.asarray(value, np.float32)
    if role.endswith("depthwise/kernel"):
        return value.transpose(2, 3, 0, 1)
    if value.ndim == 4:
        return value.transpose(2, 3, 1, 0)
    return value


def load_pytorch_state_dict(generator, state_dict):
    """Load the PyTorch port's generator weights into `generator`.

    To reproduce the port's numerics the generator must be built with
    `norm_epsilon=1e-5` and `upsample="align_corners"` (the port's
    `forward` default, used for its face models) or "half_pixel" (its
    `test.py --upsample_align False`); `convert_pytorch_weights` does that.

    Args:
        generator: a built `Generator` (plain or UE).
        state_dict: `{key: array}` (numpy arrays or torch tensors); a
            "module." prefix (DataParallel) is accepted.

    Returns:
        The generator.

    Raises:
        ValueError: keys missing or shapes that do not fit.
    """
    sd = {}
    for key, value in state_dict.items():
        key = key[len("module.") :] if key.startswith("module.") else key
        if hasattr(value, "detach"):  # a torch tensor
            value = value.detach().cpu().numpy()
        sd[key] = value
    mapping = pytorch_key_map()
    missing = [k for k in mapping if k not in sd]
    if missing:
        raise ValueError(
            f"not an animegan2-pytorch generator state dict: {len(missing)} "
            f"of {len(mapping)} keys missing, e.g. {missing[0]!r}"
        )
    variables = generator_variables(generator)
    for key, (name, role) in mapping.items():
        assign_into(
            variables[(name, role)], _pytorch_to_keras(sd[key], role), key
        )
    return generator


_TORCH_DTYPES = {
    "FloatStorage": np.float32,
    "DoubleStorage": np.float64,
    "HalfStorage": np.float16,
    "BFloat16Storage": None,
    "LongStorage": np.int64,
    "IntStorage": np.int32,
    "ShortStorage": np.int16,
    "CharStorage": np.int8,
    "ByteStorage": np.uint8,
    "BoolStorage": np.bool_,
}


def read_pytorch_checkpoint(path):
    """Read a `torch.save`d state dict into numpy arrays without torch.

    Supports the zip format of `torch.save` (PyTorch >= 1.6): a pickle
    (`*/data.pkl`) whose tensors reference raw little-endian storages
    (`*/data/<key>`). Files in the legacy (pre-1.6) format need torch
    itself; if it is installed it is used.

    Args:
        path: `.pt` / `.pth` file.

    Returns:
        `{key: np.ndarray}`.

    Raises:
        FileNotFoundError: missing file.
        ValueError: not a state dict this reader understands.
    """
    import pickle
    import zipfile

    if not os.path.isfile(path):
        raise FileNotFoundError(f"no such file: {path}")
    if not zipfile.is_zipfile(path):
        try:
            import torch
        except ImportError:
            raise ValueError(
                f"{path} uses the legacy (pre-1.6) torch.save format; "
                "install torch to read it (pip install torch)"
            ) from None
        obj = torch.load(path, map_location="cpu", weights_only=True)
        return {k: v.numpy() for k, v in _unwrap_state_dict(obj).items()}

    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        pkl = [n for n in names if n.endswith("data.pkl")]
        if not pkl:
            raise ValueError(f"{path}: no data.pkl (not a torch.save file)")
        root = pkl[0][: -len("data.pkl")]

        def storage_bytes(key):
            return zf.read(f"{root}data/{key}")

        class _Storage:
            def __init__(self, dtype, key):
                self.dtype, self.key = dtype, key

        def rebuild_tensor(storage, offset, size, stride, *unused):
            raw = np.frombuffer(storage_bytes(storage.key), storage.dtype)
            item = raw.itemsize
            return np.lib.stride_tricks.as_strided(
                raw[offset:],
                shape=tuple(size),
                strides=tuple(s * item for s in stride),
            ).copy()

        def storage_type(name):
            dtype = _TORCH_DTYPES.get(name)
            if dtype is None:
                raise ValueError(f"{path}: unsupported storage {name}")
            return dtype

        class Unpickler(pickle.Unpickler):
            def find_class(self, module, name):
                if module == "torch._utils" and name in (
                    "_rebuild_tensor_v2",
                    "_rebuild_tensor",
                ):
                    return rebuild_tensor
                if module == "torch" and name.endswith("Storage"):
                    return name
                if module == "collections" and name == "OrderedDict":
                    import collections

                    return collections.OrderedDict
                if module == "torch._utils" and name == "_rebuild_parameter":
                    return lambda data, *a: data
                raise pickle.UnpicklingError(
                    f"{path}: refusing to load {module}.{name} (only "
                    "tensors and dicts are read)"
                )

            def persistent_load(self, pid):
                # ("storage", storage type, key, location, numel)
                if not (isinstance(pid, tuple) and pid[0] == "storage"):
                    raise pickle.UnpicklingError(f"bad persistent id {pid}")
                kind = pid[1]
                if not isinstance(kind, str):  # newer: a dtype object name
                    kind = getattr(kind, "__name__", str(kind))
                return _Storage(storage_type(kind), pid[2])

        with zf.open(pkl[0]) as f:
            obj = Unpickler(f).load()
    return {k: np.asarray(v) for k, v in _unwrap_state_dict(obj).items()}


def _unwrap_state_dict(obj):
    """A state dict, also when wrapped as {"state_dict": ...} etc."""
    if isinstance(obj, dict):
        for key in ("state_dict", "generator", "model", "g"):
            if key in obj and isinstance(obj[key], dict):
                return _unwrap_state_dict(obj[key])
        return obj
    raise ValueError("the file does not contain a state dict")


def convert_pytorch_weights(state_dict, upsample="align_corners", unet=False):
    """Build a generator with the port's numerics and load its weights.

    Args:
        state_dict: `{key: array}` (see `read_pytorch_checkpoint`).
        upsample: "align_corners" (the port's `forward` default, its face
            models) or "half_pixel" (its `test.py` default,
            `--upsample_align False`).
        unet: build a UE generator instead (skip slices zero: same
            function, ready for fine-tuning).

    Returns:
        The `Generator`.
    """
    from uegan_tf.models.generator import build_generator

    generator = build_generator(
        unet=unet, upsample=upsample, norm_epsilon=PYTORCH_EPSILON
    )
    return load_pytorch_state_dict(generator, state_dict)


def convert_official_weights(path, unet=False):
    """Build a reference-numerics generator from an official checkpoint."""
    from uegan_tf.models.generator import build_generator

    generator = build_generator(unet=unet, upsample="tf1")
    return load_official_checkpoint(generator, path)


# ---------------------------------------------------------------------------
# Downloads of the released weights (needs internet; nothing is fetched
# implicitly).

OFFICIAL_STYLES = ("Hayao", "Shinkai", "Paprika")
OFFICIAL_URL = (
    "https://github.com/TachibanaYoshino/AnimeGANv2/raw/master/"
    "checkpoint/generator_{style}_weight/{file}"
)
PYTORCH_WEIGHTS = (
    "paprika",
    "face_paint_512_v1",
    "face_paint_512_v2",
    "celeba_distill",
)
PYTORCH_URL = (
    "https://github.com/bryandlee/animegan2-pytorch/raw/main/weights/{name}.pt"
)


def _fetch(url, dest):
    import urllib.error
    import urllib.request

    from uegan_tf.fileutil import atomic_path

    try:
        with (
            urllib.request.urlopen(url, timeout=60) as r,
            atomic_path(dest) as tmp,
        ):
            with open(tmp, "wb") as f:
                while chunk := r.read(1 << 20):
                    f.write(chunk)
    except (urllib.error.URLError, OSError) as e:
        reason = getattr(e, "reason", e)
        raise ConnectionError(f"cannot download {url}: {reason}") from None
    return dest


def download_weights(name, cache_dir):
    """Download released weights by name into `cache_dir`.

    Args:
        name: "Hayao", "Shinkai", "Paprika" (official TF1 checkpoints) or
            "paprika", "face_paint_512_v1", "face_paint_512_v2",
            "celeba_distill" (the PyTorch port's state dicts).
        cache_dir: download folder (files already there are reused).

    Returns:
        `(kind, path)`: ("tf1", checkpoint folder) or ("pytorch", .pt file).

    Raises:
        ValueError: unknown name.
        ConnectionError: no internet or the file moved.
    """
    import pathlib

    cache = pathlib.Path(cache_dir)
    if name in OFFICIAL_STYLES:
        folder = cache / f"generator_{name}_weight"
        state = folder / "checkpoint"
        if not state.exists():
            _fetch(OFFICIAL_URL.format(style=name, file="checkpoint"), state)
        text = state.read_text()
        prefix = text.split('"')[1]  # model_checkpoint_path: "Hayao-99.ckpt"
        for suffix in (".index", ".data-00000-of-00001"):
            target = folder / (prefix + suffix)
            if not target.exists():
                _fetch(
                    OFFICIAL_URL.format(style=name, file=prefix + suffix),
                    target,
                )
        return "tf1", folder
    if name in PYTORCH_WEIGHTS:
        target = cache / f"{name}.pt"
        if not target.exists():
            _fetch(PYTORCH_URL.format(name=name), target)
        return "pytorch", target
    raise ValueError(
        f"unknown weights {name!r}: choose from "
        f"{', '.join(OFFICIAL_STYLES + PYTORCH_WEIGHTS)}"
    )
