"""Weight import: official TF1 checkpoints and the PyTorch port's state dicts.

The PyTorch check runs the port's network in numpy, written here from the
port's definition (NCHW, OIHW kernels, ReflectionPad2d, GroupNorm(1) with
eps 1e-5, F.interpolate's bilinear formulas), independent of our Keras
layers.
"""

import io
import pickle
import struct
import zipfile

import numpy as np
import pytest
import tensorflow as tf
from conftest import shared_path

from uegan_tf import importers
from uegan_tf.inference.stylizer import Stylizer
from uegan_tf.inference.stylizer import load_generator
from uegan_tf.models import build_generator

# ---------------------------------------------------------------------------
# A numpy reference of bryandlee/animegan2-pytorch `model.py`.


def _port_shapes():
    """The port's state-dict keys and shapes (OIHW)."""
    shapes = {}

    def cnl(prefix, cin, cout, k=3, groups=1, bias=False):
        shapes[f"{prefix}.1.weight"] = (cout, cin // groups, k, k)
        if bias:
            shapes[f"{prefix}.1.bias"] = (cout,)
        shapes[f"{prefix}.2.weight"] = (cout,)
        shapes[f"{prefix}.2.bias"] = (cout,)

    cnl("block_a.0", 3, 32, 7)
    cnl("block_a.1", 32, 64)
    cnl("block_a.2", 64, 64)
    cnl("block_b.0", 64, 128)
    cnl("block_b.1", 128, 128)
    cnl("block_c.0", 128, 128)
    for i, cin in zip(range(1, 5), (128, 256, 256, 256)):
        p = f"block_c.{i}.layers"
        b = 2 * cin
        cnl(f"{p}.0", cin, b, 1)
        cnl(f"{p}.1", b, b, 3, groups=b, bias=True)
        shapes[f"{p}.2.weight"] = (256, b, 1, 1)
        shapes[f"{p}.3.weight"] = (256,)
        shapes[f"{p}.3.bias"] = (256,)
    cnl("block_c.5", 256, 128)
    cnl("block_d.0", 128, 128)
    cnl("block_d.1", 128, 128)
    cnl("block_e.0", 128, 64)
    cnl("block_e.1", 64, 64)
    cnl("block_e.2", 64, 32, 7)
    shapes["out_layer.0.weight"] = (3, 32, 1, 1)
    return shapes


def _random_state_dict(seed=0):
    rng = np.random.default_rng(seed)
    sd = {}
    for key, shape in _port_shapes().items():
        if len(shape) == 4:
            fan_in = shape[1] * shape[2] * shape[3]
            sd[key] = rng.normal(0, np.sqrt(2 / fan_in), shape)
        elif key.endswith(".bias"):
            sd[key] = rng.normal(0, 0.1, shape)
        else:
            sd[key] = rng.normal(1, 0.2, shape)  # GroupNorm weight
        sd[key] = sd[key].astype(np.float32)
    return sd


def _conv(x, w, stride=1, groups=1, bias=None):
    """NCHW x OIHW valid convolution (no padding)."""
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(2, 3))
    win = win[:, :, ::stride, ::stride]  # [N, C, H', W', kh, kw]
    if groups == 1:
        y = np.einsum("nchwij,ocij->nohw", win, w)
    else:  # depthwise: one input channel per output channel
        y = np.einsum("nchwij,cij->nchw", win, w[:, 0])
    if bias is not None:
        y = y + bias[None, :, None, None]
    return y


def _group_norm(x, weight, bias, eps=1e-5):
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    var = x.var(axis=(1, 2, 3), keepdims=True)
    y = (x - mean) / np.sqrt(var + eps)
    return y * weight[None, :, None, None] + bias[None, :, None, None]


def _lrelu(x):
    return np.where(x > 0, x, 0.2 * x)


def _interp_axis(x, out_len, axis, align_corners):
    """PyTorch bilinear (linear per axis) interpolation along `axis`."""
    in_len = x.shape[axis]
    i = np.arange(out_len, dtype=np.float64)
    if align_corners:
        src = i * (in_len - 1) / (out_len - 1) if out_len > 1 else 0 * i
    else:
        src = np.maximum((i + 0.5) * in_len / out_len - 0.5, 0.0)
    lo = np.minimum(np.floor(src).astype(int), in_len - 1)
    hi = np.minimum(lo + 1, in_len - 1)
    frac = src - lo
    shape = [1] * x.ndim
    shape[axis] = out_len
    frac = frac.reshape(shape)
    return np.take(x, lo, axis) * (1 - frac) + np.take(x, hi, axis) * frac


def _resize(x, size, align_corners):
    x = _interp_axis(x, size[0], 2, align_corners)
    return _interp_axis(x, size[1], 3, align_corners)


def port_forward(sd, x, align_corners=True):
    """The port's Generator.forward in numpy (x: NCHW in [-1, 1])."""

    def cnl(prefix, t, k=3, stride=1, pad=None, groups=1):
        if pad is None:
            pad = ((k // 2, k // 2), (k // 2, k // 2))
        t = np.pad(t, ((0, 0), (0, 0), *pad), mode="reflect")
        t = _conv(
            t,
            sd[f"{prefix}.1.weight"],
            stride,
            groups,
            sd.get(f"{prefix}.1.bias"),
        )
        t = _group_norm(t, sd[f"{prefix}.2.weight"], sd[f"{prefix}.2.bias"])
        return _lrelu(t)

    s2 = ((0, 1), (0, 1))  # ReflectionPad2d((0, 1, 0, 1))
    t = cnl("block_a.0", x, 7)
    t = cnl("block_a.1", t, stride=2, pad=s2)
    t = cnl("block_a.2", t)
    half = t.shape[2:]
    t = cnl("block_b.0", t, stride=2, pad=s2)
    t = cnl("block_b.1", t)
    t = cnl("block_c.0", t)
    for i in range(1, 5):
        p = f"block_c.{i}.layers"
        r = cnl(f"{p}.0", t, 1, pad=((0, 0), (0, 0)))
        r = cnl(f"{p}.1", r, 3, groups=r.shape[1])
        r = _conv(r, sd[f"{p}.2.weight"])
        r = _group_norm(r, sd[f"{p}.3.weight"], sd[f"{p}.3.bias"])
        t = t + r if t.shape == r.shape else r
    t = cnl("block_c.5", t)
    size = half if align_corners else (t.shape[2] * 2, t.shape[3] * 2)
    t = cnl("block_d.1", cnl("block_d.0", _resize(t, size, align_corners)))
    size = x.shape[2:] if align_corners else (t.shape[2] * 2, t.shape[3] * 2)
    t = _resize(t, size, align_corners)
    t = cnl("block_e.2", cnl("block_e.1", cnl("block_e.0", t)), 7)
    return np.tanh(_conv(t, sd["out_layer.0.weight"]))


@pytest.fixture(scope="module")
def state_dict():
    return _random_state_dict(0)


@pytest.mark.parametrize(
    "mode,shape",
    [
        ("align_corners", (1, 3, 28, 36)),
        ("align_corners", (1, 3, 27, 33)),
        ("half_pixel", (1, 3, 28, 36)),
    ],
)
def test_pytorch_state_dict_matches_the_port(state_dict, mode, shape):
    x = np.random.default_rng(1).uniform(-1, 1, shape).astype(np.float32)
    expected = port_forward(
        {k: v.astype(np.float64) for k, v in state_dict.items()},
        x.astype(np.float64),
        align_corners=(mode == "align_corners"),
    )
    g = importers.convert_pytorch_weights(state_dict, upsample=mode)
    assert g.norm_epsilon == 1e-5 and g.upsample == mode
    ours = g(tf.constant(x.transpose(0, 2, 3, 1))).numpy()
    diff = np.abs(ours - expected.transpose(0, 2, 3, 1)).max()
    assert diff <= 1e-4, diff


def test_pytorch_weights_initialise_ue_exactly(state_dict):
    plain = importers.convert_pytorch_weights(state_dict)
    ue = importers.convert_pytorch_weights(state_dict, unet=True)
    assert ue.unet and ue.count_params() == 2_235_712
    x = tf.random.uniform([1, 32, 40, 3], -1, 1, seed=2)
    assert np.abs(plain(x).numpy() - ue(x).numpy()).max() <= 1e-5


def test_reference_interpolation_matches_torch():
    torch = pytest.importorskip("torch")
    x = np.random.default_rng(3).normal(size=(1, 2, 5, 7))
    for align, size in ((True, (9, 13)), (False, (10, 14))):
        ref = torch.nn.functional.interpolate(
            torch.tensor(x), size=size, mode="bilinear", align_corners=align
        ).numpy()
        np.testing.assert_allclose(_resize(x, size, align), ref, atol=1e-6)


def test_state_dict_errors(state_dict):
    g = build_generator(unet=False)
    broken = dict(state_dict)
    del broken["block_c.3.layers.1.1.bias"]
    with pytest.raises(ValueError, match="1 of 77 keys missing"):
        importers.load_pytorch_state_dict(g, broken)
    wrong = dict(state_dict, **{"block_a.0.1.weight": np.zeros((3, 3, 3, 3))})
    with pytest.raises(ValueError, match="does not fit"):
        importers.load_pytorch_state_dict(g, wrong)


# ---------------------------------------------------------------------------
# Reading .pt files without torch.


def _write_torch_zip(path, tensors):
    """Write `tensors` in torch.save's zip layout (data.pkl + data/<key>).

    The pickle is assembled opcode by opcode, as torch writes it: a dict of
    `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, False,
    OrderedDict())` with storages as persistent ids
    `("storage", torch.FloatStorage, key, "cpu", numel)`.
    """

    def unicode(s):
        b = s.encode()
        return b"X" + struct.pack("<I", len(b)) + b

    def tup(items):
        return b"(" + b"".join(items) + b"t"

    def binint(i):
        return b"J" + struct.pack("<i", i)

    out = io.BytesIO()
    out.write(b"\x80\x02}(")  # PROTO 2, EMPTY_DICT, MARK
    for key, (name, arr) in enumerate(tensors.items()):
        arr = np.ascontiguousarray(arr, np.float32)
        strides = [s // 4 for s in arr.strides]
        out.write(unicode(name))
        out.write(b"ctorch._utils\n_rebuild_tensor_v2\n(")
        out.write(
            tup(
                [
                    unicode("storage"),
                    b"ctorch\nFloatStorage\n",
                    unicode(str(key)),
                    unicode("cpu"),
                    binint(arr.size),
                ]
            )
            + b"Q"
        )  # BINPERSID
        out.write(binint(0))
        out.write(tup([binint(s) for s in arr.shape]))
        out.write(tup([binint(s) for s in strides]))
        out.write(b"\x89")  # NEWFALSE
        out.write(b"ccollections\nOrderedDict\n)R")
        out.write(b"tR")  # TUPLE, REDUCE
    out.write(b"u.")  # SETITEMS, STOP
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", out.getvalue())
        for key, arr in enumerate(tensors.values()):
            zf.writestr(
                f"archive/data/{key}",
                np.ascontiguousarray(arr, "<f4").tobytes(),
            )
    return path


def test_reads_the_torch_zip_format_without_torch(tmp_path, state_dict):
    path = _write_torch_zip(tmp_path / "paprika.pt", state_dict)
    read = importers.read_pytorch_checkpoint(str(path))
    assert set(read) == set(state_dict)
    for k, v in state_dict.items():
        np.testing.assert_array_equal(read[k], v)
    # A pickle that tries to call anything else is refused.
    evil = io.BytesIO()
    pickle.dump({"x": print}, evil, protocol=2)
    with zipfile.ZipFile(tmp_path / "evil.pt", "w") as zf:
        zf.writestr("archive/data.pkl", evil.getvalue())
    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        importers.read_pytorch_checkpoint(str(tmp_path / "evil.pt"))


def test_reads_a_real_torch_save_file(tmp_path, state_dict):
    torch = pytest.importorskip("torch")
    sd = {k: torch.tensor(v) for k, v in state_dict.items()}
    # A non-contiguous (transposed) tensor exercises strides.
    sd["extra.t"] = torch.arange(12.0).reshape(3, 4).t()
    torch.save(sd, tmp_path / "real.pt")
    read = importers.read_pytorch_checkpoint(str(tmp_path / "real.pt"))
    np.testing.assert_array_equal(read["extra.t"], sd["extra.t"].numpy())
    for k, v in state_dict.items():
        np.testing.assert_array_equal(read[k], v)


def test_import_tool_registers_a_style(
    tmp_path, state_dict, monkeypatch, capsys
):
    from conftest import run_tool

    from uegan_tf import cli

    monkeypatch.setenv("UEGAN_HOME", str(tmp_path / "home"))
    path = _write_torch_zip(tmp_path / "face.pt", state_dict)
    code, out, err = run_tool(
        capsys, "import_animeganv2", f"--source={path}", "--name=face"
    )
    assert code == 0, err[-1500:]
    folder = tmp_path / "home" / "styles" / "face"
    assert out == (
        f"converted {path} -> {folder} (upsample=align_corners, "
        "norm_epsilon=1e-05, unet=False)\n"
    )
    assert cli.main(["uegan", "list-styles"]) == 0
    face = [
        line
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("face ")
    ]
    assert face and "converted" in face[0] and "user" in face[0]
    g, info = load_generator("face")
    assert g.upsample == "align_corners" and g.norm_epsilon == 1e-5
    # The same name again needs --overwrite; --out writes a file instead.
    code, _, err = run_tool(capsys, "import_animeganv2", f"--source={path}")
    assert code == 2 and err.startswith("error: ") and "face" in err
    assert len(err.splitlines()) == 1
    code, out, _ = run_tool(
        capsys,
        "import_animeganv2",
        f"--source={path}",
        f"--out={tmp_path / 'unet.keras'}",
        "--unet",
        "--upsample=half_pixel",
    )
    assert code == 0
    assert out.endswith(
        "(upsample=half_pixel, norm_epsilon=1e-05, unet=True)\n"
    )
    assert (tmp_path / "unet.keras").stat().st_size > 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["--source=MISSING"], "no such file: MISSING"),
        ([], "give exactly one of --source and --download"),
        (
            ["--source=x.pt", "--download=Hayao"],
            "give exactly one of --source and --download",
        ),
        (
            ["--source=x.pt", "--upsample=tf1"],
            "flag --upsample=tf1: value should be one of "
            "<align_corners|half_pixel>",
        ),
        (["--source=x.pt", "extra"], "unexpected arguments: extra"),
    ],
)
def test_import_tool_errors_are_one_line_exit_2(
    tmp_path, capsys, args, message
):
    from conftest import run_tool

    args = [a.replace("MISSING", str(tmp_path / "missing.pt")) for a in args]
    message = message.replace("MISSING", str(tmp_path / "missing.pt"))
    code, out, err = run_tool(capsys, "import_animeganv2", *args)
    assert (code, out, err) == (2, "", f"error: {message}\n")


def test_official_checkpoint_through_the_stylize_path(tmp_path):
    root = shared_path("conformance", "animeganv2_tf1")
    vectors = np.load(root / "vectors.npz")
    stylizer = Stylizer(str(root / "generator_random_weight"), tile=0)
    assert stylizer.info["kind"] == "tf1_checkpoint"
    g = stylizer.generator
    assert (g.upsample, g.norm_epsilon, g.unet) == ("tf1", 1e-12, False)
    for case in ("astronaut_256x256", "random_132x200", "random_64x48"):
        out = g(vectors[f"input/{case}"]).numpy()
        assert np.abs(out - vectors[f"output/{case}"]).max() <= 1e-4
    # The converted model saved as a style reproduces them too.
    path = tmp_path / "official.keras"
    g.save(path)
    again, _ = load_generator(str(path))
    x = vectors["input/random_64x48"]
    assert (
        np.abs(again(x).numpy() - vectors["output/random_64x48"]).max() <= 1e-4
    )
