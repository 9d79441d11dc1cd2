"""Evaluate stylization models side by side.

    python -m uegan_tf.eval.evaluate \
        --models=anime,plain=runs/anime_plain@2000 --photos=photos/ \
        --style_dir=style_images/ --out=eval/anime \
        --vgg16_weights=path/to/vgg16_imagenet_features.npz \
        [--features=auto|inception|vgg16|none] [--inception_weights=PATH] \
        [--nobaselines] [--style_crops=64] [--edge_tolerance=2]

For every model (anything `uegan stylize` accepts; `label=source` names a
row, `source@STEP` picks a training work dir's checkpoint) it stylizes each
photo and measures content preservation against the photo (PSNR/SSIM on
luma, Sobel L1, Canny edge F1, CIELAB Delta E), the style gain of its
outputs toward the `--style_dir` images (local VGG16 statistics, KID
relative to the photos' own: docs/evaluation.md), the distance of its
outputs to the style images and to the photos (FID, KID), its latency per
image and parameter count. The photos unchanged ("input") and two
non-learned baselines (`cv2.stylization`, a classic cartoonizer) are rows
too, unless `--noinput_row` / `--nobaselines`. It writes `results.md`,
`results.csv`, `results.json`, the per-image CSV and `grid.png` (rows:
photos; columns: the input and each model's output).
"""

import csv
import dataclasses
import json
import pathlib
import statistics
import sys
import time

import numpy as np
from absl import flags

from uegan_tf import flags as uflags
from uegan_tf.config import parsed_setting
from uegan_tf.config import setting

INPUT_LABEL = "input"  # the reference row: photos as their own "output"
METRICS = ("psnr_y", "ssim_y", "sobel_l1", "edge_f1", "delta_e")
BASELINE_SOURCE = "baseline:"  # source prefix of the non-learned rows
METRIC_HELP = {
    "psnr_y": "PSNR of luma vs the input (dB, higher = closer)",
    "ssim_y": "SSIM of luma vs the input (1 = identical)",
    "sobel_l1": "L1 of Sobel edge magnitudes vs the input (lower = closer)",
    "edge_f1": "F1 of Canny edges vs the input (1 = same contours)",
    "delta_e": "mean CIELAB Delta E vs the input (lower = closer colours)",
}


# Layouts of the comparison grid (`comparison_grid`).
GRID_LAYOUTS = ("photo_rows", "photo_columns")


def _models_setting(text):
    """`--models` text ("a,b=path") -> `(label, source)` pairs."""
    return parse_models([text]) if text.strip() else ()


@dataclasses.dataclass(frozen=True)
class EvalConfig:
    """Settings of one evaluation; each is also a flag of the command.

    `models` holds `(label, source)` pairs (`parse_models`); a source is
    anything `uegan stylize` accepts, `source@STEP` a work dir's checkpoint.
    """

    models: tuple = parsed_setting(
        "",
        _models_setting,
        "Models, comma-separated: names or paths, optionally label=source "
        "(none: only the input and baseline rows).",
    )
    photos: str = setting("", "Folder of input photos (required).")
    out: str = setting("", "Output folder (required).")
    style_dir: str | None = setting(
        None, "Style images for the style gain and FID/KID."
    )
    features: str = setting(
        "auto",
        "FID/KID features: Inception-v3 if its weights load, else the "
        "offline VGG16 (auto), or one of them, or none.",
        choices=("auto", "inception", "vgg16", "none"),
    )
    inception_weights: str = setting(
        "imagenet", "imagenet (download) or a local .h5 for Inception-v3."
    )
    vgg16_weights: str | None = setting(
        None, "Offline VGG16 .npz (style gain; fallback FID features)."
    )
    edge_tolerance: int = setting(2, "Edge F1 tolerance (px).")
    grid_size: int = setting(
        256,
        "Comparison grid: cell side (photo_rows) or row height "
        "(photo_columns).",
    )
    grid_layout: str = setting(
        "photo_rows",
        "photo_rows: a row per photo, a column per model; photo_columns: "
        "a column per photo, a row per model (before/after strips).",
        choices=GRID_LAYOUTS,
    )
    max_side: int = setting(1024, "Downscale photos with a longer side.")
    input_row: bool = setting(
        True,
        "Add an 'input' row: the photos unchanged (the baseline of "
        "the style distances).",
    )
    baselines: bool = setting(
        True, "Add the non-learned rows: cv2.stylization and a cartoonizer."
    )
    style_crops: int = setting(64, "Style-gain windows per image.")
    style_crop: int = setting(96, "Style-gain window side (px).")
    verbose: bool = setting(False, "Show TensorFlow's log.")

    def validate(self):
        """Returns self; raises ValueError naming the first bad setting."""
        for name in ("photos", "out"):
            if not getattr(self, name):
                raise ValueError(f"--{name} is required")
        for name in (
            "edge_tolerance",
            "grid_size",
            "style_crops",
            "style_crop",
        ):
            if getattr(self, name) < 1:
                raise ValueError(
                    f"--{name} must be >= 1, got {getattr(self, name)}"
                )
        if self.max_side < 0:
            raise ValueError(f"--max_side must be >= 0, got {self.max_side}")
        from uegan_tf.inference.sources import check_sources

        # A source that names nothing: refused before TensorFlow.
        check_sources(split_step(source)[0] for _, source in self.models)
        return self


def parse_models(spec):
    """ "a,b=path" -> (("a", "a"), ("b", "path")), labelled as the app
    labels `--model` values (`registry.parse_model_specs`); a work dir's
    step stays in the source ("b=runs/x@1200", see `split_step`)."""
    from uegan_tf.registry import parse_model_specs

    return tuple(parse_model_specs(spec).items())


def split_step(source):
    """ "runs/x@1200" -> ("runs/x", 1200); anything else -> (source, None)."""
    path, at, step = source.rpartition("@")
    if at and path and step.isdigit():
        return path, int(step)
    return source, None


def letterbox(rgb, size):
    """Fit an image inside `size` x `size` on white, aspect kept."""
    import cv2

    h, w = rgb.shape[:2]
    scale = size / max(h, w)
    nh, nw = max(1, round(h * scale)), max(1, round(w * scale))
    small = cv2.resize(
        rgb,
        (nw, nh),
        interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC,
    )
    cell = np.full((size, size, 3), 255, np.uint8)
    y, x = (size - nh) // 2, (size - nw) // 2
    cell[y : y + nh, x : x + nw] = small
    return cell


def fit_height(rgb, height):
    """Resize an image to `height` rows, aspect kept."""
    import cv2

    h, w = rgb.shape[:2]
    scale = height / h
    return cv2.resize(
        rgb,
        (max(1, round(w * scale)), height),
        interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC,
    )


def comparison_grid(photos, outputs, size=256, pad=4, layout="photo_rows"):
    """The input photos next to each model's outputs.

    Args:
        photos: list of uint8 images.
        outputs: `{label: [uint8 image per photo]}` (ordered).
        size: "photo_rows" (a table: one row per photo; columns the input,
            then each model): cell side, images letterboxed into square
            cells. "photo_columns" (before/after strips: one column per
            photo; rows the inputs, then each model's outputs): row
            height, images scaled to it with their aspect, no borders.
        layout: one of `GRID_LAYOUTS`.

    Returns:
        uint8 image (see `image_ops.image_grid`).
    """
    from uegan_tf.image_ops import image_grid

    if layout == "photo_columns":
        rows = [[fit_height(p, size) for p in photos]]
        rows += [
            [fit_height(o, size) for o in outs] for outs in outputs.values()
        ]
        return image_grid(rows, pad=pad)
    if layout != "photo_rows":
        raise ValueError(
            f"layout must be one of {GRID_LAYOUTS}, got {layout!r}"
        )
    rows = []
    for i, photo in enumerate(photos):
        row = [letterbox(photo, size)]
        row += [letterbox(outs[i], size) for outs in outputs.values()]
        rows.append(row)
    return image_grid(rows, pad=pad)


def _feature_extractor(cfg, log):
    from uegan_tf.eval.metrics import FeatureExtractor

    if cfg.features == "none":
        return None
    if cfg.features in ("auto", "inception"):
        try:
            return FeatureExtractor("inception", cfg.inception_weights)
        except Exception as e:  # download or file errors: fall back
            first = str(e).splitlines()[0][:200] if str(e) else type(e)
            log(
                f"Inception-v3 weights unavailable ({first}); "
                + (
                    "FID/KID use the offline VGG16 features instead"
                    if cfg.features == "auto" and cfg.vgg16_weights
                    else "no FID/KID"
                )
            )
            if cfg.features == "inception":
                return None
    if cfg.vgg16_weights:
        return FeatureExtractor("vgg16", cfg.vgg16_weights)
    log(
        "no feature weights: FID/KID skipped (give --vgg16_weights or "
        "Inception weights)"
    )
    return None


def _stylize_timed(stylizer, photos):
    """`(inputs, outputs, seconds)`: each photo as the model sees it
    (downscaled to `max_side`), its stylization and the time it took."""
    stylizer(photos[0][:64, :64])  # trace once before timing
    inputs, outputs, times = [], [], []
    for photo in photos:
        photo = stylizer.prepare(photo)
        t = time.perf_counter()
        outputs.append(stylizer(photo))
        times.append(time.perf_counter() - t)
        inputs.append(photo)
    return inputs, outputs, times


def evaluate(cfg, log=print):
    """Run the evaluation; returns the summary dict (also written to disk)."""
    from uegan_tf.eval.baselines import BASELINES
    from uegan_tf.eval.baselines import BaselineStylizer
    from uegan_tf.eval.metrics import StyleDescriptor
    from uegan_tf.eval.metrics import content_metrics
    from uegan_tf.eval.metrics import fid
    from uegan_tf.eval.metrics import kid
    from uegan_tf.eval.metrics import style_gain
    from uegan_tf.image_io import find_images
    from uegan_tf.image_io import load_images
    from uegan_tf.image_io import load_rgb
    from uegan_tf.image_io import save_rgb
    from uegan_tf.inference.sources import resolve_source
    from uegan_tf.inference.stylizer import Stylizer

    # Every model source must exist before minutes of feature work (also
    # checked by `EvalConfig.validate`; a library caller may skip that).
    for _, source in cfg.models:
        resolve_source(split_step(source)[0])
    out = pathlib.Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    if not find_images(cfg.photos):
        raise FileNotFoundError(f"no photos in {cfg.photos}")
    # A bad photo is reported, not fatal.
    loaded = load_images(
        cfg.photos, on_error=lambda p, e: log(f"skipping {p}: {e}")
    )
    photos = [rgb for _, rgb in loaded]
    names = [p.name for p, _ in loaded]
    styles = []
    if cfg.style_dir:
        styles = [load_rgb(p, min_side=8) for p in find_images(cfg.style_dir)]
        if not styles:
            raise FileNotFoundError(f"no style images in {cfg.style_dir}")
    extractor = _feature_extractor(cfg, log)
    style_feats = photo_feats = None
    if extractor is not None:
        photo_feats = extractor(photos)
        if styles:
            style_feats = extractor(styles)
    describe = style_desc = photo_desc = None
    if styles and cfg.vgg16_weights:
        describe = StyleDescriptor(
            cfg.vgg16_weights, crop=cfg.style_crop, crops=cfg.style_crops
        )
        style_desc, photo_desc = describe(styles), describe(photos)
    elif styles:
        log("style gain skipped: it needs --vgg16_weights")

    rows, per_image, outputs = [], [], {}
    models = list(cfg.models)
    if cfg.baselines:
        models[:0] = [(n, BASELINE_SOURCE + n) for n in BASELINES]
    if cfg.input_row:
        models.insert(0, (INPUT_LABEL, None))
    for label, source in models:
        if source is None:
            # The input row: the photos as their own "output".
            params, inputs, results = 0, photos, photos
            times = [0.0] * len(photos)
        else:
            if source.startswith(BASELINE_SOURCE):
                stylizer = BaselineStylizer(
                    source[len(BASELINE_SOURCE) :], cfg.max_side
                )
            else:
                path, step = split_step(source)
                stylizer = Stylizer(
                    path, step=step, tile=0, max_side=cfg.max_side
                )
            params = (
                stylizer.generator.count_params()
                if stylizer.generator is not None
                else (0 if source.startswith(BASELINE_SOURCE) else None)
            )
            inputs, results, times = _stylize_timed(stylizer, photos)
            outputs[label] = results  # the grid's first column is the input
        for name, photo, result in zip(names, inputs, results):
            m = content_metrics(photo, result, cfg.edge_tolerance)
            per_image.append(
                {
                    "model": label,
                    "photo": name,
                    **{k: round(v, 4) for k, v in m.items()},
                }
            )
        row = {
            "model": label,
            "source": source or "(the photos)",
            "params": params,
            "latency_s": round(statistics.median(times), 3),
            "images": len(results),
        }
        for key in METRICS:
            values = [r[key] for r in per_image if r["model"] == label]
            row[key] = round(float(np.mean(values)), 4)
        if describe is not None:
            # The descriptors of the model's own inputs (after max_side).
            # A model's inputs are the photos themselves unless max_side
            # downscaled one (prepare returns the same array when it fits):
            # then the photos' descriptors serve, no second VGG pass.
            same = all(i is p for i, p in zip(inputs, photos))
            inputs_desc = photo_desc if same else describe(inputs)
            out_desc = inputs_desc if source is None else describe(results)
            sg = style_gain(out_desc, inputs_desc, style_desc)
            row["style_gain"] = round(sg["gain"], 4)
            row["kid_local"] = round(sg["kid_outputs"], 4)
        if extractor is not None:
            feats = photo_feats if source is None else extractor(results)
            if style_feats is not None:
                row["fid_style"] = round(fid(feats, style_feats), 3)
                k_mean, k_std = kid(feats, style_feats)
                row["kid_style"] = round(k_mean, 5)
                row["kid_style_std"] = round(k_std, 5)
            row["fid_photo"] = round(fid(feats, photo_feats), 3)
            row["kid_photo"] = round(kid(feats, photo_feats)[0], 5)
        rows.append(row)
        log(f"{label}: " + ", ".join(f"{k}={row[k]}" for k in METRICS))

    grid = comparison_grid(
        photos, outputs, cfg.grid_size, layout=cfg.grid_layout
    )
    save_rgb(out / "grid.png", grid)
    summary = {
        "photos": names,
        "features": extractor.label if extractor else None,
        "edge_tolerance_px": cfg.edge_tolerance,
        "rows": rows,
        "per_image": per_image,
    }
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    keys = list(rows[0].keys())
    for row in rows:
        keys += [k for k in row if k not in keys]
    with open(out / "results.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=keys)
        w.writeheader()
        w.writerows(rows)
    with open(out / "per_image.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(per_image[0].keys()))
        w.writeheader()
        w.writerows(per_image)
    (out / "results.md").write_text(markdown_table(summary))
    return summary


def markdown_table(summary):
    """The summary as a Markdown table with a legend."""
    rows = summary["rows"]
    cols = ["model", "params", "latency_s", *METRICS]
    cols += [c for c in ("style_gain", "kid_local") if c in rows[0]]
    extra = [
        c
        for c in ("fid_style", "kid_style", "fid_photo", "kid_photo")
        if c in rows[0]
    ]
    cols += extra
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c)
            cells.append(
                "-" if v is None else (f"{v:,}" if c == "params" else str(v))
            )
        lines.append("| " + " | ".join(cells) + " |")
    legend = [f"- {k}: {v}" for k, v in METRIC_HELP.items()]
    legend.append(f"- edge F1 tolerance: {summary['edge_tolerance_px']} px")
    legend.append("- latency_s: median seconds per image (this machine)")
    if "style_gain" in rows[0]:
        legend.append(
            "- style_gain: 1 - kid_local(model) / kid_local(photos): 0 = no "
            "closer to the style images than the photos, 1 = as close as the "
            "style images themselves; kid_local: KID between local VGG16 "
            "statistics of 96x96 windows of the outputs and of the style "
            "images (docs/evaluation.md)"
        )
    if extra:
        legend.append(
            f"- FID/KID features: {summary['features']}; "
            "*_style against the style images, *_photo against "
            "the input photos (lower = closer)"
        )
    legend.append(f"- photos: {len(summary['photos'])}")
    return "\n".join(lines + [""] + legend) + "\n"


USAGE = """\
  python -m uegan_tf.eval.evaluate --photos=DIR --out=DIR \\
      [--models=a,b=runs/x@2000] [--style_dir=DIR --vgg16_weights=NPZ] \\
      [--features=auto|inception|vgg16|none] [--nobaselines]"""


def cli(argv=None, flag_values=None):
    """`python -m uegan_tf.eval.evaluate`: flags from `EvalConfig`.

    Args:
        argv: the command line, program name first (default: sys.argv).
        flag_values: the flag registry (default: absl's global one; tests
            pass a fresh `flags.FlagValues()`).

    Returns:
        The exit code: 0 done, 2 bad flags or an unloadable model/folder.
    """
    return uflags.run_config_command(
        EvalConfig,
        USAGE,
        _run,
        argv,
        flags.FLAGS if flag_values is None else flag_values,
    )


def _run(cfg):
    """Evaluate, print the table; the exit code."""
    from uegan_tf.inference.sources import ModelLoadError

    try:
        summary = evaluate(cfg)
    except (ModelLoadError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(markdown_table(summary))
    print(
        f"wrote {cfg.out}/results.md, results.csv, per_image.csv, "
        "results.json, grid.png"
    )
    return 0


if __name__ == "__main__":
    sys.exit(cli())
