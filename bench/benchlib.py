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


def machine():
    """CPU model, core count, bfloat16 support, load, library versions."""
    from uegan_tf.precision import cpu_has_bf16

    model = platform.processor() or platform.machine()
    try:
        for line in pathlib.Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "cpu": model,
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
