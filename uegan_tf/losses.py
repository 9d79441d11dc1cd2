"""Losses of AnimeGANv2 and UE-AnimeGANv2: pure, per-example functions.

Every function returns a `[B]` vector (one value per example, the mean over
all other axes), so that the trainer reduces exactly once with
`tf.nn.compute_average_loss(per_example, global_batch_size=...)`: Keras 3's
optimizer sums gradients over replicas. Adversarial losses accept patch
logits of any shape `[B, ...]`. Images are NHWC RGB in [-1, 1]; features are
NHWC.

References: `TachibanaYoshino/AnimeGANv2:tools/ops.py` and `AnimeGANv2.py`
(formulas in `docs/design.md#losses`), the UE edge loss of `#edge-loss`.
Computations run in float32 whatever the input dtype (mixed precision).
"""

import tensorflow as tf

from uegan_tf.image_ops import LUMA_WEIGHTS

__all__ = [
    "color_loss",
    "content_loss",
    "edge_loss",
    "gram_matrix",
    "lsgan_discriminator_loss",
    "lsgan_generator_loss",
    "luminance",
    "salient_edge_mask",
    "sobel_magnitude",
    "style_loss",
    "total_variation_loss",
]


def _f32(x):
    return tf.cast(x, tf.float32)


def _mean_per_example(x):
    """Mean over every axis but the batch axis: `[B, ...]` -> `[B]`."""
    x = _f32(x)
    return tf.reduce_mean(tf.reshape(x, [tf.shape(x)[0], -1]), axis=1)


def lsgan_generator_loss(fake_logits):
    """Least-squares GAN generator loss (Mao et al., 2017).

    L = mean[(D(G(p)) - 1)^2]

    Args:
        fake_logits: discriminator output on generated images, `[B, ...]`.

    Returns:
        `[B]` per-example loss.
    """
    return _mean_per_example(tf.square(_f32(fake_logits) - 1.0))


def lsgan_discriminator_loss(
    real_logits,
    fake_logits,
    gray_logits,
    smooth_logits,
    real_weight=1.0,
    fake_weight=1.0,
    gray_weight=1.0,
    smooth_weight=1.0,
):
    """AnimeGANv2's four-term least-squares discriminator loss.

    L = w_real * mean[(D(a) - 1)^2] + w_fake * mean[D(G(p))^2]
        + w_gray * mean[D(gray(a))^2] + w_smooth * mean[D(gray(s))^2]

    Real colour anime `a` is pushed to 1; generated images, grayscale anime
    (grayscale adversarial loss) and the grayscale edge-smoothed anime `s`
    (CartoonGAN's edge-promoting loss) to 0. The reference hard-codes the
    per-style weights in `tools/ops.py` (Shinkai 1.7/1.7/1.7/1.0; comments
    give Hayao 1.2/1.2/1.2/0.8, Paprika 1.0/1.0/1.0/0.005).

    Args:
        real_logits, fake_logits, gray_logits, smooth_logits: patch logits
            `[B, ...]` of the four inputs.
        real_weight, fake_weight, gray_weight, smooth_weight: term weights.

    Returns:
        A dict of `[B]` vectors: the weighted terms "real", "fake", "gray",
        "smooth" and their sum "total".
    """
    terms = {
        "real": real_weight
        * _mean_per_example(tf.square(_f32(real_logits) - 1.0)),
        "fake": fake_weight * _mean_per_example(tf.square(fake_logits)),
        "gray": gray_weight * _mean_per_example(tf.square(gray_logits)),
        "smooth": smooth_weight * _mean_per_example(tf.square(smooth_logits)),
    }
    terms["total"] = (
        terms["real"] + terms["fake"] + terms["gray"] + (terms["smooth"])
    )
    return terms


def content_loss(photo_features, generated_features):
    """L1 between VGG features of the photo and of the generated image.

    L_con = mean | VGG(p) - VGG(G(p)) |   (conv4_4 pre-ReLU in the reference)

    Args:
        photo_features, generated_features: `[B, h, w, C]` features.

    Returns:
        `[B]` per-example loss.
    """
    return _mean_per_example(
        tf.abs(_f32(photo_features) - _f32(generated_features))
    )


def gram_matrix(features):
    """Gram matrix normalised by the feature map size.

    Gram(F) = F^T F / (h * w * C) for F reshaped to `[h*w, C]`, per sample.

    Args:
        features: `[B, h, w, C]`.

    Returns:
        `[B, C, C]` float32.
    """
    f = _f32(features)
    shape = tf.shape(f)
    f = tf.reshape(f, [shape[0], -1, shape[3]])  # [B, h*w, C]
    size = tf.cast(shape[1] * shape[2] * shape[3], tf.float32)
    return tf.matmul(f, f, transpose_a=True) / size


def style_loss(style_gray_features, generated_features):
    """AnimeGANv2 grayscale style loss.

    L_gra = mean | Gram(VGG(gray(a))) - Gram(VGG(G(p))) |

    The style target is the grayscale anime image; the generated image is
    **not** converted to grayscale (the reference does exactly this, so
    that the loss transfers texture and lines, not the film's colours).

    Args:
        style_gray_features: VGG features of grayscale anime, `[B, h, w, C]`.
        generated_features: VGG features of G(p), `[B, h', w', C]`.

    Returns:
        `[B]` per-example loss.
    """
    return _mean_per_example(
        tf.abs(
            gram_matrix(style_gray_features) - gram_matrix(generated_features)
        )
    )


def _huber(diff, delta=1.0):
    a = tf.abs(diff)
    return tf.where(a <= delta, 0.5 * tf.square(a), delta * (a - 0.5 * delta))


def color_loss(photo, generated):
    """AnimeGANv2 colour reconstruction loss in YUV.

    Both images are mapped from [-1, 1] to [0, 1] and converted with
    `tf.image.rgb_to_yuv` (BT.601):
    L_col = mean|Y_p - Y_g| + Huber(U_p - U_g) + Huber(V_p - V_g),
    Huber with delta 1 averaged over pixels (`tf.losses.huber_loss`).

    Args:
        photo, generated: `[B, H, W, 3]` RGB in [-1, 1].

    Returns:
        `[B]` per-example loss.
    """
    p = tf.image.rgb_to_yuv((_f32(photo) + 1.0) * 0.5)
    g = tf.image.rgb_to_yuv((_f32(generated) + 1.0) * 0.5)
    d = p - g
    return (
        _mean_per_example(tf.abs(d[..., 0]))
        + _mean_per_example(_huber(d[..., 1]))
        + _mean_per_example(_huber(d[..., 2]))
    )


def total_variation_loss(images):
    """Total-variation loss as the reference defines it.

    L_tv = 1/2 mean(dh^2) + 1/2 mean(dw^2), with dh, dw the vertical and
    horizontal neighbour differences (`tf.nn.l2_loss(d) / tf.size(d)`).
    `tf.image.total_variation` is a different quantity (a sum of absolute
    differences), so it is not used.

    Args:
        images: `[B, H, W, C]`.

    Returns:
        `[B]` per-example loss.
    """
    x = _f32(images)
    dh = x[:, :-1, :, :] - x[:, 1:, :, :]
    dw = x[:, :, :-1, :] - x[:, :, 1:, :]
    return 0.5 * _mean_per_example(tf.square(dh)) + 0.5 * _mean_per_example(
        tf.square(dw)
    )


def luminance(images):
    """BT.601 luma of RGB in [-1, 1], in [0, 1]: `[B, H, W, 3]` -> `[..., 1]`.

    Y = 0.299 r + 0.587 g + 0.114 b with (r, g, b) = (x + 1) / 2.
    """
    x = (_f32(images) + 1.0) * 0.5
    weights = tf.constant(LUMA_WEIGHTS)
    return tf.reduce_sum(x * weights, axis=-1, keepdims=True)


def sobel_magnitude(luma, eps=1e-6):
    """Sobel gradient magnitude sqrt(gx^2 + gy^2 + eps), reflect padded.

    Uses `tf.image.sobel_edges` (unnormalised kernels
    [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]] and its transpose, REFLECT padding).
    The epsilon keeps the square root differentiable on flat regions.

    Args:
        luma: `[B, H, W, 1]`.
        eps: added under the square root.

    Returns:
        `[B, H, W, 1]`.
    """
    g = tf.image.sobel_edges(_f32(luma))  # [B, H, W, 1, 2] (dy, dx)
    return tf.sqrt(tf.reduce_sum(tf.square(g), axis=-1) + eps)


# 5x5 binomial kernel (rows of Pascal's triangle, sum 256): a Gaussian of
# sigma ~1 px that removes pixel-scale texture before the salient-edge test.
_BINOMIAL_5 = (1.0, 4.0, 6.0, 4.0, 1.0)


def salient_edge_mask(photo, threshold=0.5):
    """The photo's salient contours: 1 near them, 0 elsewhere.

    mask = dilate_3x3( M(blur(Y(p))) > threshold ), with Y the BT.601 luma in
    [0, 1], blur the 5x5 binomial filter (reflect padded) and M the Sobel
    magnitude of `sobel_magnitude`. The blur removes fur, skin and grain
    (strong but pixel-scale gradients) so that what remains are object
    outlines, eyes, lettering; the 1-px dilation covers both sides of an
    outline. At 0.5 it marks 5-40 % of the validation photos' pixels
    (`docs/design.md#edge-loss`). No gradient flows through it.

    Args:
        photo: `[B, H, W, 3]` in [-1, 1].
        threshold: on the unnormalised Sobel magnitude of [0, 1] luma (a
            luma step of 1 between flat regions measures 4).

    Returns:
        `[B, H, W, 1]` float32 of 0s and 1s.
    """
    y = tf.stop_gradient(luminance(photo))  # [B, H, W, 1]
    k = tf.constant(_BINOMIAL_5) / 16.0
    y = tf.pad(y, [[0, 0], [2, 2], [2, 2], [0, 0]], mode="REFLECT")
    y = tf.nn.conv2d(y, tf.reshape(k, [5, 1, 1, 1]), 1, "VALID")
    y = tf.nn.conv2d(y, tf.reshape(k, [1, 5, 1, 1]), 1, "VALID")
    edges = tf.cast(sobel_magnitude(y) > threshold, tf.float32)
    return tf.nn.max_pool2d(edges, 3, 1, "SAME")


def edge_loss(generated, photo, mask_weight=0.0, threshold=0.5):
    """UE-AnimeGANv2 edge loss (`docs/design.md#edge-loss`).

    L_edge = mean[ (1 + a * S(p)) * | M(Y(G(p))) - M(Y(p)) | ], with Y the
    BT.601 luma in [0, 1], M the Sobel gradient magnitude and S the
    photo's salient-contour mask (`salient_edge_mask`): the generated image
    keeps the photo's contours. On luminance only, so it does not fight
    the colour and style terms. With a = `mask_weight` = 0 (the default)
    every pixel weighs alike; a > 0 weighs contours 1 + a times more than
    texture, so that texture may flatten into anime's flat areas while
    the outlines stay where the photo has them (the edge-masked variant of
    the UE design).

    Args:
        generated: `[B, H, W, 3]` G(p) in [-1, 1].
        photo: `[B, H, W, 3]` the input photo in [-1, 1].
        mask_weight: a, the extra weight on salient contours.
        threshold: `salient_edge_mask`'s threshold.

    Returns:
        `[B]` per-example loss.
    """
    diff = tf.abs(
        sobel_magnitude(luminance(generated))
        - sobel_magnitude(luminance(photo))
    )
    if mask_weight:
        diff = diff * (1.0 + mask_weight * salient_edge_mask(photo, threshold))
    return _mean_per_example(diff)
