"""Loss functions against values computed by hand in this file."""

import math

import keras
import numpy as np
import pytest
import tensorflow as tf

from uegan_tf import losses
from uegan_tf.models import build_discriminator
from uegan_tf.models import build_generator
from uegan_tf.models import build_vgg_features


def test_lsgan_generator_loss_by_hand_and_patch_invariance():
    logits = tf.constant([[0.5, 1.0], [-1.0, 3.0]])
    # ex0: ((0.5-1)^2 + 0^2) / 2 = 0.125; ex1: (4 + 4) / 2 = 4.
    expected = [0.125, 4.0]
    np.testing.assert_allclose(losses.lsgan_generator_loss(logits), expected)
    patches = tf.reshape(logits, [2, 1, 2, 1])
    np.testing.assert_allclose(losses.lsgan_generator_loss(patches), expected)
    assert float(losses.lsgan_generator_loss(tf.ones([3, 4, 4, 1]))[0]) == 0


def test_lsgan_discriminator_loss_by_hand():
    real = tf.constant([[1.0, 0.0]])  # (0 + 1) / 2 = 0.5
    fake = tf.constant([[0.5, -0.5]])  # (0.25 + 0.25) / 2 = 0.25
    gray = tf.constant([[2.0, 0.0]])  # 4 / 2 = 2
    smooth = tf.constant([[1.0, 1.0]])  # 1
    t = losses.lsgan_discriminator_loss(
        real, fake, gray, smooth, 1.7, 1.7, 1.7, 1.0
    )
    np.testing.assert_allclose(t["real"], [1.7 * 0.5])
    np.testing.assert_allclose(t["fake"], [1.7 * 0.25])
    np.testing.assert_allclose(t["gray"], [1.7 * 2.0])
    np.testing.assert_allclose(t["smooth"], [1.0])
    np.testing.assert_allclose(t["total"], [0.85 + 0.425 + 3.4 + 1.0])
    # The optimum: real -> 1, the three negatives -> 0.
    zero = losses.lsgan_discriminator_loss(
        tf.ones([2, 3, 3, 1]),
        tf.zeros([2, 3, 3, 1]),
        tf.zeros([2, 3, 3, 1]),
        tf.zeros([2, 3, 3, 1]),
    )
    np.testing.assert_array_equal(zero["total"], [0.0, 0.0])


def test_content_loss_by_hand():
    a = tf.constant([[[[1.0, 2.0], [3.0, 4.0]]]])  # [1, 1, 2, 2]
    b = tf.constant([[[[1.0, 0.0], [0.0, 8.0]]]])
    # |0| + |2| + |3| + |-4| = 9 over 4 values.
    np.testing.assert_allclose(losses.content_loss(a, b), [2.25])
    np.testing.assert_array_equal(losses.content_loss(a, a), [0.0])


def test_gram_and_style_loss_by_hand():
    f = tf.constant([[[[1.0, 2.0], [3.0, 4.0]]]])  # h=1, w=2, C=2
    # F^T F = [[1+9, 2+12], [2+12, 4+16]] = [[10, 14], [14, 20]], / (1*2*2).
    np.testing.assert_allclose(
        losses.gram_matrix(f)[0], [[2.5, 3.5], [3.5, 5.0]]
    )
    zeros = tf.zeros_like(f)
    np.testing.assert_allclose(
        losses.style_loss(f, zeros), [(2.5 + 3.5 + 3.5 + 5.0) / 4]
    )
    np.testing.assert_array_equal(losses.style_loss(f, f), [0.0])
    # Gram matrices ignore spatial layout: a shuffled copy has loss 0.
    shuffled = tf.constant([[[[3.0, 4.0], [1.0, 2.0]]]])
    np.testing.assert_allclose(losses.style_loss(f, shuffled), [0.0])


def test_color_loss_by_hand():
    # BT.601 YUV of [0, 1] RGB: gray 0.5 -> (0.5, 0, 0); white -> (1, 0, 0);
    # red (1, 0, 0) -> (0.299, -0.14714119, 0.61497538).
    photo = tf.zeros([1, 1, 2, 3])  # two gray pixels
    generated = tf.constant([[[[1.0, 1.0, 1.0], [1.0, -1.0, -1.0]]]])
    y = (abs(0.5 - 1.0) + abs(0.5 - 0.299)) / 2
    u = (0.0 + 0.5 * 0.14714119**2) / 2
    v = (0.0 + 0.5 * 0.61497538**2) / 2
    np.testing.assert_allclose(
        losses.color_loss(photo, generated), [y + u + v], rtol=1e-5
    )
    # Red vs cyan: |dV| = 1.22995 > 1, Huber's linear branch |d| - 0.5.
    red = tf.constant([[[[1.0, -1.0, -1.0]]]])
    cyan = tf.constant([[[[-1.0, 1.0, 1.0]]]])
    dy = abs(0.299 - 0.701)
    du = 0.5 * (2 * 0.14714119) ** 2
    dv = 2 * 0.61497538 - 0.5
    np.testing.assert_allclose(
        losses.color_loss(red, cyan), [dy + du + dv], rtol=1e-5
    )
    np.testing.assert_array_equal(losses.color_loss(red, red), [0.0])


def test_total_variation_loss_by_hand():
    x = tf.constant([[[[1.0], [2.0]], [[3.0], [5.0]]]])  # [1, 2, 2, 1]
    # dh = (1-3, 2-5): mean sq 6.5; dw = (1-2, 3-5): mean sq 2.5.
    np.testing.assert_allclose(
        losses.total_variation_loss(x), [0.5 * 6.5 + 0.5 * 2.5]
    )
    np.testing.assert_array_equal(
        losses.total_variation_loss(tf.ones([2, 4, 4, 3])), [0.0, 0.0]
    )


def test_edge_loss_by_hand():
    # Black left half, white right half: luma 0 | 1. With reflect padding
    # the unnormalised Sobel x-gradient is 1 + 2 + 1 = 4 on the two columns
    # next to the step and 0 elsewhere; a flat gray image has 0 everywhere.
    row = tf.constant([-1.0, -1.0, 1.0, 1.0])
    photo = tf.tile(row[None, None, :, None], [1, 4, 1, 3])
    flat = tf.zeros_like(photo)
    m = losses.sobel_magnitude(losses.luminance(photo))[0, :, :, 0]
    eps = math.sqrt(1e-6)
    np.testing.assert_allclose(
        m[0],
        [eps, math.sqrt(16 + 1e-6), math.sqrt(16 + 1e-6), eps],
        rtol=1e-5,
    )
    expected = (math.sqrt(16 + 1e-6) - eps) * 2 / 4
    np.testing.assert_allclose(
        losses.edge_loss(flat, photo), [expected], rtol=1e-5
    )
    np.testing.assert_array_equal(losses.edge_loss(photo, photo), [0.0])


def test_edge_loss_ignores_hue_at_equal_luma():
    """Two-colour step images: recolouring at equal luma costs nothing.

    In [0, 1] RGB, BT.601 luma 0.299 r + 0.587 g + 0.114 b. The photo's
    step goes gray 0.5 (luma 0.5) -> gray 0.2 (luma 0.2). The recoloured
    image uses an orange and a blue of the same lumas:
    (1, (0.5 - 0.299) / 0.587, 0) and (0, (0.2 - 0.114) / 0.587, 1).
    A step of luma 0.5 -> 0.3 instead costs, on the two columns next to
    the step (of 4), |4 * 0.3 - 4 * 0.2| = 0.4: mean 0.4 * 2 / 4 = 0.2.
    """

    def step(left, right):
        rgb = tf.constant([left, left, right, right], tf.float32)
        return tf.tile(rgb[None, None] * 2.0 - 1.0, [1, 4, 1, 1])

    photo = step([0.5, 0.5, 0.5], [0.2, 0.2, 0.2])
    recoloured = step(
        [1.0, (0.5 - 0.299) / 0.587, 0.0], [0.0, (0.2 - 0.114) / 0.587, 1.0]
    )
    np.testing.assert_allclose(
        losses.luminance(recoloured)[0, 0, :, 0],
        [0.5, 0.5, 0.2, 0.2],
        atol=1e-6,
    )
    assert float(losses.edge_loss(recoloured, photo)[0]) < 1e-5
    weaker = step([0.5, 0.5, 0.5], [0.3, 0.3, 0.3])
    np.testing.assert_allclose(
        losses.edge_loss(weaker, photo), [0.2], rtol=1e-4
    )


def _step_image(width=16, height=4):
    """Luma 0 on columns [0, width/2), 1 on the rest, `[1, h, w, 3]`."""
    row = tf.constant([-1.0] * (width // 2) + [1.0] * (width // 2))
    return tf.tile(row[None, None, :, None], [1, height, 1, 3])


@pytest.mark.parametrize(
    "threshold, columns",
    # The 5-tap binomial blur ([1, 4, 6, 4, 1] / 16) turns the 0 | 1 step
    # between columns 7 and 8 into 0, 1/16, 5/16, 11/16, 15/16, 1 on
    # columns 5..10. The Sobel x-gradient of constant rows is
    # 4 * (v[c+1] - v[c-1]): 0.25, 1.25, 2.5, 2.5, 1.25, 0.25 on columns
    # 5..10, 0 elsewhere. Above the threshold, then dilated by 1 column:
    [(0.2, range(4, 12)), (0.5, range(5, 11)), (2.0, range(6, 10))],
)
def test_salient_edge_mask_by_hand(threshold, columns):
    mask = losses.salient_edge_mask(_step_image(), threshold)
    assert mask.shape == (1, 4, 16, 1)
    expected = np.zeros(16, np.float32)
    expected[list(columns)] = 1.0
    for row in mask[0, :, :, 0].numpy():
        np.testing.assert_array_equal(row, expected)


def test_salient_edge_mask_ignores_pixel_scale_texture():
    # Stripes of period 4 px, luma 0.5 + 0.15 cos(pi c / 2) on columns
    # c = 0..16 (even about both borders, so reflect padding continues
    # them). The photo's own Sobel magnitude peaks at 4 * 2 * 0.15 = 1.2,
    # above the threshold 0.5. The blur keeps a quarter of this frequency
    # ((6 + 8 cos(pi/2) + 2 cos(pi)) / 16 = 1/4): blurred, it peaks at
    # 0.3, so no pixel is a salient contour.
    c = np.arange(17)
    luma = 0.5 + 0.15 * np.cos(np.pi * c / 2)
    row = tf.constant(luma * 2 - 1, tf.float32)
    image = tf.tile(row[None, None, :, None], [1, 8, 1, 3])
    magnitude = losses.sobel_magnitude(losses.luminance(image))
    np.testing.assert_allclose(float(tf.reduce_max(magnitude)), 1.2, rtol=1e-3)
    np.testing.assert_array_equal(losses.salient_edge_mask(image), 0.0)
    # The same stripes at 2.5x the contrast (blurred peak 0.75) are salient.
    strong = tf.tile(
        tf.constant((0.5 + 0.375 * np.cos(np.pi * c / 2)) * 2 - 1, tf.float32)[
            None, None, :, None
        ],
        [1, 8, 1, 3],
    )
    assert float(tf.reduce_mean(losses.salient_edge_mask(strong))) == 1.0


def test_edge_loss_mask_weight_by_hand():
    # Photo: the step; generated: flat gray. Unblurred, the photo's Sobel
    # magnitude is sqrt(16 + 1e-6) on columns 7 and 8 and sqrt(1e-6)
    # elsewhere, where the flat image matches it: the loss lives on those
    # two columns, both inside the salient mask (columns 5..10 at 0.5),
    # so weight a multiplies it by 1 + a.
    photo = _step_image()
    flat = tf.zeros_like(photo)
    base = (math.sqrt(16 + 1e-6) - math.sqrt(1e-6)) * 2 / 16
    np.testing.assert_allclose(losses.edge_loss(flat, photo), [base], rtol=1e-5)
    np.testing.assert_allclose(
        losses.edge_loss(flat, photo, mask_weight=3.0), [4 * base], rtol=1e-5
    )
    # Outside the mask the weight stays 1: an error only on texture
    # (columns 0..3, far from the step) costs the same for every a.
    row = np.array([-1.0] * 8 + [1.0] * 8, np.float32)
    row[1] = -0.5  # a luma bump of 0.25 at column 1
    bumped = tf.tile(tf.constant(row)[None, None, :, None], [1, 4, 1, 3])
    extra = losses.edge_loss(bumped, photo, 0.0) - losses.edge_loss(
        photo, photo, 0.0
    )
    extra_masked = losses.edge_loss(bumped, photo, 3.0) - losses.edge_loss(
        photo, photo, 3.0
    )
    assert float(extra[0]) > 0.05
    np.testing.assert_allclose(extra_masked, extra, rtol=1e-6)


def test_per_example_shapes():
    x = tf.random.uniform([3, 8, 8, 3], -1.0, 1.0, seed=1)
    y = tf.random.uniform([3, 8, 8, 3], -1.0, 1.0, seed=2)
    for value in (
        losses.color_loss(x, y),
        losses.edge_loss(x, y),
        losses.total_variation_loss(x),
        losses.content_loss(x, y),
        losses.style_loss(x, y),
        losses.lsgan_generator_loss(x[..., :1]),
    ):
        assert value.shape == (3,)
        assert value.dtype == tf.float32


def test_losses_run_in_float32_for_half_inputs():
    x = tf.cast(tf.random.uniform([2, 8, 8, 3], -1, 1, seed=3), tf.float16)
    assert losses.gram_matrix(x).dtype == tf.float32
    assert losses.color_loss(x, x).dtype == tf.float32


@pytest.fixture(scope="module")
def networks():
    """A tiny generator and discriminator (same layers as the reference,
    fewer channels) and VGG16; only read by the tests (no updates)."""
    keras.utils.set_random_seed(4)
    return (
        build_generator(unet=True, width=4),
        build_discriminator(channels=8),
        build_vgg_features("vgg16", weights=None),
    )


@pytest.mark.parametrize(
    "term", ["adv", "content", "style", "color", "tv", "edge"]
)
def test_gradients_reach_the_generator_through_every_term(networks, term):
    g, d, vgg = networks
    photo = tf.random.uniform([2, 32, 32, 3], -1.0, 1.0, seed=5)
    anime = tf.random.uniform([2, 32, 32, 3], -1.0, 1.0, seed=6)
    with tf.GradientTape() as tape:
        fake = g(photo, training=True)
        value = {
            "adv": lambda: losses.lsgan_generator_loss(d(fake)),
            "content": lambda: losses.content_loss(vgg(photo), vgg(fake)),
            "style": lambda: losses.style_loss(vgg(anime), vgg(fake)),
            "color": lambda: losses.color_loss(photo, fake),
            "tv": lambda: losses.total_variation_loss(fake),
            "edge": lambda: losses.edge_loss(fake, photo),
        }[term]()
        loss = tf.reduce_mean(value)
    grads = tape.gradient(loss, g.trainable_variables)
    assert all(gr is not None for gr in grads)
    norms = [float(tf.norm(gr)) for gr in grads]
    assert all(np.isfinite(norms))
    # The first encoder conv and the output conv both receive signal.
    assert norms[0] > 0 and norms[-1] > 0
