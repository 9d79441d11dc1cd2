"""Stylize images, folders, globs and videos.

    uegan stylize photo.jpg holidays/ 'shots/*.png' clip.mp4 --out_dir=out \
        [--style=anime | --model=PATH] [--tile=512 --overlap=32] \
        [--max_side=2048] [--brightness] [--side_by_side] \
        [--precision=bf16] [--max_memory=1.5G] \
        [--temporal_smoothing=0.5] [--skip_existing | --overwrite]
    uegan stylize --examples --out_dir=out      # the bundled example photos
    python -m uegan_tf.inference.stylize ...               # the same command

Every input is handled on its own: a bad file prints one line and the others
are still processed; the exit code is 1 when anything failed, 2 for usage
errors (no inputs, unloadable model, unwritable output folder).
"""

import dataclasses
import glob
import os
import pathlib
import sys
import time

from uegan_tf import flags as uflags
from uegan_tf.config import IMAGE_FORMATS
from uegan_tf.config import Bytes
from uegan_tf.config import argument
from uegan_tf.config import setting
from uegan_tf.errors import describe
from uegan_tf.fileutil import clean_stale_temps
from uegan_tf.fileutil import output_dir_problem
from uegan_tf.image_io import EXAMPLES_DIR
from uegan_tf.image_io import MAX_PIXELS
from uegan_tf.image_io import MB_PER_MEGAPIXEL
from uegan_tf.image_io import STYLIZE_BASE_MB
from uegan_tf.precision import INFERENCE_PRECISIONS

# Smallest useful --max_side: the generator's own minimum side
# (`stylizer.MIN_SIDE`, not imported here: it would load TensorFlow
# before the flags are parsed).
MIN_MAX_SIDE = 8


@dataclasses.dataclass(frozen=True)
class StylizeConfig:
    """Settings of one stylize run: each field is one flag (its help below).

    `inputs` are the command's positional arguments; `model` (a path) and
    `style` (a name) are two ways to give the generator (`source`);
    `max_memory` is in bytes (its flag reads 1.5G, 800M). Defined here,
    not in `uegan_tf/config.py`: its defaults and help come from
    `image_io` (numpy, PIL), which config.py does not import.
    """

    inputs: tuple = argument(
        (), "Image or video files, folders (searched recursively) and globs."
    )
    out_dir: str = setting("stylized", "Output folder.")
    style: str | None = setting(None, "A named style (uegan list-styles).")
    model: str | None = setting(
        None,
        "A .keras file, training work dir, SavedModel or official TF1 "
        "checkpoint folder.",
    )
    step: int | None = setting(None, "Checkpoint step of a work dir.")
    tile: int | None = setting(
        None,
        "Tile side (0: never tile; default: the largest tiles that fit "
        "--max_memory).",
    )
    overlap: int = setting(32, "Tile overlap in pixels.")
    max_memory: Bytes = setting(
        1_500_000_000,
        "Peak memory budget for automatic tiling, e.g. 1.5G or 800M.",
    )
    precision: str = setting(
        "fp32",
        "Inference precision: bf16 computes in bfloat16 (CPUs with "
        "AVX512_BF16/AMX; elsewhere a note and fp32).",
        choices=INFERENCE_PRECISIONS,
    )
    max_side: int = setting(
        0, "Downscale longer inputs first (0: keep the size)."
    )
    brightness: bool = setting(
        False, "Match the input's mean brightness (reference test.py)."
    )
    side_by_side: bool = setting(False, "Input | output.")
    skip_existing: bool = setting(False, "Skip existing outputs.")
    overwrite: bool = setting(False, "Replace existing outputs.")
    batch: int = setting(4, "Video frames per call.")
    temporal_smoothing: float = setting(
        0.0, "Video flicker reduction, 0 (off) to 0.9."
    )
    image_format: str = setting(
        "auto", "Image output format.", flag="format", choices=IMAGE_FORMATS
    )
    examples: bool = setting(False, "Stylize the bundled example photos.")
    allow_short_video: bool = setting(
        False,
        "Accept videos that decode fewer frames than their header declares "
        "(truncated files); without it they fail.",
    )
    max_megapixels: float = setting(
        MAX_PIXELS / 1e6,
        "Refuse larger images (read from the header). The default fits a "
        f"~4.6 GB memory budget; each megapixel more needs ~"
        f"{MB_PER_MEGAPIXEL} MB.",
    )
    verbose: bool = setting(
        False, "Show TensorFlow's start-up log and ffmpeg's full messages."
    )

    @property
    def source(self):
        """The generator: `model`, else `style`, else None (the default)."""
        return self.model or self.style

    @property
    def all_inputs(self):
        """`inputs`, and the bundled example photos with `examples`."""
        return self.inputs + ((str(EXAMPLES_DIR),) if self.examples else ())

    @property
    def max_pixels(self):
        return round(self.max_megapixels * 1e6)

    def validate(self):
        if self.style and self.model:
            raise ValueError("give --style or --model, not both")
        if not self.all_inputs:
            raise ValueError(
                "no inputs: give image/video files, folders or "
                "globs (or --examples)"
            )
        if self.skip_existing and self.overwrite:
            raise ValueError(
                "--skip_existing and --overwrite exclude each other"
            )
        if self.tile is not None and self.tile and self.tile < 64:
            raise ValueError(f"--tile must be 0 or >= 64, got {self.tile}")
        if self.overlap < 0 or (self.tile and self.overlap >= self.tile // 2):
            raise ValueError("--overlap must be >= 0 and < tile / 2")
        if not 0 <= self.temporal_smoothing < 1:
            raise ValueError("--temporal_smoothing must be in [0, 1)")
        problem = output_dir_problem(self.out_dir)
        if problem:
            raise ValueError(f"--out_dir: {problem}")
        if self.image_format not in IMAGE_FORMATS:
            raise ValueError("--format must be auto, png or jpg")
        if self.precision not in INFERENCE_PRECISIONS:
            raise ValueError(
                f"--precision must be fp32 or bf16, got {self.precision!r}"
            )
        if self.max_memory < 1:
            raise ValueError("--max_memory must be positive")
        if not self.max_megapixels > 0:
            raise ValueError("--max_megapixels must be positive")
        if self.batch < 1:
            raise ValueError(f"--batch must be >= 1, got {self.batch}")
        if self.max_side < 0 or 0 < self.max_side < MIN_MAX_SIDE:
            raise ValueError(
                f"--max_side must be 0 (keep the size) or >= {MIN_MAX_SIDE}, "
                f"got {self.max_side}"
            )
        return self


@dataclasses.dataclass
class Job:
    """One input file and where its output goes."""

    src: pathlib.Path
    dst: pathlib.Path
    video: bool


def output_name(path, image_format="auto"):
    """The output file name for an input: `.mp4` for videos, `.jpg` for
    JPEGs (or all images with image_format "jpg"), `.png` otherwise."""
    from uegan_tf.inference.video import is_video_path

    path = pathlib.PurePath(path)
    if is_video_path(path):
        return path.with_suffix(".mp4").name
    ext = path.suffix.lower()
    if image_format == "jpg" or (
        image_format == "auto" and ext in (".jpg", ".jpeg")
    ):
        return path.with_suffix(".jpg").name
    return path.with_suffix(".png").name


def expand_inputs(inputs, out_dir, image_format="auto", warn=None):
    """Turn files, folders and globs into jobs with output paths.

    Folder contents keep their relative layout under `out_dir/<folder>`;
    single files go to `out_dir/<name>`. Nothing inside `out_dir` is ever
    read from a folder or glob (otherwise a folder that contains its
    output folder is re-stylized one level deeper on every run). Two
    inputs that would write one output get distinct names (see
    `_separate_outputs`) or, failing that, are both refused: no result
    overwrites another.

    Args:
        inputs: files, folders and glob patterns.
        out_dir: the output folder.
        image_format: "auto", "png" or "jpg".
        warn: optional callable for one-line notes about folder entries
            that are skipped (dangling links, link loops, ...).

    Returns:
        `(jobs, errors)` where errors are one-line messages for inputs that
        match nothing or cannot be given an output of their own.
    """
    from uegan_tf.image_io import IMAGE_EXTENSIONS
    from uegan_tf.image_io import find_images
    from uegan_tf.inference.video import VIDEO_EXTENSIONS
    from uegan_tf.inference.video import is_video_path

    out_dir = pathlib.Path(out_dir)
    out_real = out_dir.resolve()
    media = IMAGE_EXTENSIONS + VIDEO_EXTENSIONS
    jobs, errors, seen = [], [], set()

    def out_name(path):
        return output_name(path, image_format)

    def in_output_tree(path):
        real = path.resolve()
        return real == out_real or out_real in real.parents

    def add(src, dst):
        key = src.resolve()
        if key in seen:
            return
        seen.add(key)
        jobs.append(Job(src, dst, is_video_path(src)))

    for item in inputs:
        if not str(item).strip():
            # pathlib turns "" into "." (the current folder, recursively):
            # an empty argument is almost always an unset shell variable.
            errors.append(
                f"{item!r}: empty path (give . for the current folder)"
            )
            continue
        path = pathlib.Path(item).expanduser()
        if path.is_dir():
            if in_output_tree(path):
                errors.append(
                    f"{path}: is inside the output folder {out_dir}; "
                    "outputs are never read back"
                )
                continue
            skipped = []
            found = find_images(path, media, exclude=[out_dir], skipped=skipped)
            for bad, reason in skipped:
                if warn:
                    warn(f"{bad}: skipped, {reason}")
            if not found:
                errors.append(f"{path}: folder has no images or videos")
            for p in found:
                rel = p.relative_to(path).parent
                add(p, out_dir / path.resolve().name / rel / out_name(p))
        elif path.exists():
            add(path, out_dir / out_name(path))
        elif glob.has_magic(str(item)):
            matches = sorted(
                pathlib.Path(m) for m in glob.glob(str(item), recursive=True)
            )
            matches = [
                m for m in matches if m.is_file() and not in_output_tree(m)
            ]
            if not matches:
                errors.append(f"{item}: no file matches this pattern")
            for m in matches:
                add(m, out_dir / out_name(m))
        else:
            errors.append(f"{item}: no such file or folder")
    refused = _separate_outputs(jobs)
    for job, reason in refused:
        errors.append(f"{job.src}: {reason}")
    refused_jobs = {id(job) for job, _ in refused}
    return [j for j in jobs if id(j) not in refused_jobs], errors


def _separate_outputs(jobs):
    """Give every job its own output path; returns the jobs refused.

    `photo.bmp` and `photo.webp` both map to `photo.png`; `a/x.jpg` and
    `b/x.jpg` both to `x.jpg`. Colliding outputs first keep their source
    extension (`photo_bmp.png`, `photo_webp.png`), then, if they still
    collide, their source folder's name (`a_x.jpg`). Jobs that still
    collide, or whose output would replace one of the inputs, are refused
    with a reason (`[(job, reason)]`), before any work is done.
    """

    def colliding():
        counts = {}
        for job in jobs:
            counts[job.dst] = counts.get(job.dst, 0) + 1
        return [job for job in jobs if counts[job.dst] > 1]

    for job in colliding():
        ext = job.src.suffix.lower().lstrip(".") or "noext"
        job.dst = job.dst.with_name(f"{job.dst.stem}_{ext}{job.dst.suffix}")
    for job in colliding():
        job.dst = job.dst.with_name(f"{job.src.parent.name}_{job.dst.name}")
    refused = [
        (
            job,
            f"its output name {job.dst} collides with another input's; "
            "rename one of them",
        )
        for job in colliding()
    ]
    sources = {job.src.resolve() for job in jobs}
    refused += [
        (job, f"its output {job.dst} would replace an input")
        for job in jobs
        if job.dst.resolve() in sources
        and all(job is not r for r, _ in refused)
    ]
    return refused


def run(cfg, log=print, err=None, progress=True):
    """Stylize every input of `cfg`; returns the number of failures.

    Args:
        cfg: a validated `StylizeConfig`.
        log: where the summary and per-file results go.
        err: where one-line errors go (default: stderr).
        progress: show progress bars.

    Raises:
        ModelLoadError: the model cannot be loaded.
        OSError: the output folder cannot be created or written.
    """
    from tqdm import tqdm

    from uegan_tf.inference.sources import resolve_source

    # Everything that can be refused is checked before TensorFlow is
    # imported (5-8 s): a model that names nothing is the first error, not
    # hidden behind per-output ones (and nothing is created for it); inputs
    # that all fail leave no empty output folder behind.
    resolve_source(cfg.source)
    # tqdm.write keeps one message per line while a progress bar is drawn.
    err = err or (lambda msg: tqdm.write(msg, file=sys.stderr))
    out_dir = pathlib.Path(cfg.out_dir)
    jobs, errors = expand_inputs(
        cfg.all_inputs,
        out_dir,
        cfg.image_format,
        warn=lambda msg: err(f"warning: {msg}"),
    )
    for e in errors:
        err(f"error: {e}")
    failures = len(errors)
    if not jobs:
        return failures
    out_dir.mkdir(parents=True, exist_ok=True)
    if not os.access(out_dir, os.W_OK):
        raise OSError(f"output folder is not writable: {out_dir}")
    # Half-written outputs of a killed earlier run (hidden .part / video
    # temporaries): nothing else will ever remove them.
    for folder in sorted({job.dst.parent for job in jobs} | {out_dir}):
        for path in clean_stale_temps(folder):
            log(f"removed {path}, left by an interrupted run")
    todo = []
    for job in jobs:
        if job.dst.exists() and not cfg.overwrite:
            if cfg.skip_existing:
                log(f"skip (exists): {job.dst}")
                continue
            err(
                f"error: {job.src}: output {job.dst} exists (use "
                "--overwrite or --skip_existing)"
            )
            failures += 1
            continue
        todo.append(job)
    if not todo:
        return failures

    from uegan_tf.quiet import quiet_tensorflow

    quiet_tensorflow(cfg.verbose)
    import numpy as np
    import tensorflow as tf

    from uegan_tf.image_io import ImageReadError
    from uegan_tf.image_io import ImageTooLargeError
    from uegan_tf.image_io import load_rgb
    from uegan_tf.image_io import save_rgb
    from uegan_tf.inference.stylizer import Stylizer
    from uegan_tf.inference.video import VideoError
    from uegan_tf.inference.video import is_short
    from uegan_tf.inference.video import model_share
    from uegan_tf.inference.video import stylize_video

    stylizer = Stylizer(
        cfg.source,
        step=cfg.step,
        tile=cfg.tile,
        overlap=cfg.overlap,
        max_memory=cfg.max_memory,
        max_side=cfg.max_side,
        brightness=cfg.brightness,
        precision=cfg.precision,
        note=err,
    )
    images = [j for j in todo if not j.video]
    videos = [j for j in todo if j.video]
    bar = tqdm(
        images,
        unit="img",
        disable=not progress or not images,
        dynamic_ncols=True,
        desc="images",
    )
    for job in bar:
        try:
            rgb = load_rgb(job.src, min_side=4, max_pixels=cfg.max_pixels)
            rgb = stylizer.prepare(rgb)
            out = stylizer(rgb)
            if cfg.side_by_side:
                out = np.concatenate([rgb, out], axis=1)
            save_rgb(job.dst, out)
            if progress:
                bar.write(f"{job.src} -> {job.dst}")
            else:
                log(f"{job.src} -> {job.dst}")
        except ImageTooLargeError as e:
            need = -(-e.pixels // 1_000_000)
            err(
                f"error: {e}; --max_megapixels={need} would admit it "
                f"(~{(STYLIZE_BASE_MB + need * MB_PER_MEGAPIXEL) / 1000:.1f} "
                "GB of memory)"
            )
            failures += 1
        except (ImageReadError, ValueError) as e:
            err(
                f"error: {e}"
                if isinstance(e, ImageReadError)
                else f"error: {job.src}: {e}"
            )
            failures += 1
        except OSError as e:
            err(f"error: {job.src}: cannot write {job.dst} ({e.strerror or e})")
            failures += 1
        except (tf.errors.OpError, MemoryError) as e:
            # Out of memory or a kernel refusing this size: this input
            # fails, the others still run.
            err(f"error: {job.src}: cannot stylize ({describe(e)})")
            failures += 1
    for job in videos:
        start = time.time()
        bars = []

        def report(done, bars=bars, name=job.src.name):
            if not bars:  # created on the first decoded batch
                bars.append(
                    tqdm(
                        unit="frame",
                        disable=not progress,
                        dynamic_ncols=True,
                        desc=name,
                    )
                )
            bars[0].update(done - bars[0].n)

        try:
            info = stylize_video(
                stylizer,
                job.src,
                job.dst,
                batch=cfg.batch,
                temporal_smoothing=cfg.temporal_smoothing,
                side_by_side=cfg.side_by_side,
                progress=report,
                allow_short=cfg.allow_short_video,
            )
            rate = info["frames"] / max(time.time() - start, 1e-6)
            for b in bars:
                b.close()
            if is_short(info["frames"], info["declared"]):
                err(
                    f"warning: {job.src}: only {info['frames']} of the "
                    f"{info['declared']} frames its header declares were "
                    "decoded (kept: --allow_short_video)"
                )
            log(
                f"{job.src} -> {job.dst} ({info['frames']} frames at "
                f"{float(info['fps']):.3g} fps, "
                f"{'with' if info['audio'] else 'no'} audio, "
                f"{rate:.2f} frames/s, "
                f"{model_share(info):.0%} of the time in the model)"
            )
        except (VideoError, OSError) as e:
            for b in bars:
                b.close()
            err(
                f"error: {e}"
                if isinstance(e, VideoError)
                else f"error: {job.src}: {e}"
            )
            if cfg.verbose and getattr(e, "detail", None):
                err(e.detail.rstrip())
            failures += 1
    return failures


def define_flags(flag_values=None):
    """Flags of the stylize command: one per `StylizeConfig` setting."""
    uflags.define_config_flags(StylizeConfig, _registry(flag_values))


def _registry(flag_values):
    return uflags.FLAGS if flag_values is None else flag_values


def config_from_flags(argv, flag_values=None):
    """The validated `StylizeConfig` of parsed flags and their arguments.

    Args:
        argv: the arguments left by flag parsing (program name first).
        flag_values: the parsed registry (default: absl's global one).

    Raises:
        ValueError: one line naming the bad value.
    """
    return uflags.config_from_flags(
        StylizeConfig, _registry(flag_values), inputs=tuple(argv[1:])
    )


def execute(cfg):
    """Run a validated config; returns the exit code (0, 1 or 2)."""
    from uegan_tf.inference.sources import ModelLoadError

    try:
        failures = run(cfg)
    except ModelLoadError as e:
        print(f"error: cannot load the model: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "interrupted; finished outputs are complete, nothing "
            "half-written was left",
            file=sys.stderr,
        )
        return 130
    out = pathlib.Path(cfg.out_dir).resolve()
    if failures:
        where = f"results in {out}" if out.is_dir() else "nothing written"
        print(f"done with {failures} error(s); {where}", file=sys.stderr)
        return 1
    print(f"done; results in {out}")
    return 0


def main(argv, flag_values=None):
    """Stylize with parsed flags (`argv`: the arguments they left)."""
    try:
        cfg = config_from_flags(argv, flag_values)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return execute(cfg)


USAGE = """\
  uegan stylize INPUTS... [--out_dir=DIR] [--style=NAME | --model=PATH]
  uegan stylize --examples [--out_dir=DIR]

INPUTS are image or video files, folders (searched recursively) and globs.
Each bad input prints one `error:` line and the others are still processed;
exit code 1 if any input failed, 2 for usage errors."""


def help_text():
    """`--help`: the usage and this command's own flags, nothing else."""
    return uflags.command_help(StylizeConfig, USAGE)


def cli(argv=None, flag_values=None):
    """`uegan stylize` / `python -m uegan_tf.inference.stylize`.

    Args:
        argv: the command line, program name first (default: sys.argv).
        flag_values: the flag registry to parse into (default: absl's
            global one; tests pass a fresh `flags.FlagValues()`).

    Returns:
        The exit code: 0 done, 1 some input failed, 2 usage error, 130
        interrupted.
    """
    argv = list(sys.argv if argv is None else argv)
    if uflags.wants_help(argv):
        print(help_text())
        return 0
    flag_values = _registry(flag_values)
    try:
        rest = uflags.parse_command(StylizeConfig, argv, flag_values)
        cfg = config_from_flags(rest, flag_values)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    # `run` quiets TensorFlow when it imports it, after the cheap checks.
    return execute(cfg)


if __name__ == "__main__":
    sys.exit(cli())
