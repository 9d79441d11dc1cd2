"""Export a generator for serving: SavedModel, TFLite, ONNX, and checks.

The one library behind `tools/export_tflite.py` and `bench/`. Everything is
converted from one SavedModel, written by `keras.export.ExportArchive` (a
hand-written `tf.Module` wrapper converts to a TFLite model that outputs NaN
and cannot be loaded by the session-based loader TF Serving uses; see
`docs/environment.md#savedmodel-export`).

SavedModel signatures (pre- and post-processing are inside the graph):

- `serving_default`: "images" uint8 `[N, H, W, 3]` RGB, any H and W ->
  "stylized" uint8 `[N, H, W, 3]`;
- `serve_bytes`: "image_bytes" string `[N]` (each a JPEG/PNG/BMP/GIF) ->
  "png_bytes" string `[N]` (PNG of the same size). Images in one batch
  may differ in size. The "_bytes" suffix makes TF Serving's REST API
  exchange the values as `{"b64": ...}`;
- `serve_float`: "image" float32 `[1, H, W, 3]` in [-1, 1], any H and W ->
  "stylized" float32 in [-1, 1] (the source of dynamic-size TFLite and of
  ONNX);
- `serve_tflite`: the same with a fixed `[1, H, W, 3]` (the source of
  fixed-size TFLite models).

Every path accepts any H and W: the generator itself pads to a multiple of 4
(reflect, bottom/right) and crops back. `serving_default` runs
`inference.stylize_uint8`, the same uint8 -> uint8 function as the stylize
command.

PSNR convention: all PSNRs here compare float outputs in [-1, 1] with a peak
of 2.0 (the full output range), i.e. the uint8 scale before rounding.
"""

import dataclasses
import json
import math
import os
import pathlib
import statistics
import time

import keras
import numpy as np
import tensorflow as tf

from uegan_tf.fileutil import atomic_dir
from uegan_tf.fileutil import atomic_path
from uegan_tf.fileutil import clean_stale_temps
from uegan_tf.fileutil import output_dir_problem
from uegan_tf.fileutil import write_text_atomic
from uegan_tf.image_io import find_images
from uegan_tf.image_io import load_rgb
from uegan_tf.image_io import resize_short_side
from uegan_tf.inference import stylize_uint8
from uegan_tf.testing import synthetic_image

SERVING_DEFAULT = "serving_default"
BYTES_SIGNATURE = "serve_bytes"
FLOAT_SIGNATURE = "serve_float"
FIXED_SIGNATURE = "serve_tflite"
IMAGES_INPUT = "images"
BYTES_INPUT = "image_bytes"
FLOAT_INPUT = "image"
IMAGES_OUTPUT = "stylized"
BYTES_OUTPUT = "png_bytes"

QUANTIZATIONS = ("none", "fp16", "dynamic", "int8")
# File-name label of each quantization mode.
QUANT_LABELS = {
    "none": "float32",
    "fp16": "fp16",
    "dynamic": "dynamic",
    "int8": "int8",
}
FORMATS = ("tflite", "onnx")
WARMUP_FILE = os.path.join("assets.extra", "tf_serving_warmup_requests")
# The generator downsamples twice by 2.
SIZE_MULTIPLE = 4
PSNR_PEAK = 2.0
ONNX_OPSET = 17
DEFAULT_FIXED_SIZE = (256, 256)

# Photos shipped inside the package (`uegan_tf/examples/`, in the wheel),
# used when no photo folder is given: calibration and checks then run on
# real photographs on a plain `pip install ".[export]"`. scikit-image (a
# `dev` extra only) must not be needed here (issue 14).
EXAMPLES_DIR = pathlib.Path(__file__).resolve().parent / "examples"
SAMPLE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


class ExportError(Exception):
    """An export that cannot be done; `str()` is a one-line reason."""


# ---------------------------------------------------------------------------
# Options.
# ---------------------------------------------------------------------------


def parse_size(text):
    """Parse "HxW" (or "N" for NxN) into `(H, W)`; "dynamic" gives None.

    Raises:
        ValueError: anything else, or a side below 4.
    """
    text = str(text).strip().lower()
    if text in ("dynamic", "none", ""):
        return None
    parts = text.split("x")
    try:
        if len(parts) == 1:
            size = (int(parts[0]), int(parts[0]))
        elif len(parts) == 2:
            size = (int(parts[0]), int(parts[1]))
        else:
            raise ValueError
    except ValueError:
        raise ValueError(
            f"size must be HxW or 'dynamic', got {text!r}"
        ) from None
    if min(size) < SIZE_MULTIPLE:
        raise ValueError(f"size sides must be >= {SIZE_MULTIPLE}, got {text}")
    return size


@dataclasses.dataclass(frozen=True)
class ExportOptions:
    """What `export_generator` writes.

    Attributes:
        out_dir: base folder; the SavedModel goes to
            `<out_dir>/<name>/<version>/`, the other files next to
            `<out_dir>/<name>/` as `<name>_v<version>_<label>.<ext>`.
        name: model name (TF Serving's model name).
        version: integer version; None for one more than the largest.
        formats: subset of `FORMATS` to convert to (empty: SavedModel only).
        quantize: TFLite modes, a subset of `QUANTIZATIONS`.
        size: TFLite input `(H, W)`, or None for a dynamic size (with a
            fixed-size fallback when conversion of the dynamic graph fails).
        fixed_size: `(H, W)` of the `serve_tflite` signature when `size` is
            None, and of the int8 calibration crops.
        representative_dir: photos for int8 calibration (None: the
            bundled example photos).
        val_dir: photos for the PSNR checks (None: `representative_dir`).
        calibration_steps: at most this many calibration images.
        num_eval_images: at most this many check images.
        warmup: write TF Serving warmup requests into `assets.extra/`.
        num_threads: TFLite / ONNX Runtime threads in the checks.
    """

    out_dir: str
    name: str = "uegan"
    version: int | None = None
    formats: tuple = ("tflite",)
    quantize: tuple = ("none",)
    size: tuple | None = None
    fixed_size: tuple = DEFAULT_FIXED_SIZE
    representative_dir: str | None = None
    val_dir: str | None = None
    calibration_steps: int = 100
    num_eval_images: int = 8
    warmup: bool = True
    num_threads: int = 2

    def validate(self):
        """Raise `ValueError` naming the first bad value."""
        if not self.out_dir:
            raise ValueError("out_dir is required")
        problem = output_dir_problem(self.out_dir)
        if problem:
            raise ValueError(f"--out_dir: {problem}")
        if not self.name or "/" in self.name or self.name.startswith("."):
            raise ValueError(f"bad model name {self.name!r}")
        if self.version is not None and self.version < 0:
            raise ValueError(f"version must be >= 0, got {self.version}")
        for f in self.formats:
            if f not in FORMATS:
                raise ValueError(f"format must be in {FORMATS}, got {f!r}")
        for q in self.quantize:
            if q not in QUANTIZATIONS:
                raise ValueError(
                    f"quantize must be in {QUANTIZATIONS}, got {q!r}"
                )
        for side in (self.size or ()) + tuple(self.fixed_size):
            if side < SIZE_MULTIPLE:
                raise ValueError(f"image sides must be >= 4, got {side}")
        if self.calibration_steps < 1:
            raise ValueError("calibration_steps must be >= 1")
        if self.num_eval_images < 0:
            raise ValueError("num_eval_images must be >= 0")
        return self

    @property
    def tflite_fixed_size(self):
        """The `(H, W)` of the fixed-size TFLite signature."""
        return tuple(self.size or self.fixed_size)


# ---------------------------------------------------------------------------
# The SavedModel.
# ---------------------------------------------------------------------------


def stylize_float(generator, x):
    """The generator on `[N, H, W, 3]` float in [-1, 1], any H and W.

    The generator pads H and W to a multiple of 4 itself (reflect,
    bottom/right; ONNX- and TFLite-safe) and crops back, so every signature
    accepts any size.

    Returns:
        float32 `[N, H, W, 3]` in [-1, 1].
    """
    return generator(x, training=False)


def build_export_archive(generator, fixed_size=DEFAULT_FIXED_SIZE):
    """The `ExportArchive` with the four signatures (module docstring).

    Args:
        generator: a built `uegan_tf.models.Generator`.
        fixed_size: `(H, W)` of the `serve_tflite` signature.

    Returns:
        A `keras.export.ExportArchive`, ready for `write_out`.
    """
    archive = keras.export.ExportArchive()
    # No `archive.track(generator)`: `write_out` already saves every
    # variable the endpoints use (as plain tf.Variables), and tracking the
    # model as well saves each weight a second time through its Keras
    # variable (Keras 3.15), doubling the SavedModel (17.9 vs 8.9 MB for
    # the UE generator). Both loaders and the TFLite converter read the
    # untracked archive correctly (tests/test_export.py).
    fh, fw = fixed_size

    def serve_images(images):
        # The uint8 -> uint8 function the stylize command runs.
        return {IMAGES_OUTPUT: stylize_uint8(generator, images)}

    def serve_bytes(image_bytes):
        def one(data):
            # Animated GIFs give their first frame; 16-bit PNGs are scaled.
            image = tf.io.decode_image(
                data, channels=3, dtype=tf.uint8, expand_animations=False
            )
            return tf.io.encode_png(stylize_uint8(generator, image[None])[0])

        # map_fn: the images of one request can differ in size.
        png = tf.map_fn(
            one,
            image_bytes,
            fn_output_signature=tf.TensorSpec([], tf.string),
        )
        return {BYTES_OUTPUT: png}

    def serve_float(image):
        return {IMAGES_OUTPUT: stylize_float(generator, image)}

    archive.add_endpoint(
        name=SERVING_DEFAULT,
        fn=serve_images,
        input_signature=[
            tf.TensorSpec([None, None, None, 3], tf.uint8, name=IMAGES_INPUT)
        ],
    )
    archive.add_endpoint(
        name=BYTES_SIGNATURE,
        fn=serve_bytes,
        input_signature=[tf.TensorSpec([None], tf.string, name=BYTES_INPUT)],
    )
    archive.add_endpoint(
        name=FLOAT_SIGNATURE,
        fn=serve_float,
        input_signature=[
            tf.TensorSpec([1, None, None, 3], tf.float32, name=FLOAT_INPUT)
        ],
    )
    archive.add_endpoint(
        name=FIXED_SIGNATURE,
        fn=serve_float,
        input_signature=[
            tf.TensorSpec([1, fh, fw, 3], tf.float32, name=FLOAT_INPUT)
        ],
    )
    return archive


def existing_versions(model_dir):
    """Integer version folders under `model_dir`, ascending."""
    model_dir = pathlib.Path(model_dir)
    if not model_dir.is_dir():
        return []
    return sorted(
        int(p.name)
        for p in model_dir.iterdir()
        if p.is_dir() and p.name.isdigit()
    )


def next_version(model_dir):
    """One more than the largest integer version under `model_dir` (or 1)."""
    versions = existing_versions(model_dir)
    return versions[-1] + 1 if versions else 1


def write_saved_model(
    generator,
    base_dir,
    name="uegan",
    version=None,
    fixed_size=DEFAULT_FIXED_SIZE,
    warmup_image=None,
):
    """Write `<base_dir>/<name>/<version>/` atomically.

    The SavedModel (and its warmup requests) is written into a hidden
    temporary folder next to the final one and renamed when complete, so
    TF Serving, which polls `<base_dir>/<name>/` for integer folders, never
    sees a half-written version.

    Args:
        generator: a built generator.
        base_dir: the export base folder.
        name: model name.
        version: integer version; None for the next free one.
        fixed_size: `(H, W)` of the `serve_tflite` signature.
        warmup_image: uint8 `[H, W, 3]` for the warmup requests; None for a
            small synthetic image; False to write none.

    Returns:
        The final version folder (a `pathlib.Path`).

    Raises:
        FileExistsError: that version already exists.
    """
    model_dir = pathlib.Path(base_dir) / name
    if version is None:
        version = next_version(model_dir)
    final = model_dir / str(int(version))
    if final.exists():
        raise FileExistsError(f"{final} already exists")
    archive = build_export_archive(generator, fixed_size)
    with atomic_dir(final) as tmp:
        archive.write_out(tmp, verbose=False)
        if warmup_image is not False:
            image = (
                synthetic_image(64, 64)
                if warmup_image is None
                else warmup_image
            )
            write_warmup_requests(
                os.path.join(tmp, WARMUP_FILE), warmup_requests(name, image)
            )
    return final


def signature_names(saved_model_dir):
    """Names of the SavedModel's signatures (read from `saved_model.pb`)."""
    from tensorflow.core.protobuf import saved_model_pb2

    proto = saved_model_pb2.SavedModel()
    proto.ParseFromString(
        (pathlib.Path(saved_model_dir) / "saved_model.pb").read_bytes()
    )
    return sorted(
        k
        for meta in proto.meta_graphs
        for k in meta.signature_def
        if not k.startswith("__")
    )


# ---------------------------------------------------------------------------
# TF Serving warmup requests.
# ---------------------------------------------------------------------------


def warmup_requests(model_name, image):
    """PredictionLogs warming up both image signatures with `image`.

    TF Serving replays them when it loads a version, so that the first
    real request does not pay for graph initialisation.

    Args:
        model_name: the served model name.
        image: uint8 `[H, W, 3]`.

    Returns:
        A list of `tensorflow_serving.apis.prediction_log_pb2.PredictionLog`.

    Raises:
        ExportError: `tensorflow-serving-api` is not installed.
    """
    try:
        from tensorflow_serving.apis import predict_pb2
        from tensorflow_serving.apis import prediction_log_pb2
    except ImportError:
        raise ExportError(
            "warmup requests need tensorflow-serving-api (pip install "
            "tensorflow-serving-api), or export without them (--nowarmup)"
        ) from None
    image = np.asarray(image, dtype=np.uint8)
    png = tf.io.encode_png(image).numpy()
    logs = []
    for signature, key, value in (
        (SERVING_DEFAULT, IMAGES_INPUT, image[None]),
        (BYTES_SIGNATURE, BYTES_INPUT, np.array([png], dtype=object)),
    ):
        request = predict_pb2.PredictRequest()
        request.model_spec.name = model_name
        request.model_spec.signature_name = signature
        request.inputs[key].CopyFrom(tf.make_tensor_proto(value))
        logs.append(
            prediction_log_pb2.PredictionLog(
                predict_log=prediction_log_pb2.PredictLog(request=request)
            )
        )
    return logs


def write_warmup_requests(path, logs):
    """Write PredictionLogs as TF Serving's warmup TFRecord file."""
    pathlib.Path(path).parent.mkdir(parents=True, exist_ok=True)
    with tf.io.TFRecordWriter(str(path)) as writer:
        for log in logs:
            writer.write(log.SerializeToString())


def read_warmup_requests(path):
    """Parse a warmup file back into `PredictionLog`s."""
    from tensorflow_serving.apis import prediction_log_pb2

    logs = []
    for record in tf.data.TFRecordDataset(str(path)):
        log = prediction_log_pb2.PredictionLog()
        log.ParseFromString(record.numpy())
        logs.append(log)
    return logs


class SessionModel:
    """A SavedModel run through the TF1 session loader, as TF Serving does.

    TF Serving loads SavedModels with the session-based C++ loader and feeds
    the tensors named in each SignatureDef; `tf.saved_model.load` (TF2) is a
    different code path. A model that this class can run is one that the
    server's loader can restore (the `tf.Module` failure mode in
    `docs/environment.md#savedmodel-export` fails here too).

    Args:
        saved_model_dir: a SavedModel folder.
        tags: MetaGraph tags.
    """

    def __init__(self, saved_model_dir, tags=("serve",)):
        self.graph = tf.Graph()
        self.session = tf.compat.v1.Session(graph=self.graph)
        with self.graph.as_default():
            meta = tf.compat.v1.saved_model.loader.load(
                self.session, list(tags), str(saved_model_dir)
            )
        self.signatures = {
            k: v
            for k, v in meta.signature_def.items()
            if not k.startswith("__")
        }

    def run(self, signature_name, inputs):
        """Run a signature on numpy inputs.

        Args:
            signature_name: a SignatureDef key.
            inputs: dict input name -> numpy value.

        Returns:
            dict output name -> numpy value.

        Raises:
            KeyError: unknown signature or input name.
        """
        sig = self.signatures[signature_name]
        feeds = {sig.inputs[k].name: v for k, v in inputs.items()}
        names = sorted(sig.outputs)
        values = self.session.run(
            [sig.outputs[n].name for n in names], feed_dict=feeds
        )
        return dict(zip(names, values))

    def close(self):
        self.session.close()


# ---------------------------------------------------------------------------
# Photos for calibration and checks.
# ---------------------------------------------------------------------------


def fit_image(rgb, size):
    """Resize (short side, aspect kept) and centre-crop uint8 RGB to `size`.

    Args:
        rgb: uint8 `[H, W, 3]`.
        size: `(H, W)`.

    Returns:
        uint8 `[size[0], size[1], 3]`.
    """
    th, tw = size
    h, w = rgb.shape[:2]
    # Scale so that both sides cover the target, then crop the centre.
    scale = max(th / h, tw / w)
    short = max(1, math.ceil(min(h, w) * scale))
    rgb = resize_short_side(rgb, short)
    h, w = rgb.shape[:2]
    top, left = (h - th) // 2, (w - tw) // 2
    return np.ascontiguousarray(rgb[top : top + th, left : left + tw])


def load_photos(folder, size, max_images):
    """Up to `max_images` photos from a folder, fitted to `size`.

    Unreadable files are skipped.

    Raises:
        ExportError: no readable image in `folder`.
    """
    photos = []
    try:
        paths = find_images(folder)
    except FileNotFoundError as e:
        raise ExportError(str(e)) from None
    for path in paths:
        try:
            photos.append(fit_image(load_rgb(path, min_side=8), size))
        except Exception:  # a bad photo is not fatal
            continue
        if len(photos) >= max_images:
            break
    if not photos:
        raise ExportError(f"no readable images in {folder}")
    return photos


def sample_photos(size, names=SAMPLE_PHOTOS, quadrants=False):
    """The bundled example photos, as uint8 RGB fitted to `size`.

    Args:
        size: `(H, W)`.
        names: example photo stems (`uegan_tf/examples/<name>.jpg`).
        quadrants: instead of each whole photo, its four quadrants (each
            fitted to `size`): four times as many, different views for int8
            calibration from the only four photos the package ships.

    Raises:
        ExportError: an example photo is missing (a broken install).
    """
    photos = []
    for name in names:
        path = EXAMPLES_DIR / f"{name}.jpg"
        try:
            image = load_rgb(path, min_side=8)
        except (OSError, ValueError) as e:
            raise ExportError(f"bundled example photo: {e}") from None
        if not quadrants:
            photos.append(fit_image(image, size))
            continue
        h, w = image.shape[0] // 2, image.shape[1] // 2
        for top in (0, h):
            for left in (0, w):
                crop = image[top : top + h, left : left + w]
                photos.append(fit_image(crop, size))
    return photos


def to_float(images):
    """uint8 images (a list or array) -> float32 `[N, H, W, 3]` in [-1, 1]."""
    return np.asarray(images, dtype=np.float32) / 127.5 - 1.0


# ---------------------------------------------------------------------------
# TFLite.
# ---------------------------------------------------------------------------


def representative_dataset(images, signature_input=FLOAT_INPUT):
    """A converter `representative_dataset` over uint8 `[H, W, 3]` images.

    Each image is one calibration step (batch 1, float in [-1, 1]).
    """

    def gen():
        for image in images:
            yield {signature_input: to_float([image])}

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
            f"{_first_error_line(e)}"
        ) from e


def _first_error_line(error):
    # Converter errors are MLIR dumps of hundreds of lines; keep the first
    # message, without its `loc(callsite(...))` prefix, and the offending
    # op's operand types from the "Details:" section when there is one.
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    message = None
    for line in lines:
        if "error:" in line:
            message = line.split("error:", 1)[1].strip()
            if message.startswith("loc(") and "): " in message:
                message = message.rsplit("): ", 1)[1]
            break
    if message is None:
        message = lines[0] if lines else type(error).__name__
    details = [line for line in lines if line.startswith("tf.")]
    if details:
        message += f" ({details[0].split(' -> ')[0]})"
    return message[:300]


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


# ---------------------------------------------------------------------------
# ONNX.
# ---------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------
# Checks.
# ---------------------------------------------------------------------------


def psnr(a, b, peak=PSNR_PEAK):
    """PSNR in dB between two arrays (inf when identical).

    Args:
        a, b: arrays of one shape.
        peak: the value range (2.0 for [-1, 1]; 255 for uint8).
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"shape mismatch {a.shape} vs {b.shape}")
    mse = float(np.mean((a - b) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(peak * peak / mse)


def keras_outputs(generator, images):
    """Keras reference outputs, one float32 `[1, H, W, 3]` per image."""

    @tf.function(autograph=False)
    def fn(x):
        return stylize_float(generator, x)

    return [fn(tf.constant(to_float([im]))).numpy() for im in images]


def compare(run, images, references):
    """PSNR and max abs error of `run` against reference outputs.

    The PSNR pools the squared error over all images.

    Args:
        run: callable float32 `[1, H, W, 3]` -> float32.
        images: uint8 `[H, W, 3]` images.
        references: the matching reference outputs.

    Returns:
        dict "psnr_db", "max_abs_err" (on [-1, 1]), "images".
    """
    sq, count, max_err = 0.0, 0, 0.0
    for image, ref in zip(images, references):
        out = np.asarray(run(to_float([image])), dtype=np.float64)
        if out.shape != ref.shape:
            raise ExportError(f"output shape {out.shape} != {ref.shape}")
        diff = out - ref
        sq += float(np.sum(diff * diff))
        count += diff.size
        max_err = max(max_err, float(np.max(np.abs(diff))))
    mse = sq / max(count, 1)
    value = math.inf if mse == 0 else 10 * math.log10(PSNR_PEAK**2 / mse)
    return {"psnr_db": value, "max_abs_err": max_err, "images": len(images)}


def saved_model_runner(saved_model_dir, signature=FLOAT_SIGNATURE):
    """A float runner over a SavedModel float signature (TF2 loader)."""
    loaded = tf.saved_model.load(str(saved_model_dir))
    fn = loaded.signatures[signature]

    def run(x):
        out = fn(**{FLOAT_INPUT: tf.constant(x, tf.float32)})
        return out[IMAGES_OUTPUT].numpy()

    run.loaded = loaded  # keep the restored object alive
    return run


def time_runs(run, x, warmup=2, repeats=10):
    """Median and all latencies (seconds) of `run(x)` after warm-up."""
    for _ in range(warmup):
        run(x)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(x)
        times.append(time.perf_counter() - start)
    return statistics.median(times), times


# ---------------------------------------------------------------------------
# The whole export.
# ---------------------------------------------------------------------------


def _json_number(value, digits=2):
    if value is None:
        return None
    if math.isinf(value):
        return "inf"
    return round(value, digits)


def _dir_size(path):
    return sum(
        p.stat().st_size for p in pathlib.Path(path).rglob("*") if p.is_file()
    )


def export_generator(generator, options, log=print):
    """SavedModel, then TFLite / ONNX from it, then checks and a report.

    Writes `<out_dir>/<name>/<version>/` (SavedModel with warmup requests),
    `<out_dir>/<name>_v<version>_<label>.tflite` per quantization mode,
    `<out_dir>/<name>_v<version>.onnx` and the report
    `<out_dir>/<name>_v<version>_report.json`; every file atomically.

    With a dynamic `size`, each TFLite mode is first converted from
    `serve_float`; if the converter cannot handle the dynamic graph, it is
    converted from the fixed-size `serve_tflite` signature instead and the
    report records why ("fallback").

    Args:
        generator: a built generator.
        options: `ExportOptions`.
        log: one-line progress messages.

    Returns:
        The report (a JSON-ready dict).

    Raises:
        ExportError: a conversion failed, or no photos for int8.
        FileExistsError: the version already exists.
        ValueError: invalid options.
    """
    options.validate()
    out_dir = pathlib.Path(options.out_dir)
    fixed = options.tflite_fixed_size
    want_tflite = "tflite" in options.formats and options.quantize

    # Photos first: a missing folder should fail before minutes of work.
    val_photos, calib_photos = [], []
    needs_calibration = want_tflite and "int8" in options.quantize
    if options.representative_dir:
        calib_photos = load_photos(
            options.representative_dir, fixed, options.calibration_steps
        )
    elif needs_calibration:
        # Whole photos and their quadrants: 20 calibration images.
        calib_photos = (
            sample_photos(fixed) + sample_photos(fixed, quadrants=True)
        )[: options.calibration_steps]
        log(
            f"int8 calibration on {len(calib_photos)} views of the bundled "
            "example photos (no --representative_dir)"
        )
    if options.num_eval_images:
        source = options.val_dir or options.representative_dir
        if source:
            val_photos = load_photos(source, fixed, options.num_eval_images)
        else:
            val_photos = sample_photos(fixed)[: options.num_eval_images]

    sample = val_photos[0] if val_photos else None
    if sample is not None:
        sample = fit_image(sample, (64, 64))
    # Temporaries of a killed earlier export (a version folder, .tflite).
    for folder in (out_dir, out_dir / options.name):
        for path in clean_stale_temps(folder):
            log(f"removed {path}, left by an interrupted export")
    saved = write_saved_model(
        generator,
        out_dir,
        options.name,
        options.version,
        fixed_size=fixed,
        warmup_image=(sample if options.warmup else False),
    )
    version = int(saved.name)
    stem = f"{options.name}_v{version}"
    log(f"SavedModel: {saved}")
    report = {
        "name": options.name,
        "version": version,
        "saved_model": str(saved),
        "saved_model_bytes": _dir_size(saved),
        "signatures": signature_names(saved),
        "warmup_requests": (
            str(saved / WARMUP_FILE) if options.warmup else None
        ),
        "psnr": "float outputs in [-1, 1], peak 2.0, pooled over images",
        "eval_images": len(val_photos),
        "eval_size": list(fixed),
        "models": [],
    }

    references = keras_outputs(generator, val_photos)

    def check(entry, run):
        if val_photos:
            result = compare(run, val_photos, references)
            entry["psnr_db"] = _json_number(result["psnr_db"])
            entry["max_abs_err"] = _json_number(result["max_abs_err"], 5)
        report["models"].append(entry)
        log(_describe(entry))

    check(
        {
            "format": "saved_model",
            "quantize": "none",
            "path": str(saved),
            "size_bytes": report["saved_model_bytes"],
            "input_shape": [1, -1, -1, 3],
        },
        saved_model_runner(saved),
    )

    if want_tflite:
        dynamic_ok = options.size is None
        for mode in options.quantize:
            content, entry = None, {"format": "tflite", "quantize": mode}
            if dynamic_ok:
                try:
                    content = convert_to_tflite(
                        saved, mode, FLOAT_SIGNATURE, calib_photos
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
                    saved, mode, FIXED_SIGNATURE, calib_photos
                )
            path = out_dir / f"{stem}_{QUANT_LABELS[mode]}.tflite"
            with atomic_path(path) as tmp:
                pathlib.Path(tmp).write_bytes(content)
            runner = TFLiteRunner(content, options.num_threads)
            entry.update(
                path=str(path),
                size_bytes=len(content),
                input_shape=runner.shape_signature,
            )
            check(entry, runner)

    if "onnx" in options.formats:
        content = convert_to_onnx(saved)
        path = out_dir / f"{stem}.onnx"
        with atomic_path(path) as tmp:
            pathlib.Path(tmp).write_bytes(content)
        check(
            {
                "format": "onnx",
                "quantize": "none",
                "path": str(path),
                "size_bytes": len(content),
                "input_shape": [1, -1, -1, 3],
                "opset": ONNX_OPSET,
            },
            OnnxRunner(content, options.num_threads),
        )

    report_path = out_dir / f"{stem}_report.json"
    write_text_atomic(report_path, json.dumps(report, indent=2) + "\n")
    report["report_path"] = str(report_path)
    return report


def _describe(entry):
    shape = "x".join("?" if d < 0 else str(d) for d in entry["input_shape"])
    text = (
        f"{entry['format']:<11} {entry['quantize']:<8} "
        f"{entry['size_bytes'] / 1e6:8.2f} MB  input {shape:<12}"
    )
    if "psnr_db" in entry:
        text += f"  PSNR {entry['psnr_db']} dB"
    return text


def report_table(report):
    """The report's models as a Markdown table."""
    rows = [
        "| format | quantize | size (MB) | input | PSNR vs Keras (dB) |",
        "|---|---|---|---|---|",
    ]
    for m in report["models"]:
        shape = "x".join("?" if d < 0 else str(d) for d in m["input_shape"])
        rows.append(
            f"| {m['format']} | {m['quantize']} | "
            f"{m['size_bytes'] / 1e6:.2f} | {shape} | "
            f"{m.get('psnr_db', 'n/a')} |"
        )
    return "\n".join(rows)
