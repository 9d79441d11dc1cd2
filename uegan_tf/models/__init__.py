"""Networks: generator (plain / UE), discriminator, VGG feature extractor."""

from uegan_tf.models.discriminator import Discriminator
from uegan_tf.models.discriminator import build_discriminator
from uegan_tf.models.discriminator import build_feature_discriminator
from uegan_tf.models.generator import Generator
from uegan_tf.models.generator import build_generator
from uegan_tf.models.generator import copy_plain_weights
from uegan_tf.models.vgg import VGGFeatures
from uegan_tf.models.vgg import build_vgg_features

__all__ = [
    "Discriminator",
    "Generator",
    "VGGFeatures",
    "build_discriminator",
    "build_feature_discriminator",
    "build_generator",
    "build_vgg_features",
    "copy_plain_weights",
]
