"""Typed configuration: frozen dataclasses, one definition per setting.

Every setting is written once, as a field made by `setting(default, help)`;
its command-line flag (name, type, default, help, choices) is generated
from that field by `uegan_tf/flags.py`, and the parsed flags map back onto
the fields the same way. Library code receives these objects and never
reads absl flags. `validate()` raises `ValueError` naming the bad value.
`to_dict` / `from_dict` round-trip through `config.json`, which the trainer
writes into the work directory and the stylize command reads back.

This module imports nothing heavy: `--help` of a training binary does not
start TensorFlow.
"""

import dataclasses
import json
import os
import re

from uegan_tf.precision import INFERENCE_PRECISIONS

# Bilinear resize conventions of the generator's upsampling ("tf1" is the
# reference's legacy resize, half_pixel_centers=False; docs/design.md).
UPSAMPLE_MODES = ("tf1", "align_corners", "half_pixel")
# Keras mixed-precision policies a run may train under.
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")
STRATEGIES = ("auto", "mirrored", "multiworker", "default")
VGG_ARCHS = ("vgg19", "vgg16")
# What the discriminator sees (`docs/design.md#discriminator-input`).
D_INPUTS = ("rgb", "luma")
# The discriminator's trunk (`docs/design.md#feature-discriminator`).
D_ARCHS = ("reference", "vgg")


def setting(default, help, *, flag=None, choices=None):
    """A config field: its default and the help of its generated flag.

    Args:
        default: the default value (None: unset, for optional strings).
        help: one-line help text of the flag.
        flag: the flag name when it differs from the field name (loss
            weights are `--<name>_weight`).
        choices: allowed values (an enum flag).
    """
    return dataclasses.field(
        default=default,
        metadata={"help": help, "flag": flag, "choices": choices},
    )


def section(cls):
    """A nested config section (its fields become flags too)."""
    return dataclasses.field(default_factory=cls, metadata={"section": True})


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Input pipeline (`docs/design.md`, training data)."""

    records_dir: str = setting("", "Folder written by tools/make_tfrecords.py.")
    val_dir: str = setting(
        "",
        "Validation photos for sample grids: an image folder or a records "
        "folder; empty uses the first photo records.",
    )
    crop_size: int = setting(256, "Training crop side (a multiple of 4).")
    short_side: int = setting(
        0,
        "Resize each image's short side to this before cropping (0 keeps "
        "the prepared size; crops are then parts of the image).",
    )
    flip: bool = setting(True, "Random horizontal flips.")
    shuffle_buffer: int = setting(512, "Records in each shuffle buffer.")
    num_val_images: int = setting(6, "Validation photos per sample grid.")
    val_size: int = setting(256, "Side of validation images in sample grids.")


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Networks (`docs/design.md`, generator / discriminator / VGG)."""

    unet: bool = setting(
        True, "UE generator (U-Net skips); false is plain AnimeGANv2."
    )
    upsample: str = setting(
        "tf1",
        "Generator bilinear resize convention (tf1 is the reference).",
        choices=UPSAMPLE_MODES,
    )
    g_width: int = setting(
        32,
        "Generator base channels c (stages c, 2c, 4c, 8c); 32 is the "
        "reference network, smaller widths are for tests.",
    )
    d_channels: int = setting(
        64, "Discriminator base channels (--ch); its width."
    )
    d_layers: int = setting(3, "Discriminator stride-2 stages (--n_dis).")
    spectral_norm: bool = setting(
        True, "Spectral norm on every discriminator conv."
    )
    d_input: str = setting(
        "rgb",
        "What the discriminator sees: rgb (reference) or luma (BT.601 luma "
        "in all three channels, so colour cannot tell real from fake; "
        "needs --d_gray_weight=0).",
        choices=D_INPUTS,
    )
    d_arch: str = setting(
        "reference",
        "Discriminator: reference (AnimeGANv2's, learned from scratch) or "
        "vgg (a two-conv head on the frozen perceptual VGG's block-3 "
        "features; learns in tens of steps, for short CPU runs).",
        choices=D_ARCHS,
    )
    vgg_arch: str = setting(
        "vgg19",
        "Perceptual network: vgg19 (reference, conv4_4) or vgg16 (conv4_3).",
        choices=VGG_ARCHS,
    )
    vgg_weights: str = setting(
        "imagenet",
        "imagenet (Keras download) | a local file (.h5 VGG19, .npz VGG16) "
        "| none (random; tests only).",
    )


@dataclasses.dataclass(frozen=True)
class LossConfig:
    """Loss weights (`docs/design.md#loss-weights`, `#losses`)."""

    g_adv: float = setting(
        300.0, "Generator adversarial weight.", flag="g_adv_weight"
    )
    d_adv: float = setting(
        300.0, "Discriminator loss weight.", flag="d_adv_weight"
    )
    content: float = setting(
        1.5,
        "VGG content weight (also the init phase's only term).",
        flag="content_weight",
    )
    style: float = setting(
        2.5, "Grayscale Gram style weight.", flag="style_weight"
    )
    color: float = setting(10.0, "YUV colour weight.", flag="color_weight")
    tv: float = setting(1.0, "Total-variation weight.", flag="tv_weight")
    edge: float = setting(
        5.0,
        "UE Sobel edge weight (0 disables it: plain AnimeGANv2).",
        flag="edge_weight",
    )
    edge_mask: float = setting(
        0.0,
        "Extra edge-loss weight on the photo's salient contours (1 + this "
        "there, 1 on texture; 0: every pixel alike).",
        flag="edge_mask_weight",
    )
    edge_threshold: float = setting(
        0.5,
        "Salient-contour threshold on the blurred photo's Sobel magnitude "
        "([0, 1] luma; a full black-white step is 4).",
        flag="edge_mask_threshold",
    )
    d_real: float = setting(
        1.7, "D term: real colour anime.", flag="d_real_weight"
    )
    d_fake: float = setting(
        1.7, "D term: generated images.", flag="d_fake_weight"
    )
    d_gray: float = setting(
        1.7, "D term: grayscale anime.", flag="d_gray_weight"
    )
    d_smooth: float = setting(
        1.0, "D term: gray edge-smoothed anime.", flag="d_smooth_weight"
    )


@dataclasses.dataclass(frozen=True)
class OptimConfig:
    """Adam settings of the three optimisers (reference: constant rates)."""

    init_lr: float = setting(2e-4, "Init-phase generator learning rate.")
    g_lr: float = setting(2e-5, "Generator learning rate (GAN phase).")
    d_lr: float = setting(4e-5, "Discriminator learning rate.")
    beta_1: float = setting(0.5, "Adam beta_1 (all three optimisers).")
    beta_2: float = setting(0.999, "Adam beta_2 (all three optimisers).")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """A training run: the run settings and the sections above."""

    workdir: str = setting(
        "",
        "Work directory: checkpoints, TensorBoard events, samples, the "
        "resolved config; a run resumes from it automatically.",
    )
    batch_size: int = setting(12, "Global batch size (split over replicas).")
    epochs: int = setting(
        101, "Total epochs, init phase included (reference 101)."
    )
    init_epochs: int = setting(
        10, "Content-only generator epochs before the GAN (reference 10)."
    )
    steps_per_epoch: int = setting(
        0, "0: floor(max(#photos, #style images) / batch_size)."
    )
    checkpoint_every: int = setting(500, "Steps between checkpoints.")
    keep_checkpoints: int = setting(5, "Checkpoints kept on disk.")
    log_every: int = setting(
        10,
        "Steps between metric logs (TensorBoard, metrics.jsonl, progress "
        "bar; the only host syncs for metrics).",
    )
    sample_every: int = setting(500, "Steps between validation sample grids.")
    precision: str = setting(
        "float32",
        "Compute precision: mixed_bfloat16 is ~2x faster on CPUs with "
        "AVX512_BF16/AMX (no loss scaling needed); mixed_float16 (dynamic "
        "loss scaling) is for GPUs. Layer-norm statistics, spectral norm, "
        "the output layer and the losses stay float32.",
        choices=PRECISIONS,
    )
    jit_compile: bool = setting(
        False, "XLA-compile the per-replica step (GPUs; slower on CPU)."
    )
    strategy: str = setting(
        "auto",
        "auto (MultiWorkerMirrored when TF_CONFIG names several workers, "
        "else Mirrored over local GPUs or the CPU) | mirrored | "
        "multiworker | default (no distribution).",
        choices=STRATEGIES,
    )
    seed: int = setting(0, "Random seed (weights and data order).")
    data: DataConfig = section(DataConfig)
    model: ModelConfig = section(ModelConfig)
    loss: LossConfig = section(LossConfig)
    optim: OptimConfig = section(OptimConfig)

    def validate(self):
        """Check every value; returns self.

        Raises:
            ValueError: naming the first bad value.
        """

        def need(ok, message):
            if not ok:
                raise ValueError(message)

        need(bool(self.workdir), "workdir must be set (--workdir)")
        need(
            self.precision in PRECISIONS,
            f"precision must be one of {', '.join(PRECISIONS)}, "
            f"got {self.precision!r}",
        )
        need(
            bool(self.data.records_dir),
            "data.records_dir must be set (--records_dir)",
        )
        need(
            self.batch_size >= 1,
            f"batch_size must be >= 1, got {self.batch_size}",
        )
        need(self.epochs >= 1, f"epochs must be >= 1, got {self.epochs}")
        need(
            0 <= self.init_epochs <= self.epochs,
            f"init_epochs must be in [0, epochs={self.epochs}], got "
            f"{self.init_epochs}",
        )
        need(
            self.steps_per_epoch >= 0,
            f"steps_per_epoch must be >= 0, got {self.steps_per_epoch}",
        )
        for name in (
            "checkpoint_every",
            "keep_checkpoints",
            "log_every",
            "sample_every",
        ):
            need(
                getattr(self, name) >= 1,
                f"{name} must be >= 1, got {getattr(self, name)}",
            )
        need(
            self.strategy in STRATEGIES,
            f"strategy must be {'|'.join(STRATEGIES)}, got {self.strategy!r}",
        )
        d = self.data
        need(
            d.crop_size >= 16 and d.crop_size % 4 == 0,
            f"crop_size must be a multiple of 4 and >= 16, got {d.crop_size}",
        )
        need(
            d.short_side == 0 or d.short_side >= d.crop_size,
            f"short_side must be 0 or >= crop_size ({d.crop_size}), got "
            f"{d.short_side}",
        )
        need(d.shuffle_buffer >= 1, "shuffle_buffer must be >= 1")
        need(d.num_val_images >= 0, "num_val_images must be >= 0")
        need(d.val_size >= 16, f"val_size must be >= 16, got {d.val_size}")
        m = self.model
        need(
            m.upsample in UPSAMPLE_MODES,
            f"upsample must be one of {UPSAMPLE_MODES}, got {m.upsample!r}",
        )
        need(
            m.vgg_arch in VGG_ARCHS,
            f"vgg_arch must be vgg19 or vgg16, got {m.vgg_arch!r}",
        )
        need(
            bool(m.vgg_weights), "vgg_weights must be imagenet, a path or none"
        )
        need(
            not (m.vgg_arch == "vgg16" and m.vgg_weights == "imagenet"),
            "vgg_arch=vgg16 needs a local .npz (--vgg_weights=PATH) or none",
        )
        need(
            m.d_input in D_INPUTS,
            f"d_input must be one of {D_INPUTS}, got {m.d_input!r}",
        )
        need(
            m.d_input == "rgb" or self.loss.d_gray == 0,
            "d_input=luma shows the discriminator real anime as gray(a); "
            "its gray term would call the same input fake: set "
            "--d_gray_weight=0",
        )
        need(
            m.d_arch in D_ARCHS,
            f"d_arch must be one of {D_ARCHS}, got {m.d_arch!r}",
        )
        need(
            m.d_channels >= 2 and m.d_layers >= 1,
            "d_channels must be >= 2 and d_layers >= 1",
        )
        for name, value in dataclasses.asdict(self.loss).items():
            need(value >= 0, f"loss weight {name} must be >= 0, got {value}")
        for name, value in dataclasses.asdict(self.optim).items():
            need(
                value > 0, f"optimizer setting {name} must be > 0, got {value}"
            )
        need(
            self.optim.beta_1 < 1 and self.optim.beta_2 < 1,
            "Adam betas must be < 1",
        )
        return self

    def to_dict(self):
        return dataclasses.asdict(self)

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, d):
        """Inverse of `to_dict`; unknown keys are ignored (newer files)."""
        sections = {
            "data": DataConfig,
            "model": ModelConfig,
            "loss": LossConfig,
            "optim": OptimConfig,
        }
        kwargs = {}
        if d.get("mixed_precision") and "precision" not in d:
            # config.json written before `precision` replaced the bool.
            kwargs["precision"] = "mixed_float16"
        for f in dataclasses.fields(cls):
            if f.name not in d:
                continue
            if f.name in sections:
                section = sections[f.name]
                names = {x.name for x in dataclasses.fields(section)}
                kwargs[f.name] = section(
                    **{k: v for k, v in d[f.name].items() if k in names}
                )
            else:
                kwargs[f.name] = d[f.name]
        return cls(**kwargs)


@dataclasses.dataclass(frozen=True)
class PrepareConfig:
    """One `tools/make_tfrecords.py` run (`uegan_tf/data/prepare.py`)."""

    out_dir: str = setting("", "Output folder for shards and manifest.json.")
    style_dir: str = setting(
        "", "Folder of style (anime) images, searched recursively."
    )
    photo_dir: str | None = setting(
        None, "Folder of photos, searched recursively."
    )
    photo_source: str | None = setting(
        None,
        "Instead of --photo_dir: tfds:NAME[:SPLIT] (a TensorFlow Datasets "
        "dataset in the local TFDS data dir) or imagefolder:ROOT[:SPLIT] "
        "(layout ROOT/SPLIT/LABEL/*.jpg).",
    )
    smooth_dir: str | None = setting(
        None,
        "Ready edge-smoothed style images, matched to style images by "
        "relative path; computed when unset.",
    )
    size: int = setting(256, "Short side of the stored images, in pixels.")
    shards: int = setting(0, "Shards per kind (0: ~256 records each).")
    quality: int = setting(95, "JPEG quality of the stored images.")
    min_side: int = setting(64, "Skip images with a shorter short side.")
    workers: int = setting(0, "Worker processes (0: every core).")
    tfds_data_dir: str | None = setting(
        None, "TFDS data dir (default: TFDS's own)."
    )
    tfds_download: bool = setting(False, "Let TFDS download a missing dataset.")
    max_photos: int = setting(0, "Keep at most this many photos (0: all).")

    def validate(self):
        """Check every value; returns self (ValueError naming the first)."""
        if not self.out_dir:
            raise ValueError("--out_dir is required")
        if not self.style_dir:
            raise ValueError("--style_dir is required")
        if (self.photo_dir is None) == (self.photo_source is None):
            if self.photo_dir is None:
                raise ValueError("--photo_dir (or --photo_source) is required")
            raise ValueError("give exactly one of photo_dir and photo_source")
        if self.size < 16:
            raise ValueError(f"size must be >= 16, got {self.size}")
        if not 1 <= self.quality <= 100:
            raise ValueError(f"quality must be in [1, 100], got {self.quality}")
        if self.shards < 0 or self.workers < 0 or self.min_side < 1:
            raise ValueError("shards and workers must be >= 0, min_side >= 1")
        return self

    def missing_folder(self):
        """ "photo folder not found: X" for the first source folder that is
        not there, else None: the tool checks it before TensorFlow starts,
        `data.prepare.prepare_dataset` raises it as a data error."""
        for what, folder in (
            ("photo", self.photo_dir),
            ("style", self.style_dir),
            ("smooth", self.smooth_dir),
        ):
            if folder and not os.path.isdir(folder):
                return f"{what} folder not found: {folder}"
        return None


# -- Command settings (`uegan stylize`, `add-style`, the Beam job) -----------

# Image output formats of the stylize commands: auto keeps JPEG as .jpg and
# writes every other image as .png.
IMAGE_FORMATS = ("auto", "png", "jpg")


class Bytes(int):
    """Annotation of a byte-count setting: its flag reads 1.5G, 800M, 1e9.

    Values stay plain ints; `uegan_tf/flags.py` gives fields annotated
    `Bytes` a flag that parses decimal units and shows its default so.
    """


def argument(default, help):
    """A config field given as positional command-line arguments.

    Not a flag: the binary passes the arguments left after flag parsing
    to `flags.config_from_flags(cls, f, name=value)`.
    """
    return dataclasses.field(
        default=default, metadata={"help": help, "argument": True}
    )


@dataclasses.dataclass(frozen=True)
class AddStyleConfig:
    """`uegan add-style NAME SOURCE`: register a trained generator."""

    name: str = argument("", "Name of the new style.")
    source: str = argument("", "Training work dir or .keras file.")
    step: int | None = setting(
        None, "Checkpoint step of a work dir (default: the latest)."
    )
    description: str = setting(
        "", "One-line description (default: 'trained: SOURCE')."
    )
    overwrite: bool = setting(False, "Replace a user style of that name.")
    verbose: bool = setting(False, "Show TensorFlow's log.")

    def validate(self):
        if not self.name or not self.source:
            raise ValueError("give the style's NAME and its SOURCE")
        if self.step is not None and self.step < 0:
            raise ValueError(f"--step must be >= 0, got {self.step}")
        return self


@dataclasses.dataclass(frozen=True)
class BeamConfig:
    """`python -m uegan_tf.inference.beam`: bulk stylization on Beam."""

    input: str = setting("", "File pattern, e.g. 'photos/**/*.jpg'.")
    output: str = setting("", "Output folder.")
    model: str | None = setting(
        None,
        "Style name, .keras file, training work dir or exported SavedModel "
        "(default: the default style).",
    )
    step: int | None = setting(None, "Checkpoint step of a work dir.")
    tile: int | None = setting(
        None, "Tile side (0: never tile; default: automatic)."
    )
    max_side: int = setting(
        0, "Downscale longer inputs first (0: keep the size)."
    )
    image_format: str = setting(
        "auto", "Image output format.", choices=IMAGE_FORMATS
    )

    def validate(self):
        if not self.input:
            raise ValueError("--input is required (e.g. 'photos/**/*.jpg')")
        if not self.output:
            raise ValueError("--output is required (a folder)")
        if self.max_side < 0:
            raise ValueError(f"--max_side must be >= 0, got {self.max_side}")
        return self


# -- the web app (`uegan app`) ---------------------------------------------


def parsed_setting(text, parse, help, *, flag=None):
    """A setting written as text on the command line, held parsed.

    The flag is a string flag whose default is `text` ("25mb", "1.5G");
    the field holds `parse(text)` (e.g. bytes), and `flags.py` applies
    `parse` to the flag's value. The default is parsed when a config is
    made, so `parse` may import lazily and this module stays light.

    Args:
        text: the default as a user would write it.
        parse: text -> value; raises ValueError with a one-line reason.
        help: one-line help text of the flag.
        flag: the flag name when it differs from the field name.
    """
    return dataclasses.field(
        default_factory=lambda: parse(text),
        metadata={
            "help": help,
            "flag": flag,
            "choices": None,
            "text": text,
            "parse": parse,
        },
    )


_SIZE_UNITS = {"": 1, "b": 1, "kb": 2**10, "mb": 2**20, "gb": 2**30}


def parse_size(text):
    """ "25mb", "512kb", "1gb" or a byte count -> bytes (binary units).

    Raises:
        ValueError: not a size.
    """
    match = re.fullmatch(
        r"\s*(\d+(?:\.\d+)?)\s*([kmg]?b?)\s*", str(text).lower()
    )
    if not match:
        raise ValueError(f"not a size: {text!r} (examples: 25mb, 512kb)")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2)])


@dataclasses.dataclass(frozen=True)
class AppConfig:
    """Settings of one app server (`uegan app`, `uegan_tf/app/`).

    Every field but the last two is a flag of `uegan app`. Sizes are
    written as text on the command line and held in bytes.

    Attributes (beyond the flags' help):
        max_file_size: Gradio refuses bigger uploads before they reach
            the disk.
        max_megapixels: photos with more pixels are refused before
            decoding (a small PNG can expand to gigabytes).
        max_side: bounds the work of one request.
        concurrency: image and video share this pool, so memory stays
            bounded under load.
        max_memory: each of the `concurrency` requests running at once
            gets an equal share of it above the process's fixed part (see
            `request_memory`).
        max_user_bytes: disk one user (browser session) may take with the
            uploads and results of their requests still kept; their oldest
            results are deleted to make room, and a request that would
            still exceed it is refused.
        video_batch: video frames per generator call (not a flag).
        keep_outputs_seconds: results older than this are deleted (not a
            flag).
    """

    host: str = setting(
        "127.0.0.1",
        "Interface to listen on; the default serves this machine only.",
    )
    port: int = setting(7860, "TCP port to listen on.")
    models: tuple[str, ...] = setting(
        (),
        "PATH or NAME=PATH of a model (style name, .keras file, training "
        "work dir, SavedModel); repeatable or comma-separated. Default: "
        "the installed styles (uegan list-styles)",
        flag="model",
    )
    max_file_size: int = parsed_setting(
        "25mb", parse_size, "Largest upload, e.g. 25mb or 512kb."
    )
    max_video_seconds: float = setting(60.0, "Longest video accepted.")
    max_user_bytes: int = parsed_setting(
        "200mb",
        parse_size,
        "Disk one user's kept uploads and results may take; their oldest "
        "results make room first.",
        flag="max_user_disk",
    )
    max_megapixels: float = setting(
        64.0, "Refuse photos with more pixels (millions)."
    )
    max_side: int = setting(
        4096, "Downscale photos and frames with a longer side (0: never)."
    )
    concurrency: int = setting(2, "Requests stylized at once.")
    queue_size: int = setting(
        16, "Requests allowed to wait (more get 'queue full')."
    )
    cache_size: int = setting(4, "Loaded models kept in memory (LRU).")
    max_memory: Bytes = setting(
        1_500_000_000,
        "Peak memory budget of stylizing, e.g. 1.5G or 800M; larger photos "
        "are tiled to fit it.",
    )
    precision: str = setting(
        "fp32",
        "Inference precision; bf16 needs a CPU with AVX512_BF16/AMX "
        "(elsewhere a note and fp32).",
        choices=INFERENCE_PRECISIONS,
    )
    verbose: bool = setting(False, "Show TensorFlow's start-up log.")
    video_batch: int = 4
    keep_outputs_seconds: float = 3600.0

    @property
    def max_pixels(self):
        """`max_megapixels` in pixels."""
        return round(self.max_megapixels * 1e6)

    def validate(self):
        """Returns self; raises ValueError naming the first bad setting."""
        if not 0 <= self.port <= 65535:
            raise ValueError(f"--port must be in 0..65535, got {self.port}")
        if self.max_file_size < 1:
            raise ValueError("--max_file_size must be positive")
        if self.max_user_bytes < self.max_file_size:
            raise ValueError("--max_user_disk must be >= --max_file_size")
        if self.max_video_seconds <= 0:
            raise ValueError("--max_video_seconds must be positive")
        if self.max_pixels < 1:
            raise ValueError("--max_megapixels must be positive")
        if self.max_side < 0 or 0 < self.max_side < 64:
            raise ValueError(
                f"--max_side must be 0 or >= 64, got {self.max_side}"
            )
        if self.max_memory < 1:
            raise ValueError("--max_memory must be positive")
        if self.precision not in INFERENCE_PRECISIONS:
            raise ValueError(
                f"--precision must be fp32 or bf16, got {self.precision!r}"
            )
        for name in ("concurrency", "queue_size", "cache_size", "video_batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be >= 1")
        return self

    def request_memory(self):
        """The memory budget of one stylize call (`Stylizer.max_memory`).

        The fixed part of the process (interpreter, TensorFlow, a model) is
        counted once; the rest is shared by the concurrent requests.
        """
        from uegan_tf.inference.stylizer import MEMORY_BASE_BYTES

        share = (self.max_memory - MEMORY_BASE_BYTES) / self.concurrency
        return int(MEMORY_BASE_BYTES + max(share, 0))


# -- Export (`tools/export_tflite.py`, the `uegan_tf/export/` library) -------

# TFLite quantization modes (`--quantize`; "all" selects every one).
QUANTIZATIONS = ("none", "fp16", "dynamic", "int8")
# Export formats besides the SavedModel (`--format`), in report order: each
# is the converter module `uegan_tf/export/<name>.py` (`export/formats.py`).
# Named here so that validating --format needs no TensorFlow.
EXPORT_FORMATS = ("tflite", "onnx")
# Image sides are at least this (the generator downsamples twice by 2).
SIZE_MULTIPLE = 4
DEFAULT_FIXED_SIZE = (256, 256)


def parse_hw(text):
    """Parse "HxW" (or "N" for NxN) into `(H, W)`; "dynamic" gives None.

    Raises:
        ValueError: anything else, or a side below 4.
    """
    text = str(text).strip().lower()
    if text in ("dynamic", "none", ""):
        return None
    parts = text.split("x")
    try:
        if len(parts) == 1:
            size = (int(parts[0]), int(parts[0]))
        elif len(parts) == 2:
            size = (int(parts[0]), int(parts[1]))
        else:
            raise ValueError
    except ValueError:
        raise ValueError(f"expected HxW or 'dynamic', got {text!r}") from None
    if min(size) < SIZE_MULTIPLE:
        raise ValueError(f"sides must be >= {SIZE_MULTIPLE}, got {text}")
    return size


def parse_fixed_hw(text):
    """`parse_hw`, with "dynamic" meaning `DEFAULT_FIXED_SIZE`."""
    return parse_hw(text) or DEFAULT_FIXED_SIZE


def _names(text):
    """ "a, B,,c" -> ("a", "b", "c")."""
    return tuple(
        name.strip().lower() for name in str(text).split(",") if name.strip()
    )


def parse_quantize(text):
    """ "none,fp16" -> ("none", "fp16"); "all" -> `QUANTIZATIONS`."""
    modes = _names(text)
    return QUANTIZATIONS if modes == ("all",) else modes


def parse_formats(text):
    """ "tflite,onnx" -> ("tflite", "onnx"); "savedmodel" -> () (the
    SavedModel only, which every export writes)."""
    formats = _names(text)
    return () if formats == ("savedmodel",) else formats


@dataclasses.dataclass(frozen=True)
class ExportOptions:
    """What `uegan_tf.export.export_generator` writes.

    The SavedModel goes to `<out_dir>/<name>/<version>/`, the other files
    next to `<out_dir>/<name>/` as `<name>_v<version>_<label>.<ext>`.
    `formats` are names of `EXPORT_FORMATS` (empty: the
    SavedModel only), `quantize` a subset of `QUANTIZATIONS`, `size` the
    TFLite input `(H, W)` or None for a dynamic size, `fixed_size` the
    `(H, W)` of the `serve_tflite` signature when `size` is None and of the
    int8 calibration crops. Each field but `num_threads` (TFLite / ONNX
    Runtime threads in the checks) is a flag of `tools/export_tflite.py`.
    """

    out_dir: str = setting("", "Export base folder (required).")
    name: str = setting(
        "uegan",
        "Model name: OUT/<name>/<version>/ (the TF Serving model name).",
    )
    version: int | None = setting(
        None,
        "Integer version (default: one more than the largest existing "
        "version, or 1).",
    )
    formats: tuple = parsed_setting(
        "tflite",
        parse_formats,
        "What to convert the SavedModel to: tflite, onnx (comma-separated), "
        "or savedmodel for the SavedModel only.",
        flag="format",
    )
    quantize: tuple = parsed_setting(
        "none",
        parse_quantize,
        "TFLite modes, comma-separated: none (float32), fp16 (float16 "
        "weights), dynamic (int8 weights), int8 (full integer, calibrated), "
        "or all.",
    )
    size: tuple | None = parsed_setting(
        "dynamic",
        parse_hw,
        "TFLite input size: HxW, or dynamic (any size, with a fallback to "
        "--fixed_size where the converter cannot).",
    )
    fixed_size: tuple = parsed_setting(
        "256x256",
        parse_fixed_hw,
        "With --size=dynamic: the size of the fixed-size signature "
        "(fallback), of the int8 calibration crops and of the check images.",
    )
    representative_dir: str | None = setting(
        None,
        "Photos for int8 calibration (default: the bundled example photos).",
    )
    val_dir: str | None = setting(
        None,
        "Photos for the PSNR checks (default: --representative_dir, else "
        "the bundled example photos).",
    )
    calibration_steps: int = setting(
        100, "At most this many calibration photos."
    )
    num_eval_images: int = setting(
        8, "At most this many check photos (0: no checks)."
    )
    warmup: bool = setting(
        True, "Write TF Serving warmup requests into <version>/assets.extra/."
    )
    num_threads: int = 2

    def validate(self):
        """Returns self; raises `ValueError` naming the first bad value."""
        from uegan_tf.fileutil import output_dir_problem

        if not self.out_dir:
            raise ValueError("--out_dir is required")
        problem = output_dir_problem(self.out_dir)
        if problem:
            raise ValueError(f"--out_dir: {problem}")
        if not self.name or "/" in self.name or self.name.startswith("."):
            raise ValueError(f"bad model name {self.name!r}")
        if self.version is not None and self.version < 0:
            raise ValueError(f"version must be >= 0, got {self.version}")
        for f in self.formats:
            if f not in EXPORT_FORMATS:
                raise ValueError(
                    f"format must be in {EXPORT_FORMATS}, got {f!r}"
                )
        for q in self.quantize:
            if q not in QUANTIZATIONS:
                raise ValueError(
                    f"quantize must be in {QUANTIZATIONS}, got {q!r}"
                )
        for side in (self.size or ()) + tuple(self.fixed_size):
            if side < SIZE_MULTIPLE:
                raise ValueError(
                    f"image sides must be >= {SIZE_MULTIPLE}, got {side}"
                )
        if self.calibration_steps < 1:
            raise ValueError("calibration_steps must be >= 1")
        if self.num_eval_images < 0:
            raise ValueError("num_eval_images must be >= 0")
        return self

    @property
    def tflite_fixed_size(self):
        """The `(H, W)` of the fixed-size TFLite signature."""
        return tuple(self.size or self.fixed_size)


@dataclasses.dataclass(frozen=True)
class ExportConfig:
    """`tools/export_tflite.py`: which generator, and what to write."""

    checkpoint: str = setting(
        "",
        "Generator source (required): .keras file, training work dir, style "
        "name or official TF1 checkpoint folder.",
    )
    step: int | None = setting(
        None, "With a work dir: the checkpoint step (default: latest)."
    )
    precision: str = setting(
        "fp32",
        "Precision of the exported SavedModel's generator (bf16: SavedModel "
        "only, --format=savedmodel).",
        choices=INFERENCE_PRECISIONS,
    )
    verbose: bool = setting(False, "Show TensorFlow's start-up log.")
    options: ExportOptions = section(ExportOptions)

    def validate(self):
        """Returns self; raises `ValueError` naming the first bad value."""
        if not self.checkpoint:
            raise ValueError("--checkpoint is required")
        self.options.validate()
        if self.precision == "bf16" and self.options.formats:
            raise ValueError(
                "--precision=bf16 exports the SavedModel only; add "
                "--format=savedmodel (TFLite and ONNX quantize on their own: "
                "--quantize=fp16,int8)"
            )
        # Last (the values first): a source that names nothing, refused
        # before TensorFlow's import.
        from uegan_tf.inference.sources import check_sources

        check_sources([self.checkpoint])
        return self


# -- The other tools (`tools/import_animeganv2.py`, `bundle_style.py`,
# `inspect_tfrecords.py`) ---------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ImportConfig:
    """`tools/import_animeganv2.py`: released weights -> a style or file."""

    source: str | None = setting(
        None, "Official checkpoint folder/prefix or PyTorch .pt/.pth file."
    )
    download: str | None = setting(
        None,
        "Hayao | Shinkai | Paprika | paprika | face_paint_512_v1 | "
        "face_paint_512_v2 | celeba_distill (needs internet).",
    )
    cache_dir: str = setting(
        os.path.join("~", ".uegan", "downloads"), "Where downloads go."
    )
    name: str | None = setting(None, "Style name (default: from the source).")
    out: str | None = setting(
        None, "Write a .keras file instead of registering a style."
    )
    upsample: str = setting(
        "align_corners",
        "PyTorch sources: the port's resize mode.",
        choices=("align_corners", "half_pixel"),
    )
    unet: bool = setting(False, "Build the UE generator (zero skips).")
    overwrite: bool = setting(False, "Replace an existing style/file.")
    verbose: bool = setting(False, "Show TensorFlow's start-up log.")

    def validate(self):
        """Returns self; raises `ValueError` naming the bad setting."""
        if bool(self.source) == bool(self.download):
            raise ValueError("give exactly one of --source and --download")
        return self


@dataclasses.dataclass(frozen=True)
class BundleConfig:
    """`tools/bundle_style.py`: a work dir's generator as a package style."""

    workdir: str | None = setting(None, "Training work dir (required).")
    step: int | None = setting(None, "Checkpoint step (default: latest).")
    name: str | None = setting(None, "Style name (required).")
    description: str = setting("", "One line for `uegan list-styles`.")
    licence: str = setting("", "Licence note for style.json.")
    verbose: bool = setting(False, "Show TensorFlow's start-up log.")

    def validate(self):
        """Returns self; raises `ValueError` naming the bad setting."""
        if not self.workdir or not self.name:
            raise ValueError("--workdir and --name are required")
        return self


@dataclasses.dataclass(frozen=True)
class InspectConfig:
    """`tools/inspect_tfrecords.py DIR`: describe a records folder."""

    records: str = argument("", "Records folder (tools/make_tfrecords.py).")
    sheet: str | None = setting(
        None, "Contact sheet PNG (default: DIR/contact_sheet.png)."
    )
    num: int = setting(6, "Examples per row.")
    verbose: bool = setting(False, "Show TensorFlow's start-up log.")

    def validate(self):
        """Returns self; raises `ValueError` naming the bad setting."""
        if not self.records:
            raise ValueError(
                "give the records folder (python tools/inspect_tfrecords.py "
                "DIR)"
            )
        if self.num < 1:
            raise ValueError(f"--num must be >= 1, got {self.num}")
        from uegan_tf.data.schema import read_manifest

        try:  # no prepared folder: refused before TensorFlow starts
            read_manifest(self.records)
        except FileNotFoundError as e:
            raise ValueError(str(e)) from None
        return self
