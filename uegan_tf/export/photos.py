"""Photos for int8 calibration and the checks: a folder, or the bundled ones.

The bundled example photos (`uegan_tf/examples/`, in the wheel) are used
when no photo folder is given: calibration and checks then run on real
photographs on a plain `pip install ".[export]"`. scikit-image (a `dev`
extra only) must not be needed here (issue 14).
"""

from uegan_tf.export.options import ExportError
from uegan_tf.image_io import EXAMPLES_DIR
from uegan_tf.image_io import load_images
from uegan_tf.image_io import load_rgb
from uegan_tf.image_ops import fit_cover

SAMPLE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")


def load_photos(folder, size, max_images):
    """Up to `max_images` photos from a folder, fitted to `size`.

    Unreadable files are skipped.

    Raises:
        ExportError: no readable image in `folder`.
    """
    try:
        loaded = load_images(folder, max_images)
    except FileNotFoundError as e:
        raise ExportError(str(e)) from None
    if not loaded:
        raise ExportError(f"no readable images in {folder}")
    return [fit_cover(rgb, size) for _, rgb in loaded]


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
            photos.append(fit_cover(image, size))
            continue
        h, w = image.shape[0] // 2, image.shape[1] // 2
        for top in (0, h):
            for left in (0, w):
                crop = image[top : top + h, left : left + w]
                photos.append(fit_cover(crop, size))
    return photos
