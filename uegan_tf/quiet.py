"""Quiet TensorFlow start-up for the command-line entry points.

On import TensorFlow's C++ side prints oneDNN and "could not find cuda
drivers" notices to fd 2, and the first device query prints `E0000 ...
failed call to cuInit` on a machine without a GPU. `TF_CPP_MIN_LOG_LEVEL`
does not hide them (they are written before absl's log is initialised), so
the entry points import TensorFlow and query the devices once with fd 2
pointed at /dev/null. `--verbose` keeps everything.

Nothing here imports TensorFlow at module import time.
"""

import os
import sys

VERBOSE_FLAG = "--verbose"


def wants_verbose(argv=None):
    """Whether `--verbose` (or `--verbose=true`) is among the arguments."""
    argv = sys.argv if argv is None else argv
    args = argv[: argv.index("--")] if "--" in argv else argv
    return any(
        a == VERBOSE_FLAG or a.lower() in ("--verbose=true", "--verbose=1")
        for a in args
    )


def define_verbose_flag():
    """Define absl's `--verbose` bool flag once (for the tools' parsers)."""
    from absl import flags

    if "verbose" not in flags.FLAGS:
        flags.DEFINE_bool(
            "verbose",
            False,
            "Show TensorFlow's start-up log and full ffmpeg messages.",
        )


def quiet_tensorflow(verbose=None):
    """Import TensorFlow with its start-up lines hidden (unless verbose).

    Args:
        verbose: keep TensorFlow's output; None reads `--verbose` from
            `sys.argv`.
    """
    if verbose is None:
        verbose = wants_verbose()
    if verbose:
        import tensorflow  # noqa: F401

        return
    from absl import logging

    try:
        saved = os.dup(2)
    except OSError:  # no fd 2 (a daemon): nothing to hide it from
        import tensorflow  # noqa: F401

        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        sys.stderr.flush()
        os.dup2(devnull, 2)
        import tensorflow as tf

        # cuInit runs at the first device query, not at import.
        tf.config.list_physical_devices("GPU")
        tf.get_logger().setLevel("ERROR")
        logging.set_verbosity(logging.WARNING)
    finally:
        os.dup2(saved, 2)
        os.close(devnull)
        os.close(saved)
