"""SavedModel, TFLite and ONNX export (`uegan_tf.export`).

The generator is a seeded, randomly initialised UE generator: realistic in
size and depth (2.2 M parameters, every layer type), with no weights to
download. Images are the package's bundled example photos (no
scikit-image: the `export` extra does not install it). TFLite models run on
the `ai-edge-litert` interpreter, an independent runtime. PSNRs compare
float outputs in [-1, 1] with a peak of 2 (`uexport.psnr`).

Slow: the tool end to end, `saved_model_cli run` and ONNX vs Keras at
1024² and 2048² (`--run-slow`).
"""

import collections
import json
import os
import pathlib
import subprocess
import sys

import keras
import numpy as np
import pytest
import tensorflow as tf
from conftest import run_tool

from uegan_tf import export as uexport
from uegan_tf.export.signatures import FLOAT_INPUT
from uegan_tf.image_ops import fit_cover
from uegan_tf.image_ops import from_unit_range
from uegan_tf.image_ops import to_unit_range
from uegan_tf.image_ops import to_unit_range_np
from uegan_tf.models import build_generator

REPO = pathlib.Path(__file__).resolve().parents[1]
SEED = 0
SIZE = (128, 128)
# Checks on the whole bundled photos; int8 is calibrated on their
# quadrants (other views: the package ships only these four photos).
EVAL_PHOTOS = uexport.SAMPLE_PHOTOS
# int8 (int8 convs, float layer norms and H/4 bottleneck) measured 33.0 dB
# calibrated on one quadrant of each bundled photo; as full int8 (before
# 2026-12-04) it measured 27.8 dB and its bar was 27. Over seeds 0-5 the
# current int8 measured 31.2-38.0 dB (docs/environment.md#tflite-and-
# litert).
MIN_PSNR = {"none": 45.0, "fp16": 40.0, "dynamic": 30.0, "int8": 30.0}
# The reference network's 21 CONV_2D (and 4 depthwise): the 10 convs and 4
# depthwise convs of the H/4 bottleneck (C_0, C_r1-4, C_1) stay float in
# the int8 model, the other 11 convs are int8.
INT8_CONVS, FLOAT_CONVS = 11, 14


def _env():
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    return env


@pytest.fixture(scope="module")
def generator():
    keras.utils.set_random_seed(SEED)
    return build_generator(unet=True)


@pytest.fixture(scope="module")
def photos():
    return {
        "eval": uexport.sample_photos(SIZE, EVAL_PHOTOS),
        "calibration": uexport.sample_photos(SIZE, EVAL_PHOTOS, quadrants=True)[
            ::4
        ],
    }


@pytest.fixture(scope="module")
def references(generator, photos):
    return uexport.keras_outputs(generator, photos["eval"])


@pytest.fixture(scope="module")
def saved_model(generator, tmp_path_factory):
    base = tmp_path_factory.mktemp("exports")
    return uexport.write_saved_model(
        generator, base, name="uegan", fixed_size=SIZE
    )


@pytest.fixture(scope="module")
def loaded(saved_model):
    return tf.saved_model.load(str(saved_model))


def _keras_uint8(generator, images):
    return from_unit_range(generator(to_unit_range(images))).numpy()


# ---------------------------------------------------------------------------
# SavedModel.
# ---------------------------------------------------------------------------


def test_versioned_layout(saved_model):
    assert saved_model.name == "1"
    assert saved_model.parent.name == "uegan"
    assert (saved_model / "saved_model.pb").exists()
    assert (saved_model / uexport.WARMUP_FILE).exists()
    # Nothing but the published version under the model folder.
    assert [p.name for p in saved_model.parent.iterdir()] == ["1"]
    assert uexport.next_version(saved_model.parent) == 2
    # Each weight is saved once: 2,235,712 float32 parameters.
    data = sum(p.stat().st_size for p in (saved_model / "variables").iterdir())
    assert 8.9e6 < data < 9.1e6


def test_signatures(saved_model):
    assert uexport.signature_names(saved_model) == sorted(
        [
            "serve_bytes",
            "serve_float",
            "serve_tflite",
            "serving_default",
        ]
    )


def test_saved_model_cli_lists_both_signatures(saved_model):
    result = subprocess.run(
        ["saved_model_cli", "show", "--dir", str(saved_model), "--all"],
        capture_output=True,
        text=True,
        timeout=300,
        env=_env(),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    for text in (
        "signature_def['serving_default']",
        "inputs['images']",
        "outputs['stylized']",
        "DT_UINT8",
        "(-1, -1, -1, 3)",
        "signature_def['serve_bytes']",
        "inputs['image_bytes']",
        "outputs['png_bytes']",
        "DT_STRING",
        "tensorflow/serving/predict",
    ):
        assert text in out, text


@pytest.mark.parametrize("shape", [(1, 45, 70), (2, 38, 54)])
def test_serving_default_equals_keras(generator, loaded, photos, shape):
    # Non-square, sides not multiples of 4: the graph pads and crops.
    n, h, w = shape
    images = np.stack([fit_cover(p, (h, w)) for p in photos["eval"][:n]])
    out = loaded.signatures["serving_default"](images=tf.constant(images))
    out = out["stylized"].numpy()
    assert out.dtype == np.uint8 and out.shape == (n, h, w, 3)
    ref = _keras_uint8(generator, images)
    diff = np.abs(out.astype(int) - ref.astype(int))
    assert diff.max() <= 1


def test_bytes_signature_jpeg_to_png(loaded, photos):
    image = fit_cover(photos["eval"][1], (50, 66))
    jpeg = tf.io.encode_jpeg(image, quality=90).numpy()
    png = tf.io.encode_png(fit_cover(photos["eval"][2], (36, 40)))
    out = loaded.signatures["serve_bytes"](
        image_bytes=tf.constant([jpeg, png.numpy()])
    )["png_bytes"].numpy()
    assert len(out) == 2
    assert out[0][:8] == b"\x89PNG\r\n\x1a\n"
    first = tf.io.decode_png(out[0]).numpy()
    assert first.shape == (50, 66, 3)
    assert tf.io.decode_png(out[1]).numpy().shape == (36, 40, 3)
    # Same pixels as the tensor signature on the decoded JPEG.
    decoded = tf.io.decode_jpeg(jpeg)[None]
    direct = loaded.signatures["serving_default"](images=decoded)
    np.testing.assert_array_equal(first, direct["stylized"].numpy()[0])


def test_float_signatures_equal_keras(generator, loaded, photos, references):
    image = fit_cover(photos["eval"][0], (50, 66))
    out = loaded.signatures["serve_float"](
        image=tf.constant(to_unit_range_np([image]))
    )["stylized"].numpy()
    ref = uexport.keras_outputs(generator, [image])[0]
    assert out.shape == (1, 50, 66, 3)
    assert uexport.psnr(out, ref) > 100
    fixed = loaded.signatures["serve_tflite"](
        image=tf.constant(to_unit_range_np(photos["eval"][:1]))
    )["stylized"].numpy()
    assert uexport.psnr(fixed, references[0]) > 100


def test_warmup_requests_parse(saved_model):
    logs = uexport.read_warmup_requests(saved_model / uexport.WARMUP_FILE)
    assert [
        log.predict_log.request.model_spec.signature_name for log in logs
    ] == ["serving_default", "serve_bytes"]
    request = logs[0].predict_log.request
    assert request.model_spec.name == "uegan"
    images = tf.make_ndarray(request.inputs["images"])
    assert images.dtype == np.uint8 and images.shape == (1, 64, 64, 3)
    data = tf.make_ndarray(logs[1].predict_log.request.inputs["image_bytes"])
    assert data.shape == (1,) and data[0][:4] == b"\x89PNG"


def test_session_loader_runs_warmup_requests(saved_model):
    # TF Serving's loader: the TF1 session path, fed by SignatureDef names.
    model = uexport.SessionModel(saved_model)
    try:
        assert set(model.signatures) >= {"serving_default", "serve_bytes"}
        for log in uexport.read_warmup_requests(
            saved_model / uexport.WARMUP_FILE
        ):
            request = log.predict_log.request
            inputs = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
            out = model.run(request.model_spec.signature_name, inputs)
            if "stylized" in out:
                assert out["stylized"].shape == (1, 64, 64, 3)
                assert out["stylized"].dtype == np.uint8
            else:
                png = tf.io.decode_png(out["png_bytes"][0]).numpy()
                assert png.shape == (64, 64, 3)
    finally:
        model.close()


def test_export_is_atomic(generator, tmp_path, monkeypatch):
    """A write that fails half-way leaves no version folder and no temp.

    The archive is replaced by one that writes part of a file and fails (a
    full disk): what `write_saved_model` must clean up. Tracing the real
    one would only cost time.
    """
    from uegan_tf.export import savedmodel

    class HalfWritten:
        def write_out(self, path, **kwargs):
            (pathlib.Path(path) / "saved_model.pb").write_bytes(b"\x08")
            raise OSError("disk full")

    monkeypatch.setattr(
        savedmodel, "build_export_archive", lambda *a: HalfWritten()
    )
    with pytest.raises(OSError, match="disk full"):
        uexport.write_saved_model(generator, tmp_path, version=3)
    assert list((tmp_path / "uegan").iterdir()) == []


def test_missing_converter_package_is_refused_before_writing(
    generator, tmp_path, monkeypatch
):
    """ONNX without tf2onnx: one ExportError naming the package, and
    nothing written (it used to fail after the SavedModel was written)."""
    from uegan_tf.export.formats import FORMATS

    row = FORMATS["onnx"]
    assert row.requires == ("tf2onnx", "onnxruntime")
    monkeypatch.setitem(
        FORMATS, "onnx", row._replace(requires=("uegan_no_such_package",))
    )
    options = uexport.ExportOptions(out_dir=str(tmp_path), formats=("onnx",))
    with pytest.raises(
        uexport.ExportError,
        match=r"^--format=onnx needs uegan_no_such_package "
        r"\(pip install uegan_no_such_package\)$",
    ):
        uexport.export_generator(generator, options, log=lambda m: None)
    assert list(tmp_path.iterdir()) == []


def test_existing_version_is_refused(generator, saved_model):
    with pytest.raises(FileExistsError):
        uexport.write_saved_model(
            generator, saved_model.parent.parent, version=1
        )


def test_parse_hw():
    assert uexport.parse_hw("dynamic") is None
    assert uexport.parse_hw("96x128") == (96, 128)
    assert uexport.parse_hw("256") == (256, 256)
    for bad in ("12x", "axb", "2x64", "1x2x3"):
        with pytest.raises(ValueError):
            uexport.parse_hw(bad)


# ---------------------------------------------------------------------------
# TFLite.
# ---------------------------------------------------------------------------


# The int8 converter calibrates through the deprecated tf.lite.Interpreter.
@pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated")
@pytest.mark.parametrize("quantize", ["none", "fp16", "dynamic", "int8"])
def test_tflite_psnr(saved_model, photos, references, quantize):
    pytest.importorskip("ai_edge_litert")
    content = uexport.convert_to_tflite(
        saved_model,
        quantize,
        uexport.FIXED_SIGNATURE,
        representative_images=photos["calibration"],
    )
    runner = uexport.TFLiteRunner(content, num_threads=2)
    assert type(runner.interpreter).__module__.startswith("ai_edge_litert")
    assert runner.shape_signature == [1, *SIZE, 3]
    result = uexport.compare(runner, photos["eval"], references)
    print(
        f"TFLite {quantize}: {len(content) / 1e6:.2f} MB, "
        f"PSNR {result['psnr_db']:.2f} dB"
    )
    assert result["psnr_db"] >= MIN_PSNR[quantize]
    # XNNPACK takes the whole fixed-size model as one partition: no op on
    # LiteRT's reference kernels, no hand-over between the two (the
    # model's speed on this CPU depends on it; docs/environment.md#tflite-
    # and-litert). Dynamic range: XNNPACK has no hybrid depthwise conv.
    delegation = uexport.xnnpack_delegation(content)
    if quantize == "dynamic":
        assert set(delegation["undelegated"]) == {"DEPTHWISE_CONV_2D"}
    else:
        assert delegation["partitions"] == 1, delegation
        assert not delegation["undelegated"], delegation
    if quantize == "int8":
        interpreter = runner.interpreter
        dtypes = {
            t["index"]: t["dtype"] for t in interpreter.get_tensor_details()
        }
        convs = collections.Counter(
            dtypes[op["inputs"][0]].__name__
            for op in interpreter._get_ops_details()
            if op["op_name"] in ("CONV_2D", "DEPTHWISE_CONV_2D")
        )
        assert convs == {"int8": INT8_CONVS, "float32": FLOAT_CONVS}, convs
        # Float bottleneck weights: 6.4 MB, against 9.0 MB for float32.
        assert len(content) < 7e6


def test_tflite_dynamic_size(saved_model, generator):
    content = uexport.convert_to_tflite(saved_model, "none")
    runner = uexport.TFLiteRunner(content)
    assert runner.shape_signature == [1, -1, -1, 3]
    for h, w in ((64, 64), (50, 66)):
        x = np.random.RandomState(h).uniform(-1, 1, (1, h, w, 3))
        x = x.astype(np.float32)
        ref = uexport.stylize_float(generator, tf.constant(x)).numpy()
        assert uexport.psnr(runner(x), ref) >= 45


def test_int8_requires_images(saved_model):
    with pytest.raises(ValueError, match="representative"):
        uexport.convert_to_tflite(saved_model, "int8", uexport.FIXED_SIGNATURE)


# ---------------------------------------------------------------------------
# ONNX.
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def onnx_model(saved_model):
    pytest.importorskip("tf2onnx")
    pytest.importorskip("onnxruntime")
    return uexport.convert_to_onnx(saved_model)


def test_onnx_psnr(onnx_model, generator, photos, references):
    runner = uexport.OnnxRunner(onnx_model)
    result = uexport.compare(runner, photos["eval"], references)
    print(f"ONNX: PSNR {result['psnr_db']:.2f} dB")
    assert result["psnr_db"] >= 45
    # Dynamic size, not a multiple of 4.
    image = fit_cover(photos["eval"][0], (50, 66))
    ref = uexport.keras_outputs(generator, [image])[0]
    assert uexport.psnr(runner(to_unit_range_np([image])), ref) >= 45


def _reduce_model(opset, keepdims, axes):
    """One ReduceMean of a 5-D float tensor over `axes` (an ONNX model)."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto
    from onnx import helper

    kwargs = {"keepdims": keepdims}
    inputs, inits = ["x"], []
    if opset >= 18:
        inputs.append("axes")
        inits.append(
            onnx.numpy_helper.from_array(np.array(axes, np.int64), "axes")
        )
    else:
        kwargs["axes"] = list(axes)
    graph = helper.make_graph(
        [helper.make_node("ReduceMean", inputs, ["y"], **kwargs)],
        "reduce",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None] * 5)],
        [
            helper.make_tensor_value_info(
                "y", TensorProto.FLOAT, [None] * (5 if keepdims else 2)
            )
        ],
        inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", opset)]
    )
    model.ir_version = 8
    return model


@pytest.mark.parametrize("opset, keepdims", [(17, 1), (18, 0)])
def test_onnx_split_reductions_accurate_at_size(opset, keepdims):
    """The cause of the size-dependent ONNX drift, and its fix.

    The layer norm's variance as tf2onnx exports it: ReduceMean over axes
    (1, 2, 4) of `[1, H, W, 1, C]` squared deviations. At 1024² x 32 ONNX
    Runtime's one float32 running sum came out 7.5 % low (0.37 % over the
    contiguous axes (1, 2, 3) of `[1, H, W, C]`); one axis at a time is
    exact to float32 rounding. Axes as attribute (opset 17) or input (18).
    """
    pytest.importorskip("onnxruntime")
    model = _reduce_model(opset, keepdims, (1, 2, 4))
    assert uexport.split_reductions(model) == 1
    assert [n.op_type for n in model.graph.node] == ["ReduceMean"] * 3
    x = np.random.default_rng(0).normal(size=(1, 1024, 1024, 1, 32))
    x = (0.5 * x * x).astype(np.float32)
    y = uexport.OnnxRunner(model.SerializeToString())(x)
    expected = x.astype(np.float64).mean()
    assert y.shape == ((1, 1, 1, 1, 1) if keepdims else (1, 1))
    assert abs(float(y.ravel()[0]) - expected) < 1e-5 * expected
    # Single-axis nodes are left alone.
    assert uexport.split_reductions(model) == 0


def _onnx_psnr_at(onnx_model, generator, size):
    """PSNR of the ONNX export vs Keras on a real photo of `size`².

    ONNX Runtime runs first, without its memory arena (6.1 vs 12.5 GB
    peak at 2048²), and is freed before Keras runs (10.9 GB at 2048²).
    """
    import onnxruntime as ort

    photo = uexport.sample_photos((size, size), ("astronaut",))[0]
    x = to_unit_range_np(np.stack([photo]))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    options.enable_cpu_mem_arena = False
    session = ort.InferenceSession(
        onnx_model, options, providers=["CPUExecutionProvider"]
    )
    out = session.run(None, {FLOAT_INPUT: x})[0]
    del session
    ref = uexport.keras_outputs(generator, [photo])[0]
    value = uexport.psnr(out, ref)
    print(f"ONNX {size}²: PSNR {value:.2f} dB")
    return value


@pytest.mark.slow  # 74 s on the loaded 2-core machine; the unit test
def test_onnx_psnr_1024(onnx_model, generator):  # above guards the cause
    # Was 47.3 dB before split_reductions (61.4 at 512²).
    assert _onnx_psnr_at(onnx_model, generator, 1024) >= 60


@pytest.mark.slow
def test_onnx_psnr_2048(onnx_model, generator):
    assert _onnx_psnr_at(onnx_model, generator, 2048) >= 60


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory):
    """A width-4 UE generator (every layer of the real one) and its ONNX.

    Its norm affines are random, as trained ones (a new layer's beta is
    zero, and tf2onnx then drops the `- beta`: the `onnx_model` case).
    """
    pytest.importorskip("tf2onnx")
    pytest.importorskip("onnxruntime")
    from uegan_tf.importers import generator_variables

    keras.utils.set_random_seed(SEED)
    tiny = build_generator(unet=True, width=4)
    rng = np.random.default_rng(SEED)
    for (_, role), variable in generator_variables(tiny).items():
        if role.endswith(("gamma", "beta")):
            mean = 1.0 if role.endswith("gamma") else 0.0
            variable.assign(rng.normal(mean, 0.2, variable.shape))
    saved = uexport.write_saved_model(
        tiny, tmp_path_factory.mktemp("tiny"), warmup_image=False
    )
    return tiny, uexport.convert_to_onnx(saved)


def _activation_passes(content):
    """`{op type: count}` of the nodes that make a full pass over memory.

    An activation: a float32 rank-4 tensor with H and W dynamic (ONNX
    shape inference: two of dims 1-3 unknown, NHWC or NCHW). Counted:
    nodes that write one, and reductions that read one (their first,
    innermost axis; the next axes read `[1, C, H, 1]`).
    """
    import onnx

    model = onnx.load_from_string(content)
    graph = onnx.shape_inference.infer_shapes(model).graph
    activations = set()
    for info in (*graph.input, *graph.value_info, *graph.output):
        tensor = info.type.tensor_type
        dims = tensor.shape.dim
        if (
            tensor.elem_type == onnx.TensorProto.FLOAT
            and len(dims) == 4
            and sum(not d.HasField("dim_value") for d in dims[1:]) >= 2
        ):
            activations.add(info.name)
    return dict(
        collections.Counter(
            n.op_type
            for n in model.graph.node
            if n.output[0] in activations
            or (n.op_type.startswith("Reduce") and n.input[0] in activations)
        )
    )


def test_onnx_graph_has_one_node_per_pad_and_norm(tiny_onnx):
    """What ONNX Runtime's speed relies on (`docs/environment.md#onnx`).

    Per layer norm: 2 reads (the mean's and the variance's innermost
    ReduceMean), Sub (x - mean), Mul (its square) and one
    BatchNormalization for the affine tail (tf2onnx's graph had Mul, Sub,
    Mul, Sub there). Per padded conv: one reflect Pad (tf2onnx's: 2-12
    Slices and 2-6 Concats). Transposes only at the NHWC input and output
    (3 channels each); the 2 Concats are the UE skips.
    """
    _, content = tiny_onnx
    assert _activation_passes(content) == {
        "Conv": 25,
        "ReduceMean": 48,
        "Sub": 24,
        "Mul": 24,
        "BatchNormalization": 24,
        "LeakyRelu": 20,
        "Pad": 17,  # 16 padded convs + the pad to a multiple of 4
        "Add": 3,  # residuals of C_r2-C_r4
        "Resize": 2,
        "Concat": 2,
        "Transpose": 2,
        "Reshape": 1,  # the channel count restated after the pad
        "Slice": 1,  # the crop back to H x W
        "Tanh": 1,
    }
    import onnx

    model = onnx.load_from_string(content)
    pads = [n for n in model.graph.node if n.op_type == "Pad"]
    modes = [
        onnx.helper.get_attribute_value(a)
        for n in pads
        for a in n.attribute
        if a.name == "mode"
    ]
    assert modes == [b"reflect"] * 17
    epsilons = [
        onnx.helper.get_attribute_value(a)
        for n in model.graph.node
        if n.op_type == "BatchNormalization"
        for a in n.attribute
        if a.name == "epsilon"
    ]
    assert epsilons == pytest.approx([1e-12] * 24)  # the reference's


def test_onnx_norms_fused_with_zero_beta(onnx_model):
    """A new generator's norms (beta = 0) are fused too: 24 of 24."""
    import onnx

    ops = collections.Counter(
        n.op_type for n in onnx.load_from_string(onnx_model).graph.node
    )
    assert ops["BatchNormalization"] == 24 and ops["Reciprocal"] == 0


def test_onnx_rewrites_keep_keras_outputs(tiny_onnx, photos):
    """The fused graph is the same network as Keras, to float32 rounding.

    Measured 133.9 / 135.4 dB at 128x128 / 50x66 (random norm affines).
    """
    tiny, content = tiny_onnx
    runner = uexport.OnnxRunner(content)
    images = [photos["eval"][0], fit_cover(photos["eval"][1], (50, 66))]
    for image in images:
        ref = uexport.keras_outputs(tiny, [image])[0]
        out = runner(to_unit_range_np([image]))
        assert out.shape == ref.shape
        value = uexport.psnr(out, ref)
        print(f"ONNX (fused) {out.shape[1:3]}: PSNR {value:.1f} dB")
        assert value >= 110


def _concat_model(pieces, axis=2):
    """`y = Concat(pieces)` along `axis` of x `[1, 2, 5, 4]`.

    `pieces` lists "x" or a row index: a one-row Slice of x, written as
    tf2onnx writes `layers.reflect_pad` (every axis listed; the row's end
    is the start + 1, counted from the end when negative).
    """
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto
    from onnx import helper

    nodes, inits, inputs = [], [], []
    for i, piece in enumerate(pieces):
        if piece == "x":
            inputs.append("x")
            continue
        starts, ends = [0, 0, 0, 0], [2**31 - 1] * 4
        starts[axis], ends[axis] = piece, piece + 1
        for name, value in (
            (f"s{i}", starts),
            (f"e{i}", ends),
            (f"a{i}", [0, 1, 2, 3]),
        ):
            inits.append(
                onnx.numpy_helper.from_array(np.array(value, np.int64), name)
            )
        nodes.append(
            helper.make_node(
                "Slice", ["x", f"s{i}", f"e{i}", f"a{i}"], [f"row{i}"]
            )
        )
        inputs.append(f"row{i}")
    nodes.append(helper.make_node("Concat", inputs, ["y"], axis=axis))
    graph = helper.make_graph(
        nodes,
        "pad",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 5, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        inits,
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", 17)]
    )
    model.ir_version = 8
    return model


@pytest.mark.parametrize(
    "pieces, pad",
    [
        ([2, 1, "x", -2, -3], (2, 2)),  # a 5x5 conv's pad
        (["x", -2], (0, 1)),  # a stride-2 conv's bottom pad
        ([0, "x"], None),  # edge (border row repeated): not a reflection
        ([1, 2, "x"], None),  # rows in the wrong order
    ],
)
def test_fuse_reflect_pads(pieces, pad):
    """Only slices-and-concats equal to a reflect pad become one Pad."""
    pytest.importorskip("onnxruntime")
    model = _concat_model(pieces)
    x = np.arange(40, dtype=np.float32).reshape(1, 2, 5, 4)
    expected = uexport.OnnxRunner(model.SerializeToString())(x)
    fused = uexport.fuse_reflect_pads(model)
    ops = [n.op_type for n in model.graph.node]
    if pad is None:
        assert fused == 0 and ops.count("Pad") == 0
        return
    assert fused == 1 and ops == ["Pad"]
    reflected = np.pad(x, ((0, 0), (0, 0), pad, (0, 0)), mode="reflect")
    np.testing.assert_array_equal(expected, reflected)
    out = uexport.OnnxRunner(model.SerializeToString())(x)
    np.testing.assert_array_equal(out, reflected)


# ---------------------------------------------------------------------------
# The whole export and the tool.
# ---------------------------------------------------------------------------


# The int8 converter calibrates through the deprecated tf.lite.Interpreter.
@pytest.mark.filterwarnings("ignore:.*tf.lite.Interpreter is deprecated")
def test_export_generator_report_without_scikit_image(
    generator, tmp_path, monkeypatch
):
    """The README's export (float32 and int8, no --representative_dir) on
    a plain `.[export]` install, and its report.

    scikit-image is only in the `dev` extra: calibration and checks must
    use the bundled photos. A small size and 2 calibration images keep the
    full-integer conversion fast.
    """
    pytest.importorskip("ai_edge_litert")
    # `import skimage` (and `from skimage import data`) now raises.
    monkeypatch.setitem(sys.modules, "skimage", None)
    monkeypatch.setitem(sys.modules, "skimage.data", None)
    logs = []
    options = uexport.ExportOptions(
        out_dir=str(tmp_path),
        name="demo",
        formats=("tflite",),
        quantize=("none", "int8"),
        fixed_size=(62, 70),
        calibration_steps=2,
        num_eval_images=2,
    )
    report = uexport.export_generator(generator, options, log=logs.append)
    assert report["version"] == 1
    assert (tmp_path / "demo" / "1" / "saved_model.pb").exists()
    saved_json = json.loads((tmp_path / "demo_v1_report.json").read_text())
    assert saved_json["models"] == report["models"]
    saved, tflite, int8 = report["models"]
    assert saved["format"] == "saved_model" and saved["psnr_db"] == "inf"
    assert tflite["path"] == str(tmp_path / "demo_v1_float32.tflite")
    assert (
        tflite["size_bytes"]
        == (tmp_path / "demo_v1_float32.tflite").stat().st_size
    )
    assert tflite["psnr_db"] >= 45
    # Dynamic size where the converter can, the fixed size (and why) where
    # it cannot; 62x70 is not a multiple of 4 (padded inside the graph).
    if "fallback" in tflite:
        assert tflite["input_shape"] == [1, 62, 70, 3]
        assert "Conv2D" in tflite["fallback"]
    else:
        assert tflite["input_shape"] == [1, -1, -1, 3]
    # int8 on 2 views of the bundled photos, checked on 2 real photos: a
    # finite PSNR, not a skipped check.
    calibration = "int8 calibration on 2 views of the bundled"
    assert any(calibration in m for m in logs), logs
    assert (int8["format"], int8["quantize"]) == ("tflite", "int8")
    assert int8["input_shape"] == tflite["input_shape"]
    assert (tmp_path / "demo_v1_int8.tflite").stat().st_size > 0
    assert report["eval_images"] == 2
    assert isinstance(int8["psnr_db"], float) and int8["psnr_db"] > 10
    # Only the version folder and the named files; no temporaries.
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "demo",
        "demo_v1_float32.tflite",
        "demo_v1_int8.tflite",
        "demo_v1_report.json",
    ]


def test_options_validate():
    with pytest.raises(ValueError, match="quantize"):
        uexport.ExportOptions(out_dir="x", quantize=("int4",)).validate()
    with pytest.raises(ValueError, match="format"):
        uexport.ExportOptions(out_dir="x", formats=("coreml",)).validate()
    with pytest.raises(ValueError, match="name"):
        uexport.ExportOptions(out_dir="x", name="a/b").validate()


def test_tool_bad_checkpoint_exits_2(tmp_path, capsys):
    code, _, err = run_tool(
        capsys,
        "export_tflite",
        f"--checkpoint={tmp_path / 'nothing_here'}",
        f"--out_dir={tmp_path / 'out'}",
    )
    assert code == 2
    assert (
        err == f"error: {tmp_path / 'nothing_here'}: no such file or folder\n"
    )
    assert not (tmp_path / "out").exists()


def test_tool_existing_version_exits_2(tmp_path, capsys):
    weights = tmp_path / "tiny.keras"
    build_generator(unet=False, width=4).save(weights)
    (tmp_path / "out" / "uegan" / "1").mkdir(parents=True)
    code, out, err = run_tool(
        capsys,
        "export_tflite",
        f"--checkpoint={weights}",
        f"--out_dir={tmp_path / 'out'}",
        "--version=1",
        "--format=savedmodel",
        "--num_eval_images=0",
    )
    assert code == 2
    assert out.startswith(f"loaded keras {weights} (fp32)\n")
    assert err == f"error: {tmp_path / 'out' / 'uegan' / '1'} already exists\n"
    assert [p.name for p in (tmp_path / "out" / "uegan").iterdir()] == ["1"]


@pytest.mark.parametrize(
    "args, message",
    [
        (["--size=64by48"], "--size: expected HxW or 'dynamic', got '64by48'"),
        (["--fixed_size=2x64"], "--fixed_size: sides must be >= 4, got 2x64"),
        (
            ["--quantize=none,int4"],
            "quantize must be in ('none', 'fp16', 'dynamic', 'int8'), "
            "got 'int4'",
        ),
        (
            ["--format=tflite,savedmodel"],
            "format must be in ('tflite', 'onnx'), got 'savedmodel'",
        ),
        (
            ["--precision=fp16"],
            "flag --precision=fp16: value should be one of <fp32|bf16>",
        ),
        (["--version=-1"], "version must be >= 0, got -1"),
        (["--calibration_steps=0"], "calibration_steps must be >= 1"),
        (["--nope"], "Unknown command line flag 'nope'"),
        (["photo.jpg"], "unexpected arguments: photo.jpg"),
        (["--checkpoint="], "--checkpoint is required"),
        (["--out_dir="], "--out_dir is required"),
    ],
)
def test_tool_bad_flags_are_one_line_exit_2(tmp_path, capsys, args, message):
    """Refused before a model is loaded (the checkpoint does not exist)."""
    code, out, err = run_tool(
        capsys,
        "export_tflite",
        f"--checkpoint={tmp_path / 'g.keras'}",
        f"--out_dir={tmp_path / 'out'}",
        *args,
    )
    assert (code, out, err) == (2, "", f"error: {message}\n")
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_tool_end_to_end(generator, tmp_path, capsys):
    weights = tmp_path / "generator.keras"
    generator.save(weights)
    out = tmp_path / "out"
    code, stdout, err = run_tool(
        capsys,
        "export_tflite",
        f"--checkpoint={weights}",
        f"--out_dir={out}",
        "--quantize=all",
        "--format=tflite,onnx",
        "--fixed_size=96x128",
        "--num_eval_images=3",
        "--calibration_steps=8",
    )
    assert code == 0, err[-3000:]
    assert "| tflite | int8 |" in stdout
    report = json.loads((out / "uegan_v1_report.json").read_text())
    models = {(m["format"], m["quantize"]): m for m in report["models"]}
    assert set(models) == {
        ("saved_model", "none"),
        ("tflite", "none"),
        ("tflite", "fp16"),
        ("tflite", "dynamic"),
        ("tflite", "int8"),
        ("onnx", "none"),
    }
    for m in models.values():
        assert pathlib.Path(m["path"]).exists()
        assert m["size_bytes"] > 0
    assert models[("tflite", "none")]["psnr_db"] >= 45
    assert models[("onnx", "none")]["psnr_db"] >= 45
    assert (out / "uegan" / "1" / uexport.WARMUP_FILE).exists()
    # A second run gets the next version.
    code, _, err = run_tool(
        capsys,
        "export_tflite",
        f"--checkpoint={weights}",
        f"--out_dir={out}",
        "--format=savedmodel",
        "--num_eval_images=0",
    )
    assert code == 0, err[-3000:]
    assert sorted(p.name for p in (out / "uegan").iterdir()) == ["1", "2"]


@pytest.mark.slow
def test_saved_model_cli_run_session_loader(saved_model, generator, tmp_path):
    # `saved_model_cli run` restores with the session loader TF Serving uses.
    images = np.random.RandomState(0).randint(0, 256, (1, 30, 42, 3))
    images = images.astype(np.uint8)
    np.save(tmp_path / "images.npy", images)
    result = subprocess.run(
        [
            "saved_model_cli",
            "run",
            "--dir",
            str(saved_model),
            "--tag_set",
            "serve",
            "--signature_def",
            "serving_default",
            "--inputs",
            f"images={tmp_path / 'images.npy'}",
            "--outdir",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env=_env(),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    out = np.load(tmp_path / "out" / "stylized.npy")
    ref = _keras_uint8(generator, images)
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 1
