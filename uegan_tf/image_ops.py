"""Pixel math every path shares: value ranges, luma, resizing.

- uint8 [0, 255] <-> float [-1, 1], the generator's range (x / 127.5 - 1,
  as the reference): `to_unit_range` / `from_unit_range` are TensorFlow ops
  (graph-safe: the tf.data pipeline, the SavedModel signatures, the
  Stylizer); `to_unit_range_np` / `from_unit_range_np` are the NumPy twins
  (export checks, summaries, metrics);
- BT.601 luma (`LUMA_WEIGHTS`, `luma`); the differentiable in-graph
  version for losses is `losses.luminance`, with the same weights;
- resizing: `resize_short_side`, `fit_long_side` (OpenCV, area/cubic),
  `fit_cover` (cover-resize + centre-crop, NumPy) and `fit_cover_tf` (the
  same in TensorFlow, bilinear with antialiasing, as training sees images);
- `image_grid` (sample grids, contact sheets, evaluation grids) and
  `synthetic_image`, a deterministic photo-like test image (export warm-up
  requests, tests).

TensorFlow is imported inside the TF functions only, so that image reading
and the NumPy helpers stay light.
"""

import math

import numpy as np

# BT.601 luma weights of R, G, B.
LUMA_WEIGHTS = (0.299, 0.587, 0.114)


# ---------------------------------------------------------------------------
# Value ranges.


def to_unit_range(images):
    """uint8 [0, 255] -> float32 [-1, 1] (x / 127.5 - 1, as the reference)."""
    import tensorflow as tf

    return tf.cast(images, tf.float32) / 127.5 - 1.0


def from_unit_range(images):
    """float [-1, 1] -> uint8 [0, 255], rounded and clipped."""
    import tensorflow as tf

    x = (tf.cast(images, tf.float32) + 1.0) * 127.5
    return tf.cast(tf.clip_by_value(tf.round(x), 0.0, 255.0), tf.uint8)


def to_unit_range_np(images):
    """uint8 images (array or list) -> float32 NumPy array in [-1, 1]."""
    return np.asarray(images, dtype=np.float32) / 127.5 - 1.0


def from_unit_range_np(images):
    """float [-1, 1] -> uint8 NumPy array, rounded and clipped; uint8 input
    is returned as it is."""
    images = np.asarray(images)
    if images.dtype == np.uint8:
        return images
    return np.clip(np.round((images + 1.0) * 127.5), 0, 255).astype(np.uint8)


# ---------------------------------------------------------------------------
# Luma.


def luma(rgb, dtype=np.float32):
    """BT.601 luma of uint8 RGB, in [0, 255], `[..., H, W, 1]` of `dtype`."""
    x = np.asarray(rgb, dtype)
    return (x @ np.array(LUMA_WEIGHTS, dtype))[..., None]


# ---------------------------------------------------------------------------
# Resizing.


def resize_short_side(rgb, short_side, max_long_side=None):
    """Resize so that the short side is `short_side` (aspect kept, area/cubic).

    Args:
        rgb: `[H, W, 3]` uint8.
        short_side: target short side in pixels.
        max_long_side: optionally cap the long side too (panoramas).

    Returns:
        The resized uint8 array (the input itself when already that size).
    """
    import cv2

    h, w = rgb.shape[:2]
    scale = short_side / min(h, w)
    if max_long_side:
        scale = min(scale, max_long_side / max(h, w))
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    if (nh, nw) == (h, w):
        return rgb
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    return cv2.resize(rgb, (nw, nh), interpolation=interp)


def fit_long_side(rgb, max_side):
    """Downscale (area) so the long side is at most `max_side` (0: never);
    returns the input itself when it already fits."""
    h, w = rgb.shape[:2]
    if not max_side or max(h, w) <= max_side:
        return rgb
    return resize_short_side(rgb, min(h, w), max_long_side=max_side)


def fit_cover(rgb, size):
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


def resize_to_cover_tf(images, crop_size, short_side):
    """Resize `[N, H, W, 3]` uint8 so the short side is `short_side`.

    With `short_side == 0` the stored size is kept unless it is smaller than
    the crop. Returns float32 (bilinear with antialiasing). Graph-safe.
    """
    import tensorflow as tf

    shape = tf.shape(images)
    h = tf.cast(shape[1], tf.float32)
    w = tf.cast(shape[2], tf.float32)
    short = tf.minimum(h, w)
    target = (
        tf.cast(short_side, tf.float32)
        if short_side
        else tf.maximum(short, float(crop_size))
    )
    scale = target / short
    size = tf.cast(tf.math.ceil(tf.stack([h, w]) * scale - 1e-3), tf.int32)
    size = tf.maximum(size, crop_size)
    images = tf.cast(images, tf.float32)
    return tf.cond(
        tf.reduce_all(tf.equal(size, shape[1:3])),
        lambda: images,
        lambda: tf.image.resize(images, size, antialias=True),
    )


def fit_cover_tf(image, size):
    """`[H, W, 3]` (any real dtype) -> `size` x `size` float32 in [0, 255]:
    short side resized to `size` (bilinear, antialiased), centre-cropped,
    rounded and clipped. The TensorFlow `fit_cover`, as training sees
    images (validation samples, the records contact sheet)."""
    import tensorflow as tf

    x = resize_to_cover_tf(image[None], size, size)[0]
    x = tf.image.resize_with_crop_or_pad(x, size, size)
    return tf.clip_by_value(tf.round(x), 0, 255)


# ---------------------------------------------------------------------------
# Grids and a synthetic photo.


def image_grid(rows, pad=4):
    """Tile images into one uint8 image, row by row.

    Each row is as tall as its tallest image and each column as wide as its
    widest; smaller images sit at their cell's top left on white. With
    equally sized `H` x `W` images the result is
    `[R*H + (R+1)*pad, N*W + (N+1)*pad, 3]`.

    Args:
        rows: list of rows, each a list (or `[N, H, W, 3]` array) of images
            `[H, W, 3]` in [-1, 1] (float) or uint8.
        pad: white gap in pixels between images.

    Returns:
        uint8 `[sum(row heights) + (R+1)*pad, sum(column widths) + (N+1)*pad,
        3]`.
    """
    rows = [[from_unit_range_np(img) for img in row] for row in rows]
    n = max(len(r) for r in rows)
    heights = [max(img.shape[0] for img in row) for row in rows]
    widths = [
        max(row[j].shape[1] for row in rows if j < len(row)) for j in range(n)
    ]
    grid = np.full(
        (sum(heights) + (len(rows) + 1) * pad, sum(widths) + (n + 1) * pad, 3),
        255,
        np.uint8,
    )
    y = pad
    for row, h in zip(rows, heights):
        x = pad
        for img, w in zip(row, widths):
            grid[y : y + img.shape[0], x : x + img.shape[1]] = img
            x += w + pad
        y += h + pad
    return grid


def synthetic_image(h, w, seed=0, kind="photo"):
    """A deterministic uint8 RGB image with smooth gradients and shapes.

    "photo": gradients plus noise; "anime": flat colour regions with dark
    outlines (strong edges for the edge-smoothing path).
    """
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    if kind == "photo":
        img = np.stack(
            [
                128 + 100 * np.sin(xx / (7 + seed % 5) + seed),
                128 + 100 * np.cos(yy / (9 + seed % 3)),
                (xx + yy) / (h + w) * 255,
            ],
            axis=-1,
        )
        img += rng.normal(0, 12, img.shape)
    else:
        img = np.zeros((h, w, 3), np.float32)
        img[:] = rng.uniform(60, 220, 3)
        for _ in range(4):
            cy, cx = rng.uniform(0, h), rng.uniform(0, w)
            r = rng.uniform(min(h, w) / 8, min(h, w) / 3)
            disk = (yy - cy) ** 2 + (xx - cx) ** 2
            img[disk < r**2] = rng.uniform(30, 250, 3)
            ring = np.abs(np.sqrt(disk) - r) < 1.5
            img[ring] = 20
    return np.clip(img, 0, 255).astype(np.uint8)
