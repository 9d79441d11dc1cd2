"""FP32 vs bfloat16 inference: speed, output PSNR and where the time goes.

    python bench/bench_precision.py [--sizes=512,1024] [--rounds=7] \
        [--profile_size=512] [--out=bench/results/precision.json]

- speed: the bundled default (`anime`) generator (UE) called in a `tf.function`
  on a float32 `[1, S, S, 3]` input, FP32 and `--precision=bf16`
  (`inference.with_precision`) alternating call by call (interleaved
  rounds), median seconds and FP32/bf16 ratio;
- PSNR of the bf16 uint8 outputs vs the FP32 ones (`Stylizer`, untiled)
  on the six photos of ../shared/data/val_photo at 512 px long side;
- profile (`--profile_size`, 0: skip): the same interleaved timing of
  ablated generators, each still the same size of network: reflect
  padding replaced by the convolution's own zero padding ("no_pad"), the
  layer norms replaced by identity ("no_norm"), both ("convs"): the
  differences are the time of the padding and of the layer norms.

Run on an otherwise idle machine. Prints Markdown tables, writes JSON.
"""

import argparse
import json
import os
import pathlib
import platform
import statistics
import sys
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from uegan_tf.image_io import load_rgb  # noqa: E402
from uegan_tf.image_ops import fit_long_side  # noqa: E402
from uegan_tf.inference.stylizer import Stylizer  # noqa: E402
from uegan_tf.inference.stylizer import load_generator  # noqa: E402
from uegan_tf.inference.stylizer import with_precision  # noqa: E402
from uegan_tf.models import layers  # noqa: E402
from uegan_tf.precision import cpu_has_bf16  # noqa: E402

PHOTOS = REPO.parent / "shared" / "data" / "val_photo"


def graph_fn(generator):
    return tf.function(
        lambda x: generator(x, training=False),
        input_signature=[tf.TensorSpec([1, None, None, 3], tf.float32)],
    )


def interleaved(fns, x, rounds, warmup=1):
    """Median seconds per fn, calls alternating between the fns."""
    for fn in fns.values():
        for _ in range(warmup):
            fn(x).numpy()
    times = {k: [] for k in fns}
    for _ in range(rounds):
        for k, fn in fns.items():
            t = time.perf_counter()
            fn(x).numpy()
            times[k].append(time.perf_counter() - t)
    return {k: statistics.median(v) for k, v in times.items()}


def psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else float(10 * np.log10(255**2 / mse))


class _IdentityNorm(layers.LayerNorm):
    """A layer norm that returns its input (profile ablation); the
    LeakyReLU that `LayerNorm` applies for its block stays."""

    def call(self, inputs, stats=None, leaky_alpha=None):
        if leaky_alpha is None:
            return inputs
        return tf.nn.leaky_relu(inputs, alpha=leaky_alpha)


def ablated(generator, precision, no_pad, no_norm):
    """A copy of `generator` (same weights) with padding / norms ablated."""
    g = with_precision(generator, "bf16") if precision == "bf16" else None
    if g is None:
        g, _ = load_generator("anime")
    if no_pad:
        for layer in g._flatten_layers():
            if isinstance(layer, layers.ConvNormLReLU):
                layer.padding = ((0, 0), (0, 0))
                layer.conv.padding = "same"
    if no_norm:
        for layer in g._flatten_layers():
            if isinstance(layer, layers.LayerNorm):
                layer.__class__ = _IdentityNorm
    return g


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="512,1024")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--profile_size", type=int, default=512)
    p.add_argument("--psnr_side", type=int, default=512)
    p.add_argument(
        "--out", default=str(REPO / "bench" / "results" / "precision.json")
    )
    args = p.parse_args()
    if not cpu_has_bf16():
        print("warning: no native bfloat16 on this CPU; bf16 is emulated")
    fp32, _ = load_generator("anime")
    fns = {
        "fp32": graph_fn(fp32),
        "bf16": graph_fn(with_precision(fp32, "bf16")),
    }
    report = {
        "machine": platform.processor() or platform.machine(),
        "cpu_has_bf16": cpu_has_bf16(),
        "tensorflow": tf.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "rounds": args.rounds,
        "load_average_at_start": os.getloadavg(),
        "speed": [],
    }
    rng = np.random.default_rng(0)
    print("| size | fp32 ms | bf16 ms | fp32 / bf16 |\n|---|---|---|---|")
    for size in map(int, args.sizes.split(",")):
        x = tf.constant(rng.uniform(-1, 1, (1, size, size, 3)), tf.float32)
        med = interleaved(fns, x, args.rounds)
        row = dict(
            size=size,
            fp32_s=med["fp32"],
            bf16_s=med["bf16"],
            ratio=med["fp32"] / med["bf16"],
        )
        report["speed"].append(row)
        print(
            f"| {size}² | {med['fp32'] * 1e3:.0f} | {med['bf16'] * 1e3:.0f}"
            f" | {row['ratio']:.2f}× |",
            flush=True,
        )

    if PHOTOS.exists():
        s32 = Stylizer("anime", tile=0)
        s16 = Stylizer("anime", tile=0, precision="bf16")
        rows = []
        for path in sorted(PHOTOS.glob("*.jpg")):
            rgb = fit_long_side(load_rgb(path), args.psnr_side)
            rows.append(dict(photo=path.name, psnr=psnr(s32(rgb), s16(rgb))))
        report["psnr"] = rows
        report["psnr_min"] = min(r["psnr"] for r in rows)
        print(f"\nPSNR bf16 vs fp32 at {args.psnr_side} px long side:")
        for r in rows:
            print(f"  {r['photo']}: {r['psnr']:.1f} dB")
    else:
        print(f"\n{PHOTOS} absent: no PSNR")

    if args.profile_size:
        size = args.profile_size
        x = tf.constant(rng.uniform(-1, 1, (1, size, size, 3)), tf.float32)
        variants = {}
        for prec in ("fp32", "bf16"):
            for name, no_pad, no_norm in (
                ("full", False, False),
                ("no_pad", True, False),
                ("no_norm", False, True),
                ("convs", True, True),
            ):
                g = ablated(fp32, prec, no_pad, no_norm)
                variants[f"{prec}/{name}"] = graph_fn(g)
        med = interleaved(variants, x, args.rounds)
        report["profile"] = {"size": size, "median_s": med}
        print(f"\nprofile at {size}² (ms; shares of the full time)")
        print(
            "| precision | full | reflect pad | layer norm | rest (convs, "
            "LReLU, resize, concat) |\n|---|---|---|---|---|"
        )
        for prec in ("fp32", "bf16"):
            full = med[f"{prec}/full"]
            pad = full - med[f"{prec}/no_pad"]
            norm = full - med[f"{prec}/no_norm"]
            rest = med[f"{prec}/convs"]
            print(
                f"| {prec} | {full * 1e3:.0f} | {pad * 1e3:.0f} "
                f"({pad / full:.0%}) | {norm * 1e3:.0f} ({norm / full:.0%})"
                f" | {rest * 1e3:.0f} ({rest / full:.0%}) |"
            )
    report["load_average_at_end"] = os.getloadavg()
    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
