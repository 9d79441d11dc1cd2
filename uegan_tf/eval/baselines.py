"""Non-learned stylization baselines, the bar a learned style must clear.

Both take and return uint8 RGB `[H, W, 3]` of the same size, and are
deterministic:

- `opencv_stylization`: OpenCV's edge-preserving `cv2.stylization` filter
  (the one-line "make it look painted" answer).
- `cartoonize`: the classic cartoon filter: repeated bilateral smoothing
  (flat regions, edges kept), k-means colour quantisation (a small
  palette), and dark outlines from an adaptive threshold of the median-
  blurred grey image, drawn over the quantised colours.

`evaluate` scores them as rows of every table (docs/evaluation.md).
"""

import cv2
import numpy as np

from uegan_tf.image_ops import fit_long_side


def opencv_stylization(rgb, sigma_s=60.0, sigma_r=0.45):
    """`cv2.stylization` with OpenCV's default strengths."""
    bgr = cv2.cvtColor(np.asarray(rgb, np.uint8), cv2.COLOR_RGB2BGR)
    out = cv2.stylization(bgr, sigma_s=sigma_s, sigma_r=sigma_r)
    return cv2.cvtColor(out, cv2.COLOR_BGR2RGB)


def quantize_colors(rgb, colors, seed=0):
    """Replace every pixel by the nearest of `colors` k-means centres."""
    pixels = np.asarray(rgb, np.float32).reshape(-1, 3)
    k = min(colors, len(np.unique(pixels, axis=0)))
    if k < 2:
        return np.asarray(rgb, np.uint8).copy()
    cv2.setRNGSeed(seed)  # k-means++ seeding draws from OpenCV's RNG
    criteria = (cv2.TERM_CRITERIA_EPS + cv2.TERM_CRITERIA_MAX_ITER, 20, 1.0)
    _, labels, centres = cv2.kmeans(
        pixels, k, None, criteria, 3, cv2.KMEANS_PP_CENTERS
    )
    out = np.clip(np.round(centres), 0, 255).astype(np.uint8)[labels[:, 0]]
    return out.reshape(np.shape(rgb))


def cartoonize(
    rgb,
    colors=8,
    bilateral_passes=5,
    median_size=7,
    block_size=9,
    threshold_c=6,
):
    """Bilateral smoothing + k-means palette + adaptive-threshold outlines.

    Args:
        rgb: uint8 RGB `[H, W, 3]`.
        colors: palette size.
        bilateral_passes: passes of a 9-px bilateral filter (sigma 75).
        median_size: median blur before the outline threshold (odd).
        block_size: adaptive-threshold neighbourhood (odd).
        threshold_c: how much darker than its neighbourhood a pixel must
            be to become an outline (6: the common 2 draws photo texture
            as black speckles at 256 px; 6 keeps contours, looked at on
            the validation photos).

    Returns:
        uint8 RGB `[H, W, 3]`.
    """
    rgb = np.asarray(rgb, np.uint8)
    smooth = rgb
    for _ in range(bilateral_passes):
        smooth = cv2.bilateralFilter(smooth, 9, 75, 75)
    flat = quantize_colors(smooth, colors)
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    if min(gray.shape) >= median_size:
        gray = cv2.medianBlur(gray, median_size)
    lines = cv2.adaptiveThreshold(
        gray,
        255,
        cv2.ADAPTIVE_THRESH_MEAN_C,
        cv2.THRESH_BINARY,
        block_size,
        threshold_c,
    )
    return np.where(lines[..., None] == 0, 0, flat).astype(np.uint8)


BASELINES = {
    "cv2.stylization": opencv_stylization,
    "cartoonizer": cartoonize,
}


class BaselineStylizer:
    """A baseline with the part of `Stylizer`'s interface `evaluate` uses."""

    generator = None  # no parameters

    def __init__(self, name, max_side=0):
        if name not in BASELINES:
            raise KeyError(f"unknown baseline {name!r}; have {list(BASELINES)}")
        self.name, self.fn, self.max_side = name, BASELINES[name], max_side

    def prepare(self, rgb):
        """Downscale to `max_side` like `Stylizer.prepare`."""
        return fit_long_side(rgb, self.max_side)

    def __call__(self, rgb):
        return self.fn(self.prepare(np.asarray(rgb, np.uint8)))
