"""Describe a prepared records folder and draw a contact sheet.

    python tools/inspect_tfrecords.py DIR [--sheet=DIR/contact_sheet.png] \
        [--num=6]

Prints record counts (checked against manifest.json), image sizes and pixel
value ranges per kind, and writes a PNG with rows photo / style / style
grayscale / edge-smoothed grayscale.
"""

import sys

import _bootstrap  # noqa: F401
from absl import app
from absl import flags

from uegan_tf.quiet import define_verbose_flag
from uegan_tf.quiet import quiet_tensorflow

define_verbose_flag()

flags.DEFINE_string(
    "sheet", None, "Contact sheet PNG (default: DIR/contact_sheet.png)."
)
flags.DEFINE_integer("num", 6, "Examples per row.")
FLAGS = flags.FLAGS


def main(argv):
    quiet_tensorflow(flags.FLAGS.verbose)
    if len(argv) != 2:
        print("usage: python tools/inspect_tfrecords.py DIR", file=sys.stderr)
        return 2
    from uegan_tf.data.inspect import contact_sheet
    from uegan_tf.data.inspect import summarize
    from uegan_tf.data.pipeline import CorruptRecordsError
    from uegan_tf.image_io import save_rgb

    records = argv[1]
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
    sheet = FLAGS.sheet or f"{records}/contact_sheet.png"
    save_rgb(sheet, contact_sheet(records, FLAGS.num))
    print(
        f"contact sheet (rows: photo, style, style gray, smoothed gray): "
        f"{sheet}"
    )
    return 0 if ok else 1


if __name__ == "__main__":
    app.run(lambda argv: sys.exit(main(argv)))
