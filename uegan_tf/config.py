"""Typed training configuration: frozen dataclasses, built once from flags.

Library code receives these objects and never reads absl flags (only
`uegan_tf/flags.py` does). `validate()` raises `ValueError` naming the bad
value. `to_dict` / `from_dict` round-trip through `config.json`, which the
trainer writes into the work directory and the stylize command reads back.
"""

import dataclasses
import json

from uegan_tf.models.layers import UPSAMPLE_MODES


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Input pipeline.

    Attributes:
        records_dir: folder written by `tools/make_tfrecords.py`.
        val_dir: validation photos for sample grids: an image folder or a
            records folder; "" uses the first photo records.
        crop_size: training crop side S (a multiple of 4).
        short_side: resize each image's short side to this before cropping
            (0 keeps the prepared size; crops are then parts of the image).
        flip: random horizontal flips.
        shuffle_buffer: records in the shuffle buffer (per kind).
        num_val_images: validation photos in each sample grid.
        val_size: side of the validation images in sample grids.
    """

    records_dir: str = ""
    val_dir: str = ""
    crop_size: int = 256
    short_side: int = 0
    flip: bool = True
    shuffle_buffer: int = 512
    num_val_images: int = 6
    val_size: int = 256


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Networks.

    Attributes:
        unet: UE generator (U-Net skips) instead of plain AnimeGANv2.
        upsample: generator resize mode ("tf1" is the reference).
        d_channels: discriminator `--ch` (64).
        d_layers: discriminator `--n_dis` (3).
        spectral_norm: spectral norm on every discriminator conv.
        vgg_arch: "vgg19" (reference, conv4_4) or "vgg16" (conv4_3).
        vgg_weights: "imagenet" (Keras download), a local weights file
            (.h5 for VGG19, .npz for VGG16) or "none" (random; tests only).
    """

    unet: bool = True
    upsample: str = "tf1"
    d_channels: int = 64
    d_layers: int = 3
    spectral_norm: bool = True
    vgg_arch: str = "vgg19"
    vgg_weights: str = "imagenet"


@dataclasses.dataclass(frozen=True)
class LossConfig:
    """Loss weights (`docs/design.md#loss-weights`, `#losses`).

    Attributes:
        g_adv: generator adversarial weight (300).
        d_adv: discriminator loss weight (300).
        content: VGG content weight (also the init phase's only term).
        style: grayscale Gram style weight.
        color: YUV colour weight.
        tv: total-variation weight.
        edge: UE Sobel edge weight (0 disables it: plain AnimeGANv2).
        d_real, d_fake, d_gray, d_smooth: discriminator term weights.
    """

    g_adv: float = 300.0
    d_adv: float = 300.0
    content: float = 1.5
    style: float = 2.5
    color: float = 10.0
    tv: float = 1.0
    edge: float = 5.0
    d_real: float = 1.7
    d_fake: float = 1.7
    d_gray: float = 1.7
    d_smooth: float = 1.0


@dataclasses.dataclass(frozen=True)
class OptimConfig:
    """Adam settings of the three optimisers (reference: constant rates).

    Attributes:
        init_lr: generator rate in the content-only init phase.
        g_lr: generator rate in the adversarial phase.
        d_lr: discriminator rate.
        beta_1, beta_2: Adam betas for all three.
    """

    init_lr: float = 2e-4
    g_lr: float = 2e-5
    d_lr: float = 4e-5
    beta_1: float = 0.5
    beta_2: float = 0.999


# Keras mixed-precision policies a run may train under.
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """A training run.

    Attributes:
        workdir: checkpoints, TensorBoard events, samples, resolved config;
            a run resumes from here automatically.
        batch_size: global batch size (split over replicas).
        epochs: total epochs, init phase included (reference 101).
        init_epochs: content-only init epochs (reference 10).
        steps_per_epoch: 0 derives it as the reference does,
            floor(max(#photos, #style images) / batch_size).
        checkpoint_every: steps between checkpoints.
        keep_checkpoints: checkpoints kept on disk.
        log_every: steps between metric logs (TensorBoard, metrics.jsonl,
            progress bar; the only host syncs for metrics).
        sample_every: steps between validation sample grids.
        precision: "float32"; "mixed_float16" (float16 compute with dynamic
            loss scaling, GPUs); or "mixed_bfloat16" (bfloat16 compute, no
            loss scaling: bfloat16 has float32's exponent range; fast on
            CPUs with AVX512_BF16/AMX and on recent GPUs). Layer-norm
            statistics, spectral-norm power iteration, the output layer and
            every loss stay float32 (docs/design.md, "Precision").
        jit_compile: XLA-compile the per-replica step (GPU; slower on CPU).
        strategy: "auto" (MultiWorkerMirrored when TF_CONFIG names several
            workers, else Mirrored over local GPUs or the CPU), "mirrored",
            "multiworker" or "default" (no distribution).
        seed: random seed (weights and data order).
        data, model, loss, optim: the sections above.
    """

    workdir: str = ""
    batch_size: int = 12
    epochs: int = 101
    init_epochs: int = 10
    steps_per_epoch: int = 0
    checkpoint_every: int = 500
    keep_checkpoints: int = 5
    log_every: int = 10
    sample_every: int = 500
    precision: str = "float32"
    jit_compile: bool = False
    strategy: str = "auto"
    seed: int = 0
    data: DataConfig = dataclasses.field(default_factory=DataConfig)
    model: ModelConfig = dataclasses.field(default_factory=ModelConfig)
    loss: LossConfig = dataclasses.field(default_factory=LossConfig)
    optim: OptimConfig = dataclasses.field(default_factory=OptimConfig)

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
            self.strategy in ("auto", "mirrored", "multiworker", "default"),
            f"strategy must be auto|mirrored|multiworker|default, got "
            f"{self.strategy!r}",
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
            m.vgg_arch in ("vgg19", "vgg16"),
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
