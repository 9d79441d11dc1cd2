"""One-line reasons from exceptions, for the commands' `error:` lines.

TensorFlow, Keras, TFDS and the image libraries raise messages of many
lines (op dumps, stack summaries); the user sees the first one.
"""

__all__ = ["describe", "first_line"]


def first_line(error, empty=None):
    """The first line of `str(error)`, stripped.

    Args:
        error: an exception (or anything with a message).
        empty: what to return when the message is empty (default: the
            exception's type name).
    """
    text = str(error).strip()
    if text:
        return text.splitlines()[0]
    return type(error).__name__ if empty is None else empty


def describe(error):
    """`"TypeName: first line"`, or `"TypeName"` for an empty message."""
    reason = first_line(error, "")
    name = type(error).__name__
    return f"{name}: {reason}" if reason else name
