"""Small synthetic fixtures shared by tests and benchmarks (never imported
by the package itself: `synthetic_image` lives in `image_ops`)."""

import dataclasses
import pathlib
import resource

from uegan_tf.config import DataConfig
from uegan_tf.config import ModelConfig
from uegan_tf.config import TrainConfig
from uegan_tf.image_io import save_rgb
from uegan_tf.image_ops import synthetic_image


def write_image_folders(root, n_photo=6, n_style=4, size=(72, 96)):
    """Write synthetic `photo/` and `style/` folders of PNGs under `root`."""
    root = pathlib.Path(root)
    h, w = size
    for i in range(n_photo):
        save_rgb(
            root / "photo" / f"p{i:03d}.png", synthetic_image(h, w, i, "photo")
        )
    for i in range(n_style):
        save_rgb(
            root / "style" / f"s{i:03d}.png",
            synthetic_image(h, w, 100 + i, "anime"),
        )
    return root / "photo", root / "style"


def write_fake_records(
    root, n_photo=6, n_style=4, size=64, workers=1, shards=0
):
    """Synthetic image folders prepared into TFRecords at `root/records`.

    `shards`: files per kind (0: the default, one file for few images).

    Returns:
        The records folder path.
    """
    from uegan_tf.data.prepare import PrepareConfig
    from uegan_tf.data.prepare import prepare_dataset

    root = pathlib.Path(root)
    photo, style = write_image_folders(
        root / "images", n_photo, n_style, (size, size * 4 // 3)
    )
    out = root / "records"
    prepare_dataset(
        PrepareConfig(
            out_dir=str(out),
            photo_dir=str(photo),
            style_dir=str(style),
            size=size,
            min_side=16,
            workers=workers,
            shards=shards,
        ),
        log=lambda msg: None,
    )
    return out


# Tiny networks for plumbing tests: generator width 4 (32 is the
# reference) and discriminator 8 base channels (64).
TINY_MODEL = {"g_width": 4, "d_channels": 8}


def tiny_train_config(workdir, records_dir, **overrides):
    """A `TrainConfig` that runs in seconds on CPU.

    32 px crops, batch 2, `TINY_MODEL` networks and random VGG16 weights;
    `model={"g_width": 32, "d_channels": 64}` gives the reference widths.
    """
    cfg = TrainConfig(
        workdir=str(workdir),
        batch_size=2,
        epochs=2,
        init_epochs=1,
        steps_per_epoch=2,
        checkpoint_every=2,
        keep_checkpoints=3,
        log_every=1,
        sample_every=2,
        data=DataConfig(
            records_dir=str(records_dir),
            crop_size=32,
            short_side=32,
            shuffle_buffer=8,
            num_val_images=2,
            val_size=32,
        ),
        model=ModelConfig(vgg_arch="vgg16", vgg_weights="none", **TINY_MODEL),
    )
    sections = {}
    for key in list(overrides):
        if key in ("data", "model", "loss", "optim") and isinstance(
            overrides[key], dict
        ):
            sections[key] = dataclasses.replace(
                getattr(cfg, key), **overrides.pop(key)
            )
    return dataclasses.replace(cfg, **sections, **overrides).validate()


def make_test_clip(
    path,
    frames=12,
    size="64x48",
    rate=8,
    audio=True,
    pattern="testsrc",
    faststart=False,
):
    """Write an H.264 clip of ffmpeg's test pattern (tests and benchmarks).

    Args:
        path: output file; the suffix picks the container.
        frames: video frames.
        size: "WxH".
        rate: frames per second.
        audio: add a 440 Hz AAC track (cut to the video's length).
        pattern: ffmpeg lavfi source ("testsrc", "testsrc2", ...).
        faststart: MP4 index first (as phones and web exports write it).

    Returns:
        `path`.
    """
    import subprocess

    import imageio_ffmpeg

    cmd = [
        imageio_ffmpeg.get_ffmpeg_exe(),
        "-y",
        "-hide_banner",
        "-loglevel",
        "error",
        "-f",
        "lavfi",
        "-i",
        f"{pattern}=size={size}:rate={rate}",
    ]
    if audio:
        cmd += ["-f", "lavfi", "-i", "sine=frequency=440"]
    cmd += ["-frames:v", str(frames), "-c:v", "libx264", "-pix_fmt", "yuv420p"]
    if audio:
        cmd += ["-c:a", "aac", "-shortest"]
    if faststart:
        cmd += ["-movflags", "+faststart"]
    subprocess.run(cmd + [str(path)], check=True, capture_output=True)
    return path


def peak_rss_bytes():
    """This process's peak resident set size, in bytes.

    Linux's `VmHWM` (the high-water mark of this process's own memory
    map), not `getrusage(...).ru_maxrss`: a child started by `subprocess`
    reports in `ru_maxrss` the peak of the parent that spawned it (the
    kernel carries it over at `exec`), so a 13 MB child of a 3 GB pytest
    worker said 3 GB. `ru_maxrss` only where there is no `/proc`.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
