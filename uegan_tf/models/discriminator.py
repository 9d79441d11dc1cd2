"""AnimeGANv2 patch discriminator."""

import keras
import tensorflow as tf

from uegan_tf.models.layers import REFERENCE_LN_EPSILON
from uegan_tf.models.layers import LayerNorm
from uegan_tf.models.layers import SpectralConv2D


@keras.saving.register_keras_serializable(package="uegan_tf")
class Discriminator(keras.Model):
    """The AnimeGANv2 discriminator (`net/discriminator.py`, `--ch 64
    --n_dis 3 --sn True`): a fully convolutional patch discriminator.

    With `base = channels // 2`:
    conv(base) -> LReLU; for i in 1 .. n_layers-1: conv_s2(2*base) -> LReLU,
    conv(4*base) -> LN -> LReLU, base *= 2; conv(2*base) -> LN -> LReLU;
    conv(1). Every conv is 3x3, zero padded, bias-free and (by default)
    spectrally normalised; layer norm is over (H, W, C) with epsilon 1e-12.

    Contract: input `[B, H, W, 3]` in [-1, 1]; output raw logits (no sigmoid)
    `[B, ceil(H/4), ceil(W/4), 1]` for even H, W: 64x64 for 256x256.
    About 1.13 M trainable parameters with the defaults.

    Args:
        channels: the reference `--ch` (64).
        n_layers: the reference `--n_dis` (3).
        spectral_norm: spectral normalisation on every conv.
        norm_epsilon: layer-norm epsilon.
        **kwargs: base `keras.Model` arguments.
    """

    def __init__(
        self,
        channels=64,
        n_layers=3,
        spectral_norm=True,
        norm_epsilon=REFERENCE_LN_EPSILON,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.channels = channels
        self.n_layers = n_layers
        self.spectral_norm = spectral_norm
        self.norm_epsilon = norm_epsilon

        def conv(filters, strides=1, name=None):
            return SpectralConv2D(
                filters, 3, strides, spectral_norm=spectral_norm, name=name
            )

        def norm(name):
            return LayerNorm(epsilon=norm_epsilon, name=name)

        # Layers are attributes (named like the reference scopes), not
        # lists: `tf.train.Checkpoint` does not follow Python lists of
        # Keras 3 layers. `_plan` lists (conv, norm or None) attribute names
        # in order; LeakyReLU follows every block.
        base = channels // 2
        self._plan = []

        def add(conv_name, filters, strides, norm_name=None):
            setattr(self, conv_name, conv(filters, strides, name=conv_name))
            if norm_name:
                setattr(self, norm_name, norm(norm_name))
            self._plan.append((conv_name, norm_name))

        add("conv_0", base, 1)
        for i in range(1, n_layers):
            add(f"conv_s2_{i}", base * 2, 2)
            add(f"conv_s1_{i}", base * 4, 1, f"norm_{i}")
            base *= 2
        add("last_conv", base * 2, 1, "norm_last")
        self.logit = SpectralConv2D(
            1,
            3,
            1,
            spectral_norm=spectral_norm,
            dtype="float32",
            name="D_logit",
        )

    @property
    def blocks(self):
        """`[(conv layer, norm layer or None), ...]` before the logit conv."""
        return [
            (getattr(self, c), getattr(self, n) if n else None)
            for c, n in self._plan
        ]

    def build(self, input_shape):
        if not self.built:
            self.call(tf.zeros([1, 8, 8, input_shape[-1]], self.compute_dtype))

    def call(self, x, training=None):
        for conv, norm in self.blocks:
            x = conv(x, training=training)
            if norm is None:
                x = tf.nn.leaky_relu(x, alpha=0.2)
            else:  # LeakyReLU on the norm's float32 result (LayerNorm)
                x = norm(x, leaky_alpha=0.2)
        return self.logit(x, training=training)  # [B, H/4, W/4, 1], float32

    def compute_output_shape(self, input_shape):
        shape = input_shape
        for conv, _ in self.blocks:
            shape = conv.compute_output_shape(shape)
        return self.logit.compute_output_shape(shape)

    def get_config(self):
        config = super().get_config()
        config.update(
            channels=self.channels,
            n_layers=self.n_layers,
            spectral_norm=self.spectral_norm,
            norm_epsilon=self.norm_epsilon,
        )
        return config


# Block-3 activations of VGG (relu3_3 / relu3_4) of [-1, 1] images are
# O(10) (measured: VGG16 relu3_3 of luma 128^2 crops of the train photos
# and anime art, mean 0.8, 99th percentile 14, max ~130);
# the head sees them scaled by this so its N(0, 0.02) convs start with
# logits of the reference discriminator's size.
FEATURE_SCALE = 0.1
# The VGG block whose last ReLU the feature discriminator reads: block 3,
# at 1/4 of the input size like the reference discriminator's logits.
FEATURE_BLOCKS = 3
FEATURE_CHANNELS = 256


@keras.saving.register_keras_serializable(package="uegan_tf")
class FeatureDiscriminator(keras.Model):
    """A patch discriminator head on frozen VGG features (`--d_arch=vgg`).

    See `docs/design.md#feature-discriminator`: the reference
    discriminator, learned from scratch, needs far more steps than a CPU
    run has before it tells anime from photos at all; a head on the
    perceptual network's block-3 features does within tens of steps.
    This model holds only the head; the trainer feeds it
    `vgg.block_activations(images, FEATURE_BLOCKS)[-1]` of its frozen
    VGG (the same network as the perceptual losses, so nothing is
    loaded twice and the checkpoint holds no VGG weights).

    `x * FEATURE_SCALE` -> conv s1 (channels) -> LReLU 0.2 -> conv s1 (1),
    3x3, zero padded, bias-free, spectrally normalised by default (the
    reference discriminator's `SpectralConv2D`).

    Contract: input `[B, H/4, W/4, 256]` (block-3 activations of a
    `[B, H, W, 3]` image); output raw logits `[B, H/4, W/4, 1]` float32.
    9 * 256 * channels + 9 * channels trainable parameters (296,064 for
    128 channels).

    Args:
        channels: the head's hidden channels.
        spectral_norm: spectral normalisation on both convs.
        **kwargs: base `keras.Model` arguments.
    """

    def __init__(self, channels=128, spectral_norm=True, **kwargs):
        super().__init__(**kwargs)
        self.channels = channels
        self.spectral_norm = spectral_norm
        self.hidden = SpectralConv2D(
            channels, 3, 1, spectral_norm=spectral_norm, name="hidden"
        )
        self.logit = SpectralConv2D(
            1,
            3,
            1,
            spectral_norm=spectral_norm,
            dtype="float32",
            name="D_logit",
        )

    def build(self, input_shape):
        if not self.built:
            self.call(tf.zeros([1, 4, 4, input_shape[-1]], self.compute_dtype))

    def call(self, x, training=None):
        x = tf.cast(x, self.compute_dtype) * FEATURE_SCALE
        x = tf.nn.leaky_relu(self.hidden(x, training=training), alpha=0.2)
        return self.logit(x, training=training)  # [B, h, w, 1], float32

    def compute_output_shape(self, input_shape):
        return (*input_shape[:3], 1)

    def get_config(self):
        config = super().get_config()
        config.update(channels=self.channels, spectral_norm=self.spectral_norm)
        return config


def build_feature_discriminator(channels=128, spectral_norm=True):
    """Create a `FeatureDiscriminator` and its weights."""
    discriminator = FeatureDiscriminator(
        channels, spectral_norm, name="feature_discriminator"
    )
    discriminator(tf.zeros([1, 4, 4, FEATURE_CHANNELS]))
    return discriminator


def build_discriminator(channels=64, n_layers=3, spectral_norm=True):
    """Create a discriminator and its weights (a traced 8x8 forward pass)."""
    discriminator = Discriminator(
        channels, n_layers, spectral_norm, name="discriminator"
    )
    discriminator(tf.zeros([1, 8, 8, 3]))
    return discriminator
