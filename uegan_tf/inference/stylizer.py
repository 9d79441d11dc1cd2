"""Loading generators from any source and running them on images.

The one inference code path of the project: the stylize command, the web
app, evaluation and export all load models through `load_generator` and
pre/post-process through `Stylizer`.
"""

import copy
import math
import zipfile

import cv2
import keras
import numpy as np
import tensorflow as tf
from google.protobuf.message import DecodeError

from uegan_tf.errors import first_line
from uegan_tf.image_io import parse_memory  # noqa: F401 - re-exported
from uegan_tf.image_ops import fit_long_side
from uegan_tf.image_ops import from_unit_range
from uegan_tf.image_ops import luma
from uegan_tf.image_ops import to_unit_range
from uegan_tf.inference.sources import ModelLoadError
from uegan_tf.inference.sources import resolve_source
from uegan_tf.models.layers import NormStats
from uegan_tf.precision import inference_precision

# Smallest side the generator accepts (reflect padding at H/4 needs 2 px).
MIN_SIDE = 8


def with_precision(generator, precision):
    """The generator computing in `precision` ("fp32" or "bf16").

    bf16: the same network rebuilt under Keras' `mixed_bfloat16` policy
    (float32 variables holding the same weights, bfloat16 convolutions and
    activations; the layer-norm statistics and affine, the output conv and
    the tanh stay float32, see `models.generator`). fp32 returns
    `generator` itself. No CPU check here: see `inference_precision`.
    """
    if precision == "fp32":
        return generator
    if precision != "bf16":
        raise ValueError(f"unknown precision {precision!r}")
    from uegan_tf.models import Generator

    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        fast = Generator(
            unet=generator.unet,
            upsample=generator.upsample,
            norm_epsilon=generator.norm_epsilon,
            width=generator.width,
            name=generator.name,
        )
        fast(tf.zeros([1, 8, 8, 3]))
    finally:
        keras.mixed_precision.set_global_policy(previous)
    fast.set_weights(generator.get_weights())
    return fast


def load_generator(source=None, step=None, precision="fp32", note=None):
    """Load a Keras generator from a style name, file or folder.

    Args:
        source: style name, `.keras` file, training work dir, or official
            TF1 checkpoint folder (None: the default style).
        step: for a work dir, the checkpoint step (default: latest).
        precision: "fp32" or "bf16" (see `with_precision`); bf16 on a CPU
            without native bfloat16 prints one line through `note`
            (default: stderr) and loads fp32.
        note: callable for that line.

    Returns:
        `(generator, info)`: a `uegan_tf.models.Generator` and a dict with
        "kind", "path", "precision" (the one used) (and "step" for work
        dirs).

    Raises:
        ModelLoadError: missing, unreadable or non-Keras source (a SavedModel
            cannot become a Keras model; use `load_backend` for it).
    """
    precision = inference_precision(precision, note)
    generator, info = _load_fp32_generator(source, step)
    info["precision"] = precision
    return with_precision(generator, precision), info


def _load_fp32_generator(source, step):
    kind, path = resolve_source(source)
    info = {"kind": kind, "path": str(path)}
    try:
        if kind == "keras":
            # Registers the custom classes before deserialising.
            from uegan_tf.models import Generator

            if not zipfile.is_zipfile(path):
                # Keras reports a damaged archive as "File not found".
                raise ModelLoadError(
                    f"{path}: corrupt .keras file (not a complete zip "
                    "archive; save or copy it again)"
                )
            try:
                model = keras.models.load_model(path, compile=False)
            except Exception as e:  # noqa: BLE001 - Keras raises anything
                # A valid zip with damaged or foreign contents: KeyError,
                # TypeError, h5py errors, ... all mean "cannot load".
                reason = first_line(e)
                raise ModelLoadError(
                    f"{path}: corrupt or incompatible .keras file ({reason})"
                ) from None
            if not isinstance(model, Generator):
                raise ModelLoadError(
                    f"{path}: a Keras model but not a uegan_tf generator"
                )
            return model, info
        if kind == "workdir":
            from uegan_tf.train.workdir import load_generator_from_workdir

            generator, details = load_generator_from_workdir(path, step)
            info.update(step=details["step"], checkpoint=details["checkpoint"])
            return generator, info
        if kind == "tf1_checkpoint":
            from uegan_tf.importers import load_official_checkpoint
            from uegan_tf.models import build_generator

            generator = build_generator(unet=False, upsample="tf1")
            load_official_checkpoint(generator, str(path))
            return generator, info
    except ModelLoadError:
        raise
    except (OSError, ValueError) as e:
        raise ModelLoadError(f"{path}: cannot load ({e})") from None
    except (tf.errors.OpError, IndexError) as e:
        # Damaged checkpoint files that no reader above recognised.
        reason = first_line(e)
        raise ModelLoadError(
            f"{path}: corrupt or truncated model files ({reason})"
        ) from None
    raise ModelLoadError(
        f"{path}: a SavedModel; it can stylize (load_backend) but not be "
        "re-exported as a Keras generator"
    )


# ---------------------------------------------------------------------------
# Pre/post-processing shared by every backend and by the export signatures.


def stylize_uint8(generator, images):
    """The generator as a uint8 -> uint8 function (any H, W; in-graph).

    The export signatures and the stylize command both use this function,
    so they cannot disagree on pre/post-processing.
    """
    return from_unit_range(generator(to_unit_range(images), training=False))


def match_brightness(output, photo):
    """Scale `output` so its mean BT.601 luma equals the photo's.

    The reference `test.py --if_adjust_brightness`
    (`tools/adjust_brightness.py`): output * mean_luma(photo) /
    mean_luma(output), clipped and truncated to uint8. A black output
    (mean luma 0) is returned unchanged instead of dividing by zero
    (AnimeGANv2 issue #69).

    Args:
        output, photo: uint8 `[H, W, 3]` of the same size.

    Returns:
        uint8 `[H, W, 3]`.
    """
    target = float(luma(photo, np.float64).mean())
    current = float(luma(output, np.float64).mean())
    if current <= 0:
        return output
    scaled = output.astype(np.float64) * (target / current)
    return np.clip(scaled, 0, 255).astype(np.uint8)


def _ceil4(n):
    return math.ceil(n / 4) * 4


def spread_starts(length, tile, count):
    """`count` start offsets of `tile`-long tiles spread evenly over
    `length`: the first at 0, the last ending at `length`."""
    if count <= 1 or length <= tile:
        return [0]
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def _balanced_split(length, count, overlap):
    """The tile length that covers `length` with `count` tiles overlapping
    by at least `overlap`: the smallest multiple of 4 (clipped to
    `length`), so the tiles share the axis evenly."""
    if count <= 1:
        return length
    return min(length, _ceil4((length + (count - 1) * overlap) / count))


def tile_grid(h, w, max_pixels, overlap, max_side=None):
    """A balanced grid of equal rectangular tiles over an `h` x `w` image.

    Every tile has at most `max_pixels` pixels (the memory budget) and, if
    given, sides of at most `max_side` (an explicit `--tile`). Among the
    grids that satisfy this, the one that computes the fewest pixels in all
    (tiles x tile area: the overlap is recomputed work) wins, ties going to
    fewer tiles. Square tiles with a last tile flush to the border, as
    before, cost up to ~1.8x the image at 1080p; an even split of each
    axis costs ~1.1x (`docs/design.md#tiling`).

    Pure and cheap: tries each row count, fits the widest tile that the
    budget allows to that height, then splits each axis evenly.

    Returns:
        `(tile_h, tile_w, ys, xs)`: tile size and the start offsets along
        each axis (consecutive tiles overlap by at least `overlap`).
    """
    max_side = max_side or max(h, w)
    best = None
    for rows in range(1, h + 1):
        th = _balanced_split(h, rows, overlap)
        if rows > 1 and th - overlap < 4:
            break  # thinner rows would be nearly all overlap
        if th > max_side:
            continue
        cap = min(max_side, max_pixels // th)  # widest tile of this height
        if cap >= w:
            cols, tw = 1, w
        else:
            cap -= cap % 4
            if cap - overlap < 4:
                continue
            # Fewest columns of width <= cap: cols * (cap - overlap) >=
            # w - overlap; the even split is then a multiple of 4 <= cap.
            cols = -(-(w - overlap) // (cap - overlap))
            tw = _balanced_split(w, cols, overlap)
        key = (rows * th * cols * tw, rows * cols)
        if best is None or key < best[0]:
            best = (key, th, tw, rows, cols)
    if best is None:
        raise ValueError(
            f"no tiling of {w}x{h} with tiles of at most {max_pixels} pixels "
            f"and overlap {overlap}"
        )
    _, th, tw, rows, cols = best
    return th, tw, spread_starts(h, th, rows), spread_starts(w, tw, cols)


def _ramp(tile_len, overlap, at_start, at_end):
    """1-D blending weights of a tile along one axis.

    Over an internal edge's overlap band the weight is 0 for the outer
    quarter (those pixels saw reflect padding instead of the real
    neighbours), then rises linearly to 1; a neighbour's band mirrors it, so
    the weights of two overlapping tiles sum to 1. Image borders keep
    weight 1.
    """
    w = np.ones(tile_len, np.float32)
    if overlap > 0:
        margin = overlap // 4
        ramp = np.clip(
            (np.arange(overlap, dtype=np.float32) - margin + 0.5)
            / max(overlap - 2 * margin, 1),
            0.0,
            1.0,
        )
        if not at_start:
            w[:overlap] = np.minimum(w[:overlap], ramp)
        if not at_end:
            w[-overlap:] = np.minimum(w[-overlap:], ramp[::-1])
    return w


# Memory budget of `Stylizer` (`--max_memory`), bytes.
DEFAULT_MAX_MEMORY = 1_500_000_000

# Peak-RSS model of Keras inference: peak = MEMORY_BASE_BYTES
# + MODEL_BYTES_PER_PIXEL[precision] * (pixels of one generator call)
# + the image buffers per pixel of the whole image (IMAGE_BYTES_PER_PIXEL
# tiled, UNTILED_IMAGE_BYTES_PER_PIXEL untiled).
# Measured with bench/bench_memory.py fit (peak RSS of a fresh process,
# the UE generator, one untiled call after a 64x64 warm-up; TF 2.21,
# Keras 3.15, 2-core AMX Xeon): least squares over 384^2, 640^2, 896^2
# gives fp32 798 MB + 2003 B/px and bf16 832 MB + 1103 B/px; single
# points 1024^2 / 1280^2 gave fp32 2447 / 1971 B/px and bf16 1353 / 1100
# B/px above ~0.8 GB (the allocator makes it size-dependent). The constants
# take the upper ends of the base (760-830 MB measured) and per-pixel costs.
MEMORY_BASE_BYTES = 850_000_000
MODEL_BYTES_PER_PIXEL = {"fp32": 2_450, "bf16": 1_350}
# Tiled: uint8 input and output, float32 accumulator (3 ch) and weights.
IMAGE_BYTES_PER_PIXEL = 3 + 3 + 12 + 4
UNTILED_IMAGE_BYTES_PER_PIXEL = 3 + 3
# Tiled runs only: headroom for what the linear model misses there (the
# statistics pass is a second traced call of another shape, and the
# allocator keeps buffers of earlier calls). Identical 1600x1250 runs under
# a 1.2 GB budget peaked at 1.13-1.24 GB, up to 40 MB over the estimate
# (AMD EPYC, AVX2, 2026-12-06): twice that.
TILED_SLACK_BYTES = 80_000_000
# Smallest tile worth running (the overlap bands dominate below it).
MIN_TILE = 128


def choose_tile(
    h,
    w,
    budget,
    per_pixel,
    base=MEMORY_BASE_BYTES,
    image_per_pixel=IMAGE_BYTES_PER_PIXEL,
    untiled_image_per_pixel=UNTILED_IMAGE_BYTES_PER_PIXEL,
    tile_batch=1,
    min_tile=MIN_TILE,
    tiled_slack=TILED_SLACK_BYTES,
):
    """The tile side for an `h` x `w` image under a peak-memory budget.

    Pure: the estimate is `base + per_pixel * call_pixels + image buffers`
    (see `MODEL_BYTES_PER_PIXEL`), plus `tiled_slack` when tiled. Tiles
    are square, clipped to the image
    (so a wide strip may use the full height), with sides multiples of 4.

    Returns:
        0 when the untiled image fits; otherwise the largest tile side whose
        estimate fits (at least `min_tile`, even when nothing fits).
    """
    pixels = h * w
    if base + (per_pixel + untiled_image_per_pixel) * pixels <= budget:
        return 0
    free = budget - base - tiled_slack - image_per_pixel * pixels
    allowed = free / (per_pixel * max(1, tile_batch))

    def cost(t):
        return min(t, h) * min(t, w)

    # Largest multiple of 4 whose (clipped) tile fits; cost is monotone.
    lo, hi = min_tile // 4, (max(h, w) + 3) // 4
    if cost(lo * 4) > allowed:
        return lo * 4
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if cost(mid * 4) <= allowed:
            lo = mid
        else:
            hi = mid - 1
    return lo * 4


def stats_side_for(h, w, max_pixels, stats_side):
    """Long side of the whole-image statistics copy: at most `stats_side`,
    and small enough that the copy has at most `max_pixels` pixels."""
    long, short = max(h, w), min(h, w)
    fit = int((max_pixels * long / short) ** 0.5)
    return max(MIN_TILE, min(stats_side, long, fit))


class Stylizer:
    """Runs a generator on uint8 RGB images of any size.

    Backends: a Keras generator (from `load_generator`: style name, .keras
    file, training work dir, official TF1 checkpoint) or a SavedModel
    exported by `tools/export_tflite.py` (its uint8 `serving_default`).

    Images whose untiled inference would not fit `max_memory` are
    processed in overlapping tiles with linear blending, the largest tiles
    that fit (see `choose_tile` and its measured memory model). With a
    Keras backend every tile is normalised with the layer-norm statistics
    of the whole image (computed once on a copy downscaled to `stats_side`,
    or smaller to fit the budget), so tiles agree with each other and with
    untiled inference.

    Args:
        source: model source (see `load_generator`); None: default style.
        step: training step for a work dir.
        tile: tile side; 0 disables tiling; None chooses by `max_memory`.
        overlap: overlap between tiles, in pixels.
        max_memory: peak memory budget of the process in bytes (automatic
            tiling); None: never tile automatically.
        tile_batch: tiles per generator call.
        stats_side: long side of the copy used for whole-image
            layer-norm statistics when tiling.
        max_side: downscale inputs whose long side exceeds this (0: never).
            The output then has the downscaled size.
        brightness: match the output's mean luma to the input's.
        precision: "fp32" or "bf16" (Keras backends; see `load_generator`).
        note: callable for the one-line bf16 fallback note (default:
            stderr).
    """

    def __init__(
        self,
        source=None,
        step=None,
        tile=None,
        overlap=32,
        max_memory=DEFAULT_MAX_MEMORY,
        tile_batch=1,
        stats_side=1024,
        max_side=0,
        brightness=False,
        precision="fp32",
        note=None,
    ):
        self.tile = tile
        self.overlap = overlap
        self.max_memory = max_memory
        self.tile_batch = max(1, tile_batch)
        self.stats_side = stats_side
        self.max_side = max_side
        self.brightness = brightness
        kind, path = resolve_source(source)
        self.info = {"kind": kind, "path": str(path)}
        self.generator = None
        if kind == "savedmodel":
            # Runs as exported (a bf16 export computes in bfloat16).
            self.info["precision"] = "as exported"
            self._load_savedmodel(path)
        else:
            self.generator, self.info = load_generator(
                source, step, precision=precision, note=note
            )
            self._build_keras_fns()
        self.precision = self.info["precision"]

    def with_options(self, **options):
        """A stylizer sharing this one's model and traced functions.

        Only the pre/post-processing options of the constructor (tile,
        overlap, max_memory, tile_batch, stats_side, max_side,
        brightness) may be changed; nothing is reloaded.
        """
        allowed = {
            "tile",
            "overlap",
            "max_memory",
            "tile_batch",
            "stats_side",
            "max_side",
            "brightness",
        }
        unknown = set(options) - allowed
        if unknown:
            raise TypeError(f"not a processing option: {sorted(unknown)}")
        other = copy.copy(self)
        for key, value in options.items():
            setattr(other, key, value)
        return other

    # -- backends ----------------------------------------------------------

    def _build_keras_fns(self):
        g = self.generator
        spec = tf.TensorSpec([None, None, None, 3], tf.uint8)
        self._run = tf.function(
            lambda x: stylize_uint8(g, x), input_signature=[spec]
        )

        @tf.function(input_signature=[spec])
        def collect(x):
            stats = NormStats()
            g(to_unit_range(x), training=False, norm_stats=stats)
            return [t for pair in stats.values for t in pair]

        self._collect = collect
        self._tiled_fn = None

    def _load_savedmodel(self, path):
        try:
            loaded = tf.saved_model.load(str(path))
        except (
            OSError,
            ValueError,
            tf.errors.OpError,
            DecodeError,  # a damaged saved_model.pb
            IndexError,  # a short variables.data file
        ) as e:
            reason = first_line(e)
            raise ModelLoadError(
                f"{path}: cannot load SavedModel (corrupt, truncated or "
                f"not a SavedModel: {reason})"
            ) from None
        if "serving_default" not in loaded.signatures:
            raise ModelLoadError(f"{path}: no serving_default signature")
        fn = loaded.signatures["serving_default"]
        out_key = next(iter(fn.structured_outputs))
        in_key = next(iter(fn.structured_input_signature[1]))
        self._loaded = loaded  # keep the resources alive
        self._run = lambda x: fn(**{in_key: tf.convert_to_tensor(x)})[out_key]
        self._collect = None

    def _run_with_stats(self, tiles, stats):
        if self._tiled_fn is None:
            g = self.generator
            n = len(stats)

            @tf.function(
                input_signature=[tf.TensorSpec([None, None, None, 3], tf.uint8)]
                + [tf.TensorSpec([1, 1, 1, 1], tf.float32)] * n
            )
            def tiled(x, *flat):
                pairs = [(flat[i], flat[i + 1]) for i in range(0, n, 2)]
                y = g(
                    to_unit_range(x),
                    training=False,
                    norm_stats=NormStats(pairs),
                )
                return from_unit_range(y)

            self._tiled_fn = tiled
        return self._tiled_fn(tiles, *stats)

    # -- images --------------------------------------------------------------

    def prepare(self, rgb):
        """Apply `max_side` downscaling; returns the array to stylize."""
        return fit_long_side(rgb, self.max_side)

    def _per_pixel(self):
        # SavedModels: as the fp32 Keras graph (the exported graph is it).
        return MODEL_BYTES_PER_PIXEL.get(
            self.precision, MODEL_BYTES_PER_PIXEL["fp32"]
        )

    def tile_for(self, h, w):
        """The tile side for an `h` x `w` image (0: untiled)."""
        if self.tile is not None:
            return self.tile if self.tile and max(h, w) > self.tile else 0
        if self.max_memory is None:
            return 0
        return choose_tile(
            h,
            w,
            self.max_memory,
            self._per_pixel(),
            tile_batch=self.tile_batch,
        )

    def wants_tiles(self, h, w):
        return self.tile_for(h, w) > 0

    def __call__(self, rgb):
        """Stylize one uint8 RGB image `[H, W, 3]` (after `prepare`)."""
        rgb = self.prepare(np.asarray(rgb, np.uint8))
        h, w = rgb.shape[:2]
        if h == 0 or w == 0:
            raise ValueError(f"empty image ({w}x{h})")
        if min(h, w) < MIN_SIDE:
            # The bottleneck at H/4 needs 2 pixels for its reflect padding:
            # extend tiny images by edge replication, then crop back. Not
            # through `self(...)`: `prepare` would shrink the padded image
            # again when max_side < MIN_SIDE (endless recursion).
            grown = np.pad(
                rgb,
                ((0, max(0, MIN_SIDE - h)), (0, max(0, MIN_SIDE - w)), (0, 0)),
                mode="edge",
            )
            out = self._run(grown[None]).numpy()[0][:h, :w]
            return match_brightness(out, rgb) if self.brightness else out
        if self.wants_tiles(h, w):
            out = self._tiled(rgb)
        else:
            out = self._run(rgb[None]).numpy()[0]
        if self.brightness:
            out = match_brightness(out, rgb)
        return out

    def stylize_batch(self, frames):
        """Stylize equally sized frames `[N, H, W, 3]` in one call."""
        frames = np.asarray(frames, np.uint8)
        h, w = frames.shape[1:3]
        if self.wants_tiles(h, w):
            out = np.stack([self._tiled(f) for f in frames])
        else:
            n = self._frames_per_call(len(frames), h, w)
            out = np.concatenate(
                [
                    self._run(frames[i : i + n]).numpy()
                    for i in range(0, len(frames), n)
                ]
            )
        if self.brightness:
            out = np.stack(
                [match_brightness(o, f) for o, f in zip(out, frames)]
            )
        return out

    def _frames_per_call(self, n, h, w):
        """Frames of one batched call that fit `max_memory` (at least 1)."""
        if self.tile is not None or self.max_memory is None:
            return n
        per_frame = (self._per_pixel() + 2 * UNTILED_IMAGE_BYTES_PER_PIXEL) * (
            h * w
        )
        free = self.max_memory - MEMORY_BASE_BYTES
        return int(min(n, max(1, free // per_frame)))

    def _whole_image_stats(self, rgb, max_pixels):
        h, w = rgb.shape[:2]
        side = stats_side_for(h, w, max_pixels, self.stats_side)
        scale = min(1.0, side / max(h, w))
        small = (
            rgb
            if scale == 1.0
            else cv2.resize(
                rgb,
                (max(4, round(w * scale)), max(4, round(h * scale))),
                interpolation=cv2.INTER_AREA,
            )
        )
        return self._collect(small[None])

    def _tiled(self, rgb):
        h, w = rgb.shape[:2]
        tile = self.tile_for(h, w) or 512
        tile = max(16, tile - tile % 4)
        overlap = min(self.overlap, tile // 2)
        # The budget is in pixels per call: a square `tile` clipped to the
        # image. An explicit --tile also bounds each side.
        th, tw, ys, xs = tile_grid(
            h,
            w,
            min(tile, h) * min(tile, w),
            overlap,
            max_side=tile if self.tile else None,
        )
        stats = None
        if self.generator is not None:
            # The statistics pass is one more generator call: no larger
            # than a tile batch under a budget.
            limit = th * tw * self.tile_batch if self.tile is None else 1e18
            stats = self._whole_image_stats(rgb, max(limit, 1))
        acc = np.zeros((h, w, 3), np.float32)
        weight = np.zeros((h, w, 1), np.float32)
        boxes = [(y, x) for y in ys for x in xs]
        for i in range(0, len(boxes), self.tile_batch):
            chunk = boxes[i : i + self.tile_batch]
            tiles = np.stack([rgb[y : y + th, x : x + tw] for y, x in chunk])
            if stats is not None:
                out = self._run_with_stats(tiles, stats).numpy()
            else:
                out = self._run(tiles).numpy()
            for (y, x), o in zip(chunk, out):
                wy = _ramp(th, overlap, y == 0, y + th >= h)
                wx = _ramp(tw, overlap, x == 0, x + tw >= w)
                wt = (wy[:, None] * wx[None, :])[..., None]
                acc[y : y + th, x : x + tw] += o.astype(np.float32) * wt
                weight[y : y + th, x : x + tw] += wt
        # In place: no full-size float32 temporaries on top of `acc`.
        np.divide(acc, weight, out=acc)
        del weight
        np.round(acc, out=acc)
        np.clip(acc, 0, 255, out=acc)
        return acc.astype(np.uint8)
