"""Describe a prepared records folder and draw a contact sheet.

    python tools/inspect_tfrecords.py DIR [--sheet=DIR/contact_sheet.png] \
        [--num=6]

Prints record counts (checked against manifest.json), image sizes and pixel
value ranges per kind, and writes a PNG with rows photo / style / style
grayscale / edge-smoothed grayscale. Exit codes: 0 fine, 1 damaged
records or counts that do not match the manifest, 2 no such folder or bad
flags. The flags are generated from `uegan_tf.config.InspectConfig`.
"""

import sys

import _bootstrap  # noqa: F401

from uegan_tf import flags as uflags
from uegan_tf.config import InspectConfig

USAGE = """\
  python tools/inspect_tfrecords.py DIR [--sheet=DIR/contact_sheet.png] \\
      [--num=6]

Describe a records folder written by tools/make_tfrecords.py and draw a
contact sheet."""


def describe(cfg):
    """Print the summary of `cfg.records` and write its contact sheet.

    Returns:
        The exit code: 0 fine, 1 damaged records or a count that differs
        from the manifest, 2 no such folder.
    """
    from uegan_tf.data.inspect import contact_sheet
    from uegan_tf.data.inspect import summarize
    from uegan_tf.data.pipeline import CorruptRecordsError
    from uegan_tf.image_io import save_rgb

    records = cfg.records
    try:
        info = summarize(records)
    except CorruptRecordsError as e:
        # The folder is there but its data is damaged: a failed input.
        print(f"error: {e}", file=sys.stderr)
        return 1
    except (FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    ok = True
    for kind, d in info.items():
        match = (
            ""
            if d["count"] == d["manifest_count"]
            else (f"  MISMATCH: manifest says {d['manifest_count']}")
        )
        ok &= not match
        print(
            f"{kind:>5}: {d['count']} records in {d['shards']} shards, "
            f"H {d['height'][0]}-{d['height'][1]}, "
            f"W {d['width'][0]}-{d['width'][1]}, "
            f"pixels {d['min']}-{d['max']} (uint8){match}"
        )
    sheet = cfg.sheet or f"{records}/contact_sheet.png"
    save_rgb(sheet, contact_sheet(records, cfg.num))
    print(
        f"contact sheet (rows: photo, style, style gray, smoothed gray): "
        f"{sheet}"
    )
    return 0 if ok else 1


def cli(argv=None, flag_values=None):
    """`python tools/inspect_tfrecords.py DIR`: flags from `InspectConfig`.

    Args:
        argv: the command line, program name first (default: sys.argv).
        flag_values: the flag registry (default: a fresh one).

    Returns:
        The exit code (see `describe`; 2 also for bad flags).
    """
    return uflags.run_config_command(
        InspectConfig, USAGE, describe, argv, flag_values
    )


if __name__ == "__main__":
    sys.exit(cli())
