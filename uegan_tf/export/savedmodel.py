"""The SavedModel every other format is converted from.

Written by `keras.export.ExportArchive` (a hand-written `tf.Module`
wrapper converts to a TFLite model that outputs NaN and cannot be loaded by
the session-based loader TF Serving uses; see
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
`inference.stylizer.stylize_uint8`, the same uint8 -> uint8 function as
the stylize command.
"""

import os
import pathlib

import keras
import tensorflow as tf

from uegan_tf.export import serving
from uegan_tf.export.options import DEFAULT_FIXED_SIZE
from uegan_tf.export.signatures import BYTES_INPUT
from uegan_tf.export.signatures import BYTES_OUTPUT
from uegan_tf.export.signatures import BYTES_SIGNATURE
from uegan_tf.export.signatures import FIXED_SIGNATURE
from uegan_tf.export.signatures import FLOAT_INPUT
from uegan_tf.export.signatures import FLOAT_SIGNATURE
from uegan_tf.export.signatures import IMAGES_INPUT
from uegan_tf.export.signatures import IMAGES_OUTPUT
from uegan_tf.export.signatures import SERVING_DEFAULT
from uegan_tf.fileutil import atomic_dir
from uegan_tf.image_ops import synthetic_image
from uegan_tf.inference.stylizer import stylize_uint8


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
            serving.write_warmup_requests(
                os.path.join(tmp, serving.WARMUP_FILE),
                serving.warmup_requests(name, image),
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


def saved_model_runner(saved_model_dir, signature=FLOAT_SIGNATURE):
    """A float runner over a SavedModel float signature (TF2 loader)."""
    loaded = tf.saved_model.load(str(saved_model_dir))
    fn = loaded.signatures[signature]

    def run(x):
        out = fn(**{FLOAT_INPUT: tf.constant(x, tf.float32)})
        return out[IMAGES_OUTPUT].numpy()

    run.loaded = loaded  # keep the restored object alive
    return run
