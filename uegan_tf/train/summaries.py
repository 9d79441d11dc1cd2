"""TensorBoard and on-disk summaries: scalars and photo -> stylized grids."""

import tensorflow as tf

from uegan_tf.image_io import save_rgb
from uegan_tf.image_ops import image_grid


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
