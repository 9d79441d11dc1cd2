"""What an export writes (`ExportOptions`) and how it fails (`ExportError`)."""

import dataclasses

from uegan_tf.fileutil import output_dir_problem

QUANTIZATIONS = ("none", "fp16", "dynamic", "int8")
# File-name label of each quantization mode.
QUANT_LABELS = {
    "none": "float32",
    "fp16": "fp16",
    "dynamic": "dynamic",
    "int8": "int8",
}
# The generator downsamples twice by 2.
SIZE_MULTIPLE = 4
DEFAULT_FIXED_SIZE = (256, 256)


class ExportError(Exception):
    """An export that cannot be done; `str()` is a one-line reason."""


def parse_hw(text):
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
        formats: keys of `formats.FORMATS` to convert to (empty:
            SavedModel only).
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
        from uegan_tf.export.formats import FORMATS

        for f in self.formats:
            if f not in FORMATS:
                names = tuple(FORMATS)
                raise ValueError(f"format must be in {names}, got {f!r}")
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


def first_error_line(error):
    """A converter exception as one readable line (at most 300 chars)."""
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
