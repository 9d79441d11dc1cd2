"""What this CPU can compute fast: bfloat16 or not.

TensorFlow's oneDNN kernels run bfloat16 convolutions and matrix products
natively on x86 CPUs with AVX512_BF16 (Cooper Lake, Zen 4 and later) and
AMX-BF16 (Sapphire Rapids and later); elsewhere they emulate it, slower than
float32. Training (`--precision=mixed_bfloat16`) and inference
(`--precision=bf16`) check here to say so instead of silently slowing down.
"""

import functools
import pathlib

# /proc/cpuinfo flag names of native bfloat16 arithmetic.
BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@functools.lru_cache(maxsize=1)
def cpu_flags(cpuinfo="/proc/cpuinfo"):
    """The CPU feature flags as a frozenset (empty where unreadable).

    Linux only: other systems give an empty set, so bfloat16 is reported
    as unsupported there (it still runs, emulated).
    """
    try:
        text = pathlib.Path(cpuinfo).read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith("flags"):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def cpu_has_bf16(flags=None):
    """True when the CPU has native bfloat16 arithmetic (see BF16_FLAGS)."""
    flags = cpu_flags() if flags is None else flags
    return any(f in flags for f in BF16_FLAGS)


# `--precision` of inference (stylize, the app, export).
INFERENCE_PRECISIONS = ("fp32", "bf16")

NO_BF16_NOTE = (
    "note: --precision=bf16 needs a CPU with AVX512_BF16 or AMX-BF16 "
    "(emulated bfloat16 is slower than float32); running in fp32"
)


def inference_precision(requested, note=None):
    """The inference precision to use for `requested` ("fp32" or "bf16").

    bf16 on a CPU without native bfloat16 falls back to fp32, after one
    line through `note` (default: stderr).

    Raises:
        ValueError: an unknown precision name.
    """
    if requested not in INFERENCE_PRECISIONS:
        raise ValueError(
            f"precision must be one of {INFERENCE_PRECISIONS}, "
            f"got {requested!r}"
        )
    if requested == "bf16" and not cpu_has_bf16():
        if note is None:
            import sys

            print(NO_BF16_NOTE, file=sys.stderr)
        else:
            note(NO_BF16_NOTE)
        return "fp32"
    return requested
