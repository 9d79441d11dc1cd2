"""uegan_tf: UE-AnimeGANv2 (AnimeGANv2 + U-Net skips + edge loss), TF2/Keras 3.

The public API is small:

- `uegan_tf.models.Generator`, `Discriminator`, `VGGFeatures` and their
  `build_*` helpers;
- `uegan_tf.losses`: pure, per-example loss functions;
- `uegan_tf.importers`: official AnimeGANv2 / PyTorch-port weight import.
"""

import os

# The layers call TensorFlow ops directly (legacy bilinear resize, reflect
# padding), so Keras must run on its TensorFlow backend.
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
# TensorFlow's C++ start-up chatter (oneDNN, CUDA probing) is noise for users.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

__version__ = "0.1.0"
