"""Benchmark video stylization throughput on this machine (run by hand).

    python bench/bench_video.py [--size=1280x720] [--frames=48] \
        [--batch=4] [--rounds=3] [--checkpoint=SOURCE] \
        [--out=bench/results/video.json]

Makes a synthetic clip (ffmpeg's `testsrc2` pattern, H.264, with audio) and
stylizes it with `stylize_video` two ways, in interleaved rounds:
`sequential` (decode, stylize, encode one after another in one thread) and
`overlapped` (a decode thread and an encode thread around the model, the
default). Reports frames per second and the share of the wall time spent
inside the generator calls (the ceiling is 100 %: the model's own rate).
Medians over `--rounds`. Without --checkpoint the bundled default style is
used. Prints a Markdown table and writes JSON.
"""

import pathlib
import statistics
import sys
import tempfile

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from absl import app  # noqa: E402
from absl import flags  # noqa: E402
from benchlib import write_json  # noqa: E402

_SIZE = flags.DEFINE_string("size", "1280x720", "Clip size WxH.")
_FRAMES = flags.DEFINE_integer("frames", 48, "Frames in the clip.")
_BATCH = flags.DEFINE_integer("batch", 4, "Frames per generator call.")
_ROUNDS = flags.DEFINE_integer("rounds", 3, "Interleaved rounds.")
_CHECKPOINT = flags.DEFINE_string(
    "checkpoint", None, "Generator source; default: the bundled style."
)
_OUT = flags.DEFINE_string("out", "bench/results/video.json", "JSON output.")


def main(argv):
    del argv
    from uegan_tf.inference.stylizer import Stylizer
    from uegan_tf.inference.video import model_share
    from uegan_tf.inference.video import stylize_video
    from uegan_tf.testing import make_test_clip

    stylizer = Stylizer(_CHECKPOINT.value)
    runs = {"sequential": [], "overlapped": []}
    with tempfile.TemporaryDirectory() as tmp:
        src = pathlib.Path(tmp) / "clip.mp4"
        make_test_clip(
            src, _FRAMES.value, _SIZE.value, rate=24, pattern="testsrc2"
        )
        # Warm-up: traces the generator at this size.
        stylize_video(stylizer, src, pathlib.Path(tmp) / "warm.mp4", batch=1)
        for r in range(_ROUNDS.value):
            for name in runs:
                info = stylize_video(
                    stylizer,
                    src,
                    pathlib.Path(tmp) / f"{name}.mp4",
                    batch=_BATCH.value,
                    overlap=name == "overlapped",
                )
                row = {
                    "fps": info["frames"] / info["seconds"],
                    "model_share": model_share(info),
                    "seconds": info["seconds"],
                    "model_seconds": info["model_seconds"],
                }
                runs[name].append(row)
                print(
                    f"round {r} {name:10s} {row['fps']:6.2f} frames/s, "
                    f"model {row['model_share']:.0%}",
                    flush=True,
                )
    summary = {
        name: {
            "fps": statistics.median(x["fps"] for x in rows),
            "model_share": statistics.median(x["model_share"] for x in rows),
        }
        for name, rows in runs.items()
    }
    base = summary["sequential"]["fps"]
    print()
    print(f"{_SIZE.value}, {_FRAMES.value} frames, batch {_BATCH.value}")
    print("| path | frames/s (median) | vs sequential | time in model |")
    print("|---|---|---|---|")
    for name, s in summary.items():
        print(
            f"| {name} | {s['fps']:.2f} | {s['fps'] / base:.2f}x | "
            f"{s['model_share']:.0%} |"
        )
    write_json(
        _OUT.value,
        {
            "size": _SIZE.value,
            "frames": _FRAMES.value,
            "batch": _BATCH.value,
            "summary": summary,
            "rounds": runs,
        },
    )


if __name__ == "__main__":
    app.run(main)
