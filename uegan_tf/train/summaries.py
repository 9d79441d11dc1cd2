"""TensorBoard and on-disk summaries: scalars and photo -> stylized grids."""

import numpy as np
import tensorflow as tf

from uegan_tf.image_io import save_rgb


def image_grid(rows, pad=4):
    """Tile equally sized images into one uint8 image.

    Args:
        rows: list of rows, each a list (or `[N, H, W, 3]` array) of images
            `[H, W, 3]` in [-1, 1] (float) or uint8.
        pad: white gap in pixels between images.

    Returns:
        `[R*H + (R+1)*pad, N*W + (N+1)*pad, 3]` uint8.
    """
    rows = [[_to_uint8(img) for img in row] for row in rows]
    h, w = rows[0][0].shape[:2]
    n = max(len(r) for r in rows)
    grid = np.full(
        (len(rows) * (h + pad) + pad, n * (w + pad) + pad, 3), 255, np.uint8
    )
    for i, row in enumerate(rows):
        for j, img in enumerate(row):
            y, x = pad + i * (h + pad), pad + j * (w + pad)
            grid[y : y + h, x : x + w] = img
    return grid


def _to_uint8(img):
    img = np.asarray(img)
    if img.dtype == np.uint8:
        return img
    return np.clip(np.round((img + 1.0) * 127.5), 0, 255).astype(np.uint8)


def write_scalars(writer, metrics, step):
    """Write `{"loss/g/content": value, ...}` scalars at `step`."""
    with writer.as_default(step=step):
        for name, value in metrics.items():
            tf.summary.scalar(name, value)


def write_sample_grid(writer, path, photos, generated, step):
    """Validation photos (top row) over their stylized versions (bottom).

    Written to TensorBoard ("samples/val") and as a PNG at `path`.
    """
    grid = image_grid([list(photos.numpy()), list(generated.numpy())])
    with writer.as_default(step=step):
        tf.summary.image("samples/val", grid[None], max_outputs=1)
    save_rgb(path, grid)
    return grid
