"""Peak memory of stylizing, untiled and under a `--max_memory` budget.

    python bench/bench_memory.py fit [--precisions=fp32,bf16] \
        [--sides=384,512,768,1024]
    python bench/bench_memory.py budget [--budget=1.5G] \
        [--sizes=1920x1080,4000x3000] [--precisions=fp32,bf16] [--untiled]

`fit`: peak RSS (`testing.peak_rss_bytes` of a fresh subprocess) of one untiled
generator call at square sizes, and the least-squares fit
peak = base + k * pixels that `inference.MODEL_BYTES_PER_PIXEL` and
`MEMORY_BASE_BYTES` record. `budget`: a val photo resized to each size,
stylized with the memory budget in a subprocess: peak RSS, seconds, tile
chosen; with --untiled also untiled (time and PSNR of the tiled output vs
it). Writes bench/results/memory_<mode>.json. Timings are only meaningful
on an otherwise idle machine.
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys

import numpy as np

REPO = pathlib.Path(__file__).resolve().parents[1]
PHOTO = REPO.parent / "shared" / "data" / "val_photo" / "skimage_coffee.jpg"

WORKER = r"""
import os, sys, time, json
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import numpy as np
from uegan_tf.inference.stylizer import Stylizer, parse_memory
from uegan_tf.testing import peak_rss_bytes
h, w, prec, budget, out = sys.argv[1:6]
h, w = int(h), int(w)
kw = {"tile": 0}
if budget != "untiled":
    kw = {"max_memory": parse_memory(budget)}
s = Stylizer("anime", precision=prec, **kw)
s(np.zeros((64, 64, 3), np.uint8))
base = peak_rss_bytes()
if out == "-":
    img = np.random.default_rng(0).integers(0, 256, (h, w, 3), np.uint8)
else:
    import cv2
    from uegan_tf.image_io import load_rgb
    img = load_rgb(sys.argv[6])
    img = cv2.resize(img, (w, h), interpolation=cv2.INTER_AREA)
tile = s.tile_for(h, w)
t = time.perf_counter()
y = s(img)
dt = time.perf_counter() - t
peak = peak_rss_bytes()
if out != "-":
    np.save(out, y)
print("RESULT " + json.dumps(dict(base=base, peak=peak, seconds=dt, tile=tile)))
"""


def run_worker(h, w, precision, budget, out="-"):
    res = subprocess.run(
        [
            sys.executable,
            "-c",
            WORKER,
            str(h),
            str(w),
            precision,
            budget,
            out,
            str(PHOTO),
        ],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=dict(os.environ, PYTHONPATH=str(REPO)),
    )
    lines = [x for x in res.stdout.splitlines() if x.startswith("RESULT ")]
    if res.returncode or not lines:
        raise RuntimeError(res.stderr[-2000:])
    return json.loads(lines[-1][7:])


def fit(args):
    rows = []
    for precision in args.precisions.split(","):
        pts = []
        for side in map(int, args.sides.split(",")):
            r = run_worker(side, side, precision, "untiled")
            pts.append((side * side, r["peak"]))
            rows.append(dict(precision=precision, side=side, **r))
            print(
                f"{precision} {side}^2 peak {r['peak'] / 1e6:.0f} MB "
                f"(after warm-up {r['base'] / 1e6:.0f} MB)",
                flush=True,
            )
        px, pk = np.array(pts, float).T
        k, base = np.polyfit(px, pk, 1)
        print(f"{precision}: peak = {base / 1e6:.0f} MB + {k:.0f} B/px")
        rows.append(dict(precision=precision, fit_base=base, fit_k=k))
    return rows


def psnr(a, b):
    mse = np.mean((a.astype(float) - b.astype(float)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255**2 / mse)


def budget(args):
    rows = []
    tmp = pathlib.Path("/tmp/bench_memory")
    tmp.mkdir(exist_ok=True)
    for size in args.sizes.split(","):
        w, h = map(int, size.split("x"))
        for precision in args.precisions.split(","):
            t_out = str(tmp / f"t_{size}_{precision}.npy")
            r = run_worker(h, w, precision, args.budget, t_out)
            row = dict(size=size, precision=precision, budget=args.budget, **r)
            if args.untiled:
                u_out = str(tmp / f"u_{size}_{precision}.npy")
                u = run_worker(h, w, precision, "untiled", u_out)
                row.update(
                    untiled_peak=u["peak"],
                    untiled_seconds=u["seconds"],
                    psnr_vs_untiled=psnr(np.load(t_out), np.load(u_out)),
                )
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", choices=["fit", "budget"])
    p.add_argument("--precisions", default="fp32,bf16")
    p.add_argument("--sides", default="384,512,768,1024")
    p.add_argument("--sizes", default="1920x1080,4000x3000")
    p.add_argument("--budget", default="1.5G")
    p.add_argument("--untiled", action="store_true")
    p.add_argument(
        "--out",
        default=None,
        help="JSON output (default: bench/results/memory_MODE.json)",
    )
    args = p.parse_args()
    rows = fit(args) if args.mode == "fit" else budget(args)
    out = pathlib.Path(
        args.out or REPO / "bench" / "results" / f"memory_{args.mode}.json"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rows, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
