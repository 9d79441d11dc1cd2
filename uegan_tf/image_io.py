"""Reading and writing images robustly (the one place that touches files).

Every reader in the project (dataset preparation, stylize, the web app,
evaluation) goes through `load_rgb`, so that every image mode, EXIF
orientation and every kind of bad file is handled the same way: the result
is always an 8-bit RGB `np.ndarray` `[H, W, 3]`, or an `ImageReadError`
with a one-line reason.
"""

import errno
import io
import pathlib
import warnings

import numpy as np
from PIL import Image
from PIL import ImageOps
from PIL import UnidentifiedImageError

from uegan_tf.errors import first_line
from uegan_tf.fileutil import atomic_path

IMAGE_EXTENSIONS = (
    ".jpg",
    ".jpeg",
    ".png",
    ".webp",
    ".bmp",
    ".tif",
    ".tiff",
    ".gif",
)
# Refuse images above this many pixels from their header, before decoding
# (a PNG of one colour is a few hundred KB at any size). The default is
# what the memory budget of a stylize run allows, measured on this 2-core
# machine with the tiled path (512 px tiles, 1024 px statistics pass):
# - a fixed ~2.4 GB peak RSS whatever the size (TensorFlow, the model, one
#   tile, the statistics pass: 2409 MB for a 1600x1200 photo);
# - ~35 MB per megapixel of the photo (decoded RGB, the float32 blending
#   accumulator and weights, the output and its encoding: 35.3 MB/MP at
#   16 MP, 34.7 MB/MP at 36 MP).
# 64 MP (8000x8000) thus peaks at ~2.4 + 64 x 0.035 = 4.6 GB, within an
# 8 GB machine, and takes 10-25 min here; the 289 MP PNG of issue 17 would
# need ~12.5 GB and an hour or more. `--max_megapixels` raises the limit.
# The photos bundled with the package (`uegan stylize --examples`, the app's
# examples, export's sample and calibration photos).
EXAMPLES_DIR = pathlib.Path(__file__).resolve().parent / "examples"

MAX_PIXELS = 64_000_000
STYLIZE_BASE_MB = 2400
MB_PER_MEGAPIXEL = 35
# PIL's decompression-bomb guard would refuse (or warn about) large images
# before our header check, with its own message and at its own limit,
# which a raised --max_megapixels could not pass. The header check below
# is the same check, so PIL's is off.
Image.MAX_IMAGE_PIXELS = None


class ImageReadError(Exception):
    """A file that cannot be used as an image; `str()` is a one-line reason."""

    def __init__(self, path, reason):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


class ImageTooLargeError(ImageReadError):
    """An image above the pixel limit (from its header, nothing decoded).

    `pixels` is its size in pixels, for messages that say which limit
    would admit it.
    """

    def __init__(self, path, reason, pixels):
        super().__init__(path, reason)
        self.pixels = pixels


def is_image_path(path):
    """Whether the file name has a supported image extension."""
    return pathlib.Path(path).suffix.lower() in IMAGE_EXTENSIONS


def find_images(root, extensions=IMAGE_EXTENSIONS, exclude=(), skipped=None):
    """Image files under `root` (recursively), sorted, hidden files skipped.

    Args:
        root: the folder to search.
        extensions: lower-case suffixes to collect.
        exclude: folders whose contents are never collected (the output
            folder of a run that reads and writes the same tree: without
            this a second run would read its own results).
        skipped: optional list that receives `(path, reason)` for every
            entry with a wanted extension that is not a usable file
            (dangling or looping symbolic links, folders named like
            images) and for symbolic links to folders, which are not
            followed; callers report them instead of dropping them in
            silence.

    Raises:
        FileNotFoundError: `root` does not exist or is not a folder.
    """
    root = pathlib.Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"not a folder: {root}")
    excluded = [pathlib.Path(e).resolve() for e in exclude]
    found = []
    for path in sorted(root.rglob("*")):
        if any(part.startswith(".") for part in path.relative_to(root).parts):
            continue
        if excluded and _inside(path, excluded):
            continue
        wanted = path.suffix.lower() in extensions
        if path.is_symlink() and (wanted or path.is_dir()):
            reason = _link_problem(path)
            if reason:
                if skipped is not None:
                    skipped.append((path, reason))
                continue
        if path.is_file():
            if wanted:
                found.append(path)
        elif wanted and path.is_dir() and skipped is not None:
            skipped.append(
                (
                    path,
                    "a folder with an image name (its contents are searched)",
                )
            )
    return found


def _inside(path, folders):
    """Whether `path` (resolved) is one of `folders` or inside one."""
    try:
        real = path.resolve()
    except (OSError, RuntimeError):  # a link loop: not inside anything
        return False
    return any(real == f or f in real.parents for f in folders)


def _link_problem(path):
    """Why a symbolic link cannot be used as an input (None: it can)."""
    try:
        target = path.resolve(strict=True)
    except RuntimeError:  # Python < 3.13 reports loops this way
        return "symbolic link loop"
    except OSError as e:
        if e.errno == errno.ELOOP:
            return "symbolic link loop"
        return "dangling symbolic link (its target does not exist)"
    if target.is_dir():
        return "symbolic link to a folder (not followed)"
    return None


def _to_rgb8(img):
    """Any PIL mode -> 8-bit RGB; alpha is composited onto white."""
    if img.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # 16-bit or 32-bit grayscale: scale the full range to 8 bits.
        arr = np.asarray(img, dtype=np.float64)
        top = (
            65535.0
            if img.mode.startswith("I;16") or arr.max() > 255
            else (255.0)
        )
        if img.mode == "F" and arr.max() <= 1.0:
            top = 1.0
        arr = np.clip(arr / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return np.stack([arr] * 3, axis=-1)
    if img.mode == "P":
        img = img.convert("RGBA")
    if img.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        img = img.convert("RGBA")
        background = Image.new("RGBA", img.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, img)
    return np.asarray(img.convert("RGB"), dtype=np.uint8)


def decode_rgb(data, name="<bytes>", min_side=1, max_pixels=MAX_PIXELS):
    """Decode encoded image bytes to 8-bit RGB `[H, W, 3]` (see `load_rgb`)."""
    if not data:
        raise ImageReadError(name, "empty file (0 bytes)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
            width, height = img.size
            # Checked from the header, before anything is decoded.
            if width * height > max_pixels:
                raise ImageTooLargeError(
                    name,
                    f"image too large ({width}x{height}; the limit is "
                    f"{max_pixels / 1e6:g} megapixels)",
                    width * height,
                )
            img.load()
            # Honour the camera's orientation tag (phones store rotated).
            img = ImageOps.exif_transpose(img)
            rgb = _to_rgb8(img)
    except ImageReadError:
        raise
    except UnidentifiedImageError:
        raise ImageReadError(
            name, "not an image (unrecognised format)"
        ) from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageReadError(
            name, "image too large (decompression bomb)"
        ) from None
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageReadError(
            name, f"corrupt or truncated image ({first_line(e)})"
        ) from None
    if min(rgb.shape[:2]) < min_side:
        raise ImageReadError(
            name,
            f"image too small ({rgb.shape[1]}x{rgb.shape[0]}, "
            f"need at least {min_side} px on the short side)",
        )
    return rgb


def load_rgb(path, min_side=1, max_pixels=MAX_PIXELS):
    """Read an image file as 8-bit RGB `[H, W, 3]`.

    Handles grayscale, palette, RGBA/LA (composited onto white), 16-bit and
    32-bit grayscale, 48-bit RGB, CMYK and EXIF-rotated images.

    Args:
        path: file path.
        min_side: reject images whose short side is below this.
        max_pixels: reject images with more pixels (read from the header,
            before decoding).

    Returns:
        `np.uint8` array `[H, W, 3]`.

    Raises:
        ImageReadError: missing, empty, non-image, corrupt, truncated, too
            large or too small file, with a one-line reason.
    """
    path = pathlib.Path(path)
    if not path.exists():
        raise ImageReadError(path, "no such file")
    if path.is_dir():
        raise ImageReadError(path, "is a folder, not an image")
    try:
        data = path.read_bytes()
    except OSError as e:
        raise ImageReadError(path, f"cannot read ({e.strerror or e})") from None
    return decode_rgb(data, str(path), min_side=min_side, max_pixels=max_pixels)


_FORMATS = {
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".png": "PNG",
    ".webp": "WEBP",
    ".bmp": "BMP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
}


def load_images(folder, max_images=None, min_side=8, on_error=None):
    """The readable images of a folder, in `find_images` order.

    The one "load up to N photos" of the package (validation samples,
    export calibration and checks, evaluation). A file that cannot be read
    is skipped (after `on_error(path, error)` when given), not fatal.

    Args:
        folder: searched recursively (`find_images`).
        max_images: stop after this many images (None: all).
        min_side: images with a shorter side are unreadable (`load_rgb`).
        on_error: optional callback for each skipped file.

    Returns:
        list of `(path, uint8 [H, W, 3])`; empty when none is readable.

    Raises:
        FileNotFoundError: `folder` is not a folder.
    """
    images = []
    for path in find_images(folder):
        if max_images is not None and len(images) >= max_images:
            break
        try:
            images.append((path, load_rgb(path, min_side=min_side)))
        except Exception as e:  # noqa: BLE001 - a bad photo is not fatal
            if on_error is not None:
                on_error(path, e)
    return images


def encode_image(rgb, suffix, quality=95):
    """uint8 RGB `[H, W, 3]` -> file bytes in the format of `suffix`.

    `suffix` is a file extension (".jpg", ".png", ...); unknown ones give
    PNG. The one encoder of `save_rgb` and of the Beam pipeline, so both
    write identical files.
    """
    fmt = _FORMATS.get(str(suffix).lower(), "PNG")
    img = Image.fromarray(np.asarray(rgb, dtype=np.uint8), "RGB")
    kwargs = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def save_rgb(path, rgb, quality=95):
    """Write an 8-bit RGB array atomically (format from the extension).

    The file is written to a temporary name in the same folder and renamed,
    so an interrupted run never leaves a half-written image under the final
    name.

    Raises:
        OSError: the folder cannot be created or written.
    """
    path = pathlib.Path(path)
    data = encode_image(rgb, path.suffix, quality)
    with atomic_path(path) as tmp:
        pathlib.Path(tmp).write_bytes(data)
    return path


def encode_jpeg(rgb, quality=95):
    """uint8 RGB -> JPEG bytes (4:4:4 chroma, no subsampling artefacts)."""
    buf = io.BytesIO()
    Image.fromarray(rgb, "RGB").save(
        buf, format="JPEG", quality=quality, subsampling=0
    )
    return buf.getvalue()


def parse_memory(text):
    """Bytes from "1.5G", "800M", "2048K", "1e9" (decimal units).

    Raises:
        ValueError: not a positive size.
    """
    units = {"K": 10**3, "M": 10**6, "G": 10**9, "T": 10**12}
    t = str(text).strip().upper().removesuffix("B")
    scale = 1
    if t and t[-1] in units:
        scale, t = units[t[-1]], t[:-1]
    try:
        value = float(t) * scale
    except ValueError:
        raise ValueError(
            f"not a memory size: {text!r} (e.g. 1.5G, 800M)"
        ) from None
    if not value > 0 or value == float("inf"):
        raise ValueError(f"memory size must be positive, got {text!r}")
    return int(value)
