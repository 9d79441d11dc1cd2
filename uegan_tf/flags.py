"""Command-line flags: the only library module that touches `absl.flags`.

Binaries call a `define_*_flags()` function (nothing is defined at import
time) and turn the parsed flags into a typed config at once with the
matching `*_config_from_flags()`. Flagfiles compose: a style file can start
with `--flagfile=configs/base.flags` and later lines (and the command line)
override it. Paths in nested flagfiles are relative to the working
directory: run from the repository root.
"""

from absl import flags

from uegan_tf.config import PRECISIONS
from uegan_tf.config import DataConfig
from uegan_tf.config import LossConfig
from uegan_tf.config import ModelConfig
from uegan_tf.config import OptimConfig
from uegan_tf.config import TrainConfig
from uegan_tf.data.prepare import PrepareConfig

FLAGS = flags.FLAGS


def _defined(name):
    return name in FLAGS


def define_train_flags():
    """Define every training flag (idempotent)."""
    if _defined("records_dir"):
        return
    t, d, m, lo, o = (
        TrainConfig(),
        DataConfig(),
        ModelConfig(),
        LossConfig(),
        OptimConfig(),
    )
    # Run.
    flags.DEFINE_string(
        "workdir",
        None,
        "Work directory: checkpoints, "
        "TensorBoard, samples; a run resumes from it.",
    )
    flags.DEFINE_integer("batch_size", t.batch_size, "Global batch size.")
    flags.DEFINE_integer("epochs", t.epochs, "Total epochs (init included).")
    flags.DEFINE_integer(
        "init_epochs",
        t.init_epochs,
        "Content-only generator epochs before the GAN.",
    )
    flags.DEFINE_integer(
        "steps_per_epoch",
        t.steps_per_epoch,
        "0: floor(max(#photos, #styles) / batch_size).",
    )
    flags.DEFINE_integer(
        "checkpoint_every", t.checkpoint_every, "Steps between checkpoints."
    )
    flags.DEFINE_integer(
        "keep_checkpoints", t.keep_checkpoints, "Checkpoints kept on disk."
    )
    flags.DEFINE_integer(
        "log_every", t.log_every, "Steps between TensorBoard scalars."
    )
    flags.DEFINE_integer(
        "sample_every", t.sample_every, "Steps between validation sample grids."
    )
    flags.DEFINE_enum(
        "precision",
        t.precision,
        list(PRECISIONS),
        "Compute precision: mixed_bfloat16 is ~2x faster on CPUs with "
        "AVX512_BF16/AMX; mixed_float16 (loss scaling) is for GPUs.",
    )
    flags.DEFINE_bool(
        "jit_compile",
        t.jit_compile,
        "XLA-compile the train step (GPUs; slower on CPU).",
    )
    flags.DEFINE_enum(
        "strategy",
        t.strategy,
        ["auto", "mirrored", "multiworker", "default"],
        "Distribution strategy.",
    )
    flags.DEFINE_integer("seed", t.seed, "Random seed.")
    flags.DEFINE_bool("dry_run", False, "Print the resolved config and exit.")
    # Data.
    flags.DEFINE_string(
        "records_dir", None, "Folder written by tools/make_tfrecords.py."
    )
    flags.DEFINE_string(
        "val_dir",
        d.val_dir,
        "Validation photos (image folder or records folder) for sample grids.",
    )
    flags.DEFINE_integer("crop_size", d.crop_size, "Training crop side.")
    flags.DEFINE_integer(
        "short_side",
        d.short_side,
        "Resize the short side to this before cropping (0: keep).",
    )
    flags.DEFINE_bool("flip", d.flip, "Random horizontal flips.")
    flags.DEFINE_integer(
        "shuffle_buffer", d.shuffle_buffer, "Records in each shuffle buffer."
    )
    flags.DEFINE_integer(
        "num_val_images", d.num_val_images, "Validation photos per sample grid."
    )
    flags.DEFINE_integer(
        "val_size", d.val_size, "Side of validation images in sample grids."
    )
    # Model.
    flags.DEFINE_bool(
        "unet", m.unet, "UE generator (U-Net skips); false is plain AnimeGANv2."
    )
    flags.DEFINE_enum(
        "upsample",
        m.upsample,
        ["tf1", "align_corners", "half_pixel"],
        "Generator bilinear resize convention.",
    )
    flags.DEFINE_integer("d_channels", m.d_channels, "Discriminator --ch.")
    flags.DEFINE_integer("d_layers", m.d_layers, "Discriminator --n_dis.")
    flags.DEFINE_bool(
        "spectral_norm", m.spectral_norm, "Spectral norm in the discriminator."
    )
    flags.DEFINE_enum(
        "vgg_arch", m.vgg_arch, ["vgg19", "vgg16"], "Perceptual network."
    )
    flags.DEFINE_string(
        "vgg_weights",
        m.vgg_weights,
        "imagenet | path (.h5 VGG19, .npz VGG16) | none.",
    )
    # Loss weights.
    for name, value, help_ in (
        ("g_adv_weight", lo.g_adv, "Generator adversarial weight."),
        ("d_adv_weight", lo.d_adv, "Discriminator loss weight."),
        ("content_weight", lo.content, "VGG content weight."),
        ("style_weight", lo.style, "Grayscale Gram style weight."),
        ("color_weight", lo.color, "YUV colour weight."),
        ("tv_weight", lo.tv, "Total-variation weight."),
        ("edge_weight", lo.edge, "UE Sobel edge weight (0: off)."),
        ("d_real_weight", lo.d_real, "D term: real colour anime."),
        ("d_fake_weight", lo.d_fake, "D term: generated images."),
        ("d_gray_weight", lo.d_gray, "D term: grayscale anime."),
        ("d_smooth_weight", lo.d_smooth, "D term: gray edge-smoothed anime."),
        # Optimisers.
        ("init_lr", o.init_lr, "Init-phase generator learning rate."),
        ("g_lr", o.g_lr, "Generator learning rate."),
        ("d_lr", o.d_lr, "Discriminator learning rate."),
        ("beta_1", o.beta_1, "Adam beta_1."),
        ("beta_2", o.beta_2, "Adam beta_2."),
    ):
        flags.DEFINE_float(name, value, help_)


def train_config_from_flags(f=FLAGS):
    """Build and validate the `TrainConfig` from parsed training flags."""
    return TrainConfig(
        workdir=f.workdir or "",
        batch_size=f.batch_size,
        epochs=f.epochs,
        init_epochs=f.init_epochs,
        steps_per_epoch=f.steps_per_epoch,
        checkpoint_every=f.checkpoint_every,
        keep_checkpoints=f.keep_checkpoints,
        log_every=f.log_every,
        sample_every=f.sample_every,
        precision=f.precision,
        jit_compile=f.jit_compile,
        strategy=f.strategy,
        seed=f.seed,
        data=DataConfig(
            records_dir=f.records_dir or "",
            val_dir=f.val_dir,
            crop_size=f.crop_size,
            short_side=f.short_side,
            flip=f.flip,
            shuffle_buffer=f.shuffle_buffer,
            num_val_images=f.num_val_images,
            val_size=f.val_size,
        ),
        model=ModelConfig(
            unet=f.unet,
            upsample=f.upsample,
            d_channels=f.d_channels,
            d_layers=f.d_layers,
            spectral_norm=f.spectral_norm,
            vgg_arch=f.vgg_arch,
            vgg_weights=f.vgg_weights,
        ),
        loss=LossConfig(
            g_adv=f.g_adv_weight,
            d_adv=f.d_adv_weight,
            content=f.content_weight,
            style=f.style_weight,
            color=f.color_weight,
            tv=f.tv_weight,
            edge=f.edge_weight,
            d_real=f.d_real_weight,
            d_fake=f.d_fake_weight,
            d_gray=f.d_gray_weight,
            d_smooth=f.d_smooth_weight,
        ),
        optim=OptimConfig(
            init_lr=f.init_lr,
            g_lr=f.g_lr,
            d_lr=f.d_lr,
            beta_1=f.beta_1,
            beta_2=f.beta_2,
        ),
    ).validate()


def define_prepare_flags():
    """Flags of `tools/make_tfrecords.py` (idempotent)."""
    if _defined("photo_dir"):
        return
    p = PrepareConfig(out_dir="", style_dir="")
    flags.DEFINE_string("photo_dir", None, "Folder of photos (recursive).")
    flags.DEFINE_string(
        "photo_source",
        None,
        "Instead of --photo_dir: "
        "tfds:NAME[:SPLIT] or imagefolder:ROOT[:SPLIT].",
    )
    flags.DEFINE_string("style_dir", None, "Folder of style images.")
    flags.DEFINE_string(
        "smooth_dir",
        None,
        "Ready edge-smoothed style "
        "images (same relative names); computed if unset.",
    )
    flags.DEFINE_string("out_dir", None, "Output folder.")
    flags.DEFINE_integer("size", p.size, "Short side of stored images.")
    flags.DEFINE_integer(
        "shards", p.shards, "Shards per kind (0: ~256 records each)."
    )
    flags.DEFINE_integer("quality", p.quality, "JPEG quality.")
    flags.DEFINE_integer("min_side", p.min_side, "Skip smaller images.")
    flags.DEFINE_integer("workers", p.workers, "Processes (0: all cores).")
    flags.DEFINE_string("tfds_data_dir", None, "TFDS data dir.")
    flags.DEFINE_bool("tfds_download", False, "Allow TFDS to download.")
    flags.DEFINE_integer("max_photos", 0, "Keep at most N photos (0: all).")


def prepare_config_from_flags(f=FLAGS):
    """`PrepareConfig` from parsed `define_prepare_flags` flags."""
    if not f.out_dir:
        raise ValueError("--out_dir is required")
    if not f.style_dir:
        raise ValueError("--style_dir is required")
    if not f.photo_dir and not f.photo_source:
        raise ValueError("--photo_dir (or --photo_source) is required")
    return PrepareConfig(
        out_dir=f.out_dir,
        style_dir=f.style_dir,
        photo_dir=f.photo_dir,
        photo_source=f.photo_source,
        smooth_dir=f.smooth_dir,
        size=f.size,
        shards=f.shards,
        quality=f.quality,
        min_side=f.min_side,
        workers=f.workers,
        tfds_data_dir=f.tfds_data_dir,
        tfds_download=f.tfds_download,
        max_photos=f.max_photos,
    ).validate()
