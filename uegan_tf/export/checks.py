"""Checks of exported models against Keras: PSNR, comparison, timing.

PSNR convention: all PSNRs here compare float outputs in [-1, 1] with a peak
of 2.0 (the full output range), i.e. the uint8 scale before rounding.
"""

import math
import statistics
import time

import numpy as np
import tensorflow as tf

from uegan_tf.export.options import ExportError
from uegan_tf.export.savedmodel import stylize_float
from uegan_tf.image_ops import to_unit_range_np

PSNR_PEAK = 2.0


def psnr_from_mse(mse, peak=PSNR_PEAK):
    """PSNR in dB of a mean squared error (inf when it is 0)."""
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(peak * peak / mse)


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
    return psnr_from_mse(float(np.mean((a - b) ** 2)), peak)


def keras_outputs(generator, images):
    """Keras reference outputs, one float32 `[1, H, W, 3]` per image."""

    @tf.function(autograph=False)
    def fn(x):
        return stylize_float(generator, x)

    return [fn(tf.constant(to_unit_range_np([im]))).numpy() for im in images]


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
        out = np.asarray(run(to_unit_range_np([image])), dtype=np.float64)
        if out.shape != ref.shape:
            raise ExportError(f"output shape {out.shape} != {ref.shape}")
        diff = out - ref
        sq += float(np.sum(diff * diff))
        count += diff.size
        max_err = max(max_err, float(np.max(np.abs(diff))))
    value = psnr_from_mse(sq / max(count, 1))
    return {"psnr_db": value, "max_abs_err": max_err, "images": len(images)}


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
