"""Throughput of bulk stylization: Beam DirectRunner vs `uegan stylize`.

    python bench/bench_beam.py [--images=32] [--size=256] [--workers=2] \
        [--model=STYLE|SAVEDMODEL] [--out=bench/results/beam.json]

Writes `--images` synthetic photos (sizes around `--size`, all different,
so no batching across images), then stylizes the same folder with

- `uegan stylize DIR --out_dir=...` (one process), and
- `python -m uegan_tf.inference.beam --input=DIR/** --runner=DirectRunner
  --direct_num_workers=N --direct_running_mode=multi_processing`,

each as a fresh command, timed end to end (start-up and model loading
included: what a user waits for). Prints a Markdown table with images per
second and the Beam / stylize ratio, and writes JSON.
"""

import argparse
import json
import os
import pathlib
import platform
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def make_photos(folder, n, size):
    from uegan_tf.image_io import save_rgb
    from uegan_tf.testing import synthetic_image

    for i in range(n):
        # Sizes differ by a few pixels: realistic for a photo collection.
        h, w = size + (i % 5) * 4, size + (i % 7) * 4
        save_rgb(
            folder / f"set{i % 3}" / f"photo_{i:03d}.jpg",
            synthetic_image(h, w, seed=i),
        )


def timed(cmd):
    env = dict(os.environ, PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="3")
    start = time.perf_counter()
    run = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if run.returncode != 0:
        raise SystemExit(f"failed: {' '.join(cmd)}\n{run.stderr[-3000:]}")
    return seconds


def count_outputs(folder):
    return sum(1 for p in folder.rglob("*.jpg"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--model", default=None)
    parser.add_argument("--out", default="bench/results/beam.json")
    args = parser.parse_args()
    model = [f"--model={args.model}"] if args.model else []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = pathlib.Path(tmp)
        photos = tmp / "photos"
        make_photos(photos, args.images, args.size)
        rows = []
        load = os.getloadavg()
        plain = tmp / "plain"
        seconds = timed(
            [sys.executable, "-m", "uegan_tf.inference.stylize", str(photos)]
            + [f"--out_dir={plain}"]
            + model
        )
        assert count_outputs(plain) == args.images
        rows.append({"runner": "uegan stylize (1 process)", "seconds": seconds})
        beam_out = tmp / "beam"
        seconds = timed(
            [sys.executable, "-m", "uegan_tf.inference.beam"]
            + [f"--input={photos}/**", f"--output={beam_out}"]
            + ["--runner=DirectRunner", f"--direct_num_workers={args.workers}"]
            + ["--direct_running_mode=multi_processing"]
            + model
        )
        assert count_outputs(beam_out) == args.images
        rows.append(
            {
                "runner": f"Beam DirectRunner, {args.workers} workers "
                "(multi_processing)",
                "seconds": seconds,
            }
        )
    for r in rows:
        r["images_per_s"] = args.images / r["seconds"]
    ratio = rows[1]["images_per_s"] / rows[0]["images_per_s"]
    print(
        f"{args.images} images of ~{args.size}x{args.size} px, model "
        f"{args.model or 'default style'}, {os.cpu_count()} CPUs, load "
        f"average {load[0]:.1f} before\n"
    )
    print("| runner | wall s | images/s |\n|---|---|---|")
    for r in rows:
        print(
            f"| {r['runner']} | {r['seconds']:.1f} | {r['images_per_s']:.2f} |"
        )
    print(f"\nBeam / stylize throughput ratio: {ratio:.2f}")
    out = ROOT / args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    result = {
        "images": args.images,
        "size": args.size,
        "workers": args.workers,
        "model": args.model,
        "cpus": os.cpu_count(),
        "machine": platform.platform(),
        "load_average_before": load,
        "rows": rows,
        "ratio": ratio,
    }
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
