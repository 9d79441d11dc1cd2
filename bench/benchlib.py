"""What every bench script records with its numbers: the machine, the time.

Bench results are only comparable within one run on one machine (the CPU
model changes between sessions): each JSON says which machine and load it
was measured on.
"""

import datetime
import json
import os
import pathlib
import platform


# The instruction sets that decide which kernels TF, XNNPACK and ORT run
# (the ratios between backends change with them: docs/environment.md).
ISA_FLAGS = (
    "avx2",
    "fma",
    "avx512f",
    "avx512_vnni",
    "avx512_bf16",
    "avx512_fp16",
    "avx_vnni",
    "amx_bf16",
    "amx_int8",
)


def cpu_identity(cpuinfo_text):
    """`(model name, "family/model", [ISA_FLAGS present])` of a
    /proc/cpuinfo text (None / [] for what it does not say)."""
    fields = {}
    for line in cpuinfo_text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:
            fields[key.strip()] = value.strip()
    family, model = fields.get("cpu family"), fields.get("model")
    flags = set(fields.get("flags", "").split())
    return (
        fields.get("model name"),
        f"{family}/{model}" if family and model else None,
        [f for f in ISA_FLAGS if f in flags],
    )


def machine():
    """CPU model, core count, bfloat16 support, load, library versions."""
    from uegan_tf.precision import cpu_has_bf16

    try:
        text = pathlib.Path("/proc/cpuinfo").read_text()
    except OSError:
        text = ""
    name, family_model, isa = cpu_identity(text)
    info = {
        "cpu": name or platform.processor() or platform.machine(),
        # "AMD EPYC" names Zen 2 to Zen 5 alike: family/model tells them
        # apart (25/17 is Zen 4 Genoa), the flags what the kernels can use.
        "cpu_family_model": family_model,
        "isa": isa,
        "cpu_count": os.cpu_count(),
        "native_bf16": cpu_has_bf16(),
        "platform": platform.platform(),
        "load_average": list(os.getloadavg()),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(
            timespec="seconds"
        ),
    }
    try:
        import tensorflow as tf

        info["tensorflow"] = tf.__version__
    except ImportError:
        pass
    return info


def markdown_table(header, rows):
    """A Markdown table: `header` the column titles, `rows` lists of cells
    (any values, `str()`-ed; one cell per title)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        if len(row) != len(header):
            raise ValueError(f"{len(header)} columns, a row has {len(row)}")
        lines.append("| " + " | ".join(str(c) for c in row) + " |")
    return "\n".join(lines)


def write_json(path, payload):
    """Write `payload` plus {"machine": machine()} as indented JSON."""
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        json.dumps({"machine": machine(), **payload}, indent=2) + "\n"
    )
    print(f"\nwrote {path}")
