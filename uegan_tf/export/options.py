"""What an export writes (`ExportOptions`) and how it fails (`ExportError`).

`ExportOptions`, `QUANTIZATIONS`, `DEFAULT_FIXED_SIZE` and `parse_hw` are
defined in `uegan_tf/config.py` (one definition per setting: the fields
are also the flags of `tools/export_tflite.py`) and re-exported here.
"""

from uegan_tf.config import DEFAULT_FIXED_SIZE
from uegan_tf.config import QUANTIZATIONS
from uegan_tf.config import SIZE_MULTIPLE
from uegan_tf.config import ExportOptions
from uegan_tf.config import parse_hw

# File-name label of each quantization mode.
QUANT_LABELS = {
    "none": "float32",
    "fp16": "fp16",
    "dynamic": "dynamic",
    "int8": "int8",
}


class ExportError(Exception):
    """An export that cannot be done; `str()` is a one-line reason."""


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


__all__ = [
    "DEFAULT_FIXED_SIZE",
    "QUANTIZATIONS",
    "QUANT_LABELS",
    "SIZE_MULTIPLE",
    "ExportError",
    "ExportOptions",
    "first_error_line",
    "parse_hw",
]
