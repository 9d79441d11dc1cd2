"""Evaluation metrics: content preservation and closeness to a style.

Content preservation compares each input photo with its stylized output
(uint8 RGB `[H, W, 3]`, same size):

- `psnr_luma`, `ssim_luma`: PSNR and SSIM of the BT.601 luma
  (`tf.image.psnr`, `tf.image.ssim`, max value 255);
- `sobel_l1`: mean |Sobel magnitude(in) - Sobel magnitude(out)| on luma in
  [0, 1] (the UE edge loss, measured);
- `edge_f1`: F1 between Canny(100, 200) edge maps, an edge pixel counting
  as matched when the other map has an edge within `tolerance` pixels;
- `delta_e`: mean CIELAB colour difference (CIE76) per pixel.

Closeness to a style compares feature distributions of two image sets:
`fid` (Frechet distance) and `kid` (kernel inception distance: unbiased
MMD^2 with the cubic polynomial kernel), from Inception-v3 pool features
when their weights are available, else from the offline VGG16 features
(labelled as such by the caller).

Style gain (`StyleDescriptor`, `style_gain`) asks whether outputs moved
toward a style: per 96x96 window, the channel means and standard
deviations of four VGG16 layers describe the local "look" (flat areas,
outline strength, palette); KID between the outputs' descriptors and the
style images' descriptors, relative to the input photos' KID, gives
gain = 1 - KID(outputs, style) / KID(photos, style): 0 for outputs no closer
to the style than the photos, 1 for outputs as close as the style images.
See docs/evaluation.md.
"""

import cv2
import numpy as np
import tensorflow as tf

from uegan_tf import losses
from uegan_tf.image_ops import luma
from uegan_tf.image_ops import resize_short_side
from uegan_tf.image_ops import to_unit_range
from uegan_tf.image_ops import to_unit_range_np

PSNR_CAP = 100.0  # dB reported for identical images (PSNR is infinite)
CANNY_LOW, CANNY_HIGH = 100, 200


def psnr_luma(a, b):
    """PSNR (dB) between the lumas of two uint8 RGB images, capped at 100."""
    value = float(tf.image.psnr(luma(a), luma(b), max_val=255.0))
    return min(value, PSNR_CAP) if np.isfinite(value) else PSNR_CAP


def ssim_luma(a, b):
    """SSIM between the lumas of two uint8 RGB images (1 = identical).

    `tf.image.ssim` with its defaults (11x11 Gaussian window, sigma 1.5);
    images smaller than the window are compared with a smaller window.
    """
    h, w = a.shape[:2]
    size = min(11, h, w)
    return float(
        tf.image.ssim(luma(a), luma(b), max_val=255.0, filter_size=size)
    )


def sobel_l1(a, b):
    """Mean |Sobel magnitude(a) - Sobel magnitude(b)| on luma in [0, 1]."""

    def to_unit(x):
        return tf.constant(to_unit_range_np(x)[None])

    return float(losses.edge_loss(to_unit(a), to_unit(b))[0])


def canny_edges(rgb):
    """Canny(100, 200) edges of the grayscale image, bool `[H, W]`."""
    gray = cv2.cvtColor(np.asarray(rgb, np.uint8), cv2.COLOR_RGB2GRAY)
    return cv2.Canny(gray, CANNY_LOW, CANNY_HIGH) > 0


def edge_f1(a, b, tolerance=2):
    """F1 between the Canny edge maps of `a` (reference) and `b`.

    Precision: share of b's edge pixels within `tolerance` px (chessboard
    distance) of an edge of a; recall: the converse. Both maps empty: 1.0;
    exactly one empty: 0.0.
    """
    ea, eb = canny_edges(a), canny_edges(b)
    if not ea.any() and not eb.any():
        return 1.0
    if not ea.any() or not eb.any():
        return 0.0
    k = np.ones((2 * tolerance + 1, 2 * tolerance + 1), np.uint8)
    near_a = cv2.dilate(ea.astype(np.uint8), k) > 0
    near_b = cv2.dilate(eb.astype(np.uint8), k) > 0
    precision = (eb & near_a).sum() / eb.sum()
    recall = (ea & near_b).sum() / ea.sum()
    if precision + recall == 0:
        return 0.0
    return float(2 * precision * recall / (precision + recall))


def rgb_to_lab(rgb):
    """uint8 sRGB -> CIELAB (D65): L in [0, 100], float32 `[H, W, 3]`."""
    x = np.asarray(rgb, np.float32) / 255.0
    return cv2.cvtColor(x, cv2.COLOR_RGB2Lab)


def delta_e(a, b):
    """Mean CIE76 colour difference sqrt(dL^2 + da^2 + db^2)."""
    d = rgb_to_lab(a) - rgb_to_lab(b)
    return float(np.sqrt((d**2).sum(-1)).mean())


def content_metrics(photo, output, tolerance=2):
    """All content-preservation metrics for one (photo, output) pair."""
    return {
        "psnr_y": psnr_luma(photo, output),
        "ssim_y": ssim_luma(photo, output),
        "sobel_l1": sobel_l1(photo, output),
        "edge_f1": edge_f1(photo, output, tolerance),
        "delta_e": delta_e(photo, output),
    }


# ---------------------------------------------------------------------------
# Distribution distances.


def _sqrt_psd(m):
    w, v = np.linalg.eigh((m + m.T) / 2)
    return (v * np.sqrt(np.clip(w, 0, None))) @ v.T


def fid(features_a, features_b):
    """Frechet distance between Gaussians fitted to two feature sets.

    FID = |mu_a - mu_b|^2 + Tr(S_a + S_b - 2 (S_a S_b)^(1/2)), with
    Tr((S_a S_b)^(1/2)) computed as the trace of
    (S_a^(1/2) S_b S_a^(1/2))^(1/2), which is symmetric PSD (stable, no
    complex square roots).

    Args:
        features_a, features_b: `[N, D]` arrays (N >= 2).

    Returns:
        float (0 for identical sets, up to float error).
    """
    a = np.asarray(features_a, np.float64)
    b = np.asarray(features_b, np.float64)
    mu_a, mu_b = a.mean(0), b.mean(0)
    cov_a = np.cov(a, rowvar=False)
    cov_b = np.cov(b, rowvar=False)
    root_a = _sqrt_psd(cov_a)
    inner = root_a @ cov_b @ root_a
    trace_sqrt = np.sqrt(
        np.clip(np.linalg.eigvalsh((inner + inner.T) / 2), 0, None)
    ).sum()
    value = (
        ((mu_a - mu_b) ** 2).sum()
        + np.trace(cov_a)
        + np.trace(cov_b)
        - 2 * trace_sqrt
    )
    return float(max(value, 0.0))


def kid(features_a, features_b, subsets=10, subset_size=1000, seed=0):
    """Kernel inception distance: unbiased MMD^2, kernel (x.y / d + 1)^3.

    Averaged over random subsets of `min(subset_size, N_a, N_b)` examples.

    Returns:
        `(mean, std)` over subsets.
    """
    a = np.asarray(features_a, np.float64)
    b = np.asarray(features_b, np.float64)
    d = a.shape[1]
    m = min(subset_size, len(a), len(b))
    rng = np.random.default_rng(seed)
    values = []
    for _ in range(subsets):
        x = a[rng.choice(len(a), m, replace=False)]
        y = b[rng.choice(len(b), m, replace=False)]
        kxx = (x @ x.T / d + 1) ** 3
        kyy = (y @ y.T / d + 1) ** 3
        kxy = (x @ y.T / d + 1) ** 3
        mmd = (
            (kxx.sum() - np.trace(kxx)) / (m * (m - 1))
            + (kyy.sum() - np.trace(kyy)) / (m * (m - 1))
            - 2 * kxy.mean()
        )
        values.append(mmd)
    return float(np.mean(values)), float(np.std(values))


class FeatureExtractor:
    """Image -> feature vector for FID/KID.

    kind "inception": Keras InceptionV3 (ImageNet, 2048-d average pool,
    299x299 inputs), weights "imagenet" (downloaded once by Keras; needs
    internet) or a local .h5 file. kind "vgg16": relu(conv4_3) of the
    offline ImageNet VGG16 (`shared/weights/vgg16_imagenet_features.npz`),
    global-average-pooled to 512-d at 224x224: NOT the standard FID feature
    space, reported under its own name. kind "model": any Keras model
    mapping `[N, S, S, 3]` RGB in [-1, 1] to `[N, D]` (tests).

    Args:
        kind: "inception", "vgg16" or "model".
        weights: weights source (see above) or a Keras model for "model".
        size: input side (299 inception, 224 vgg16).
    """

    def __init__(self, kind, weights=None, size=None):
        import keras

        self.kind = kind
        if kind == "inception":
            self.size = size or 299
            self.model = keras.applications.InceptionV3(
                include_top=False,
                weights=weights,
                pooling="avg",
                input_shape=(self.size, self.size, 3),
            )
            self.label = "Inception-v3 pool (standard FID features)"
        elif kind == "vgg16":
            from uegan_tf.models import build_vgg_features

            self.size = size or 224
            vgg = build_vgg_features("vgg16", weights)
            self.model = lambda x: tf.reduce_mean(
                tf.nn.relu(vgg(x)), axis=[1, 2]
            )
            self.label = (
                "VGG16 relu4_3 mean-pooled (offline fallback, not "
                "comparable with published FID)"
            )
        elif kind == "model":
            self.size = size or 64
            self.model = weights
            self.label = "custom model"
        else:
            raise ValueError(f"unknown feature kind {kind!r}")

    def __call__(self, images, batch=16):
        """uint8 RGB images (any sizes) -> `[N, D]` float64 features."""
        out = []
        for i in range(0, len(images), batch):
            chunk = [
                tf.image.resize(
                    np.asarray(img, np.float32),
                    [self.size, self.size],
                    antialias=True,
                )
                for img in images[i : i + batch]
            ]
            # InceptionV3's own scaling is the generator's [-1, 1].
            x = to_unit_range(tf.stack(chunk))
            out.append(np.asarray(self.model(x), np.float64))
        return np.concatenate(out)


# ---------------------------------------------------------------------------
# Style gain: local VGG16 statistics, KID against the style set.


# Global luma statistics every image is given before the style descriptor
# (about those of the photos and style images here).
LUMA_MEAN, LUMA_STD = 118.0, 60.0


class StyleDescriptor:
    """Images -> per-window style descriptors.

    Each image is resized to a short side of `short_side` (the style sets
    and photos here are stored at 256: one scale for everything), run once
    through VGG16, and `crops` random `crop` x `crop` windows are read from
    the relu1_2, relu2_2, relu3_3 and relu4_3 maps (window offsets are
    multiples of 8, so every layer's window covers exactly the same pixels).
    A window's descriptor is the channel means then standard deviations of
    each layer, `2 * (64 + 128 + 256 + 512) = 1920` values, each as
    `log(1 + v)` (see `image`).

    Windows of the whole image's feature maps instead of separately
    convolved crops: one VGG pass per image instead of `crops` (about 7x
    cheaper for a 256x384 image); the only difference is that pixels near
    a window's border see their real neighbours instead of zero padding.

    Args:
        weights: the offline VGG16 `.npz` (or a built `VGGFeatures` whose
            arch is vgg16, for tests).
        crop: window side in pixels (a multiple of 8).
        crops: windows per image.
        short_side: images are resized to this short side first (0: keep).
        seed: window positions are drawn from this seed, image by image.
        normalize: give every image the same global luma mean and standard
            deviation first (`normalize_contrast`).
    """

    def __init__(
        self,
        weights,
        crop=96,
        crops=64,
        short_side=256,
        seed=0,
        normalize=True,
    ):
        from uegan_tf.models.vgg import VGGFeatures
        from uegan_tf.models.vgg import build_vgg_features

        if crop % 8:
            raise ValueError(f"crop must be a multiple of 8, got {crop}")
        self.vgg = (
            weights
            if isinstance(weights, VGGFeatures)
            else build_vgg_features("vgg16", weights)
        )
        self.crop, self.crops = crop, crops
        self.short_side, self.seed = short_side, seed
        self.normalize = normalize
        self._taps = tf.function(
            self.vgg.block_activations,
            input_signature=[tf.TensorSpec([1, None, None, 3], tf.float32)],
        )

    def _resize(self, rgb):
        short = max(self.short_side or min(rgb.shape[:2]), self.crop)
        return resize_short_side(rgb, short)

    @staticmethod
    def normalize_contrast(rgb):
        """Give the image a fixed global luma mean and spread.

        VGG activations grow with contrast, so without this a plain colour
        grade that lowers contrast (flatter everything) scores as "closer
        to flat anime art": measured on the validation photos, contrast x0.7
        alone gave a style gain of 0.53. Global brightness and contrast are
        not style; local structure and palette are.
        """
        x = np.asarray(rgb, np.float32)
        y = luma(x)
        mean, std = y.mean(), y.std()
        scale = LUMA_STD / max(std, 1e-3)
        return np.clip((x - mean) * scale + LUMA_MEAN, 0, 255)

    def image(self, rgb, rng):
        """Descriptors of one uint8 RGB image: `[crops, 1920]` float64."""
        rgb = self._resize(np.asarray(rgb, np.uint8))
        if self.normalize:
            rgb = self.normalize_contrast(rgb)
        x = to_unit_range(rgb[None])
        taps = self._taps(x)
        h, w = rgb.shape[:2]
        # Offsets in units of 8 px, so that y / stride is whole at every
        # layer (strides 1, 2, 4, 8) and the window fits the relu4_3 map.
        ys = rng.integers(0, (h - self.crop) // 8 + 1, self.crops) * 8
        xs = rng.integers(0, (w - self.crop) // 8 + 1, self.crops) * 8
        means, stds = [], []
        for t, stride in zip(taps, (1, 2, 4, 8)):
            mean, sq = window_moments(
                t.numpy()[0],
                ys // stride,
                xs // stride,
                self.crop // stride,
                cell=8 // stride,
            )
            means.append(mean)
            stds.append(np.sqrt(np.maximum(sq - mean**2, 0.0)))
        # log1p: the statistics of ReLU maps are heavy-tailed; raw, a few
        # windows of strong photo texture dominate KID's cubic kernel, and
        # other random windows of the same 6 photos moved the gain by up to
        # 0.3 (measured; +-0.08 with the log).
        return np.log1p(np.concatenate(means + stds, axis=1))

    def __call__(self, images):
        """uint8 RGB images (any sizes) -> `[N * crops, 1920]` float64."""
        rng = np.random.default_rng(self.seed)
        return np.concatenate([self.image(img, rng) for img in images])


def window_moments(fmap, ys, xs, size, cell=1):
    """Per-channel mean and mean square of `size` x `size` windows.

    The map is first summed over `cell` x `cell` blocks (window corners and
    sides are multiples of `cell`); summed-area tables of the block sums of
    x and x^2 (float64) then give every window's sums from four corners:
    one pass over the map plus O(C) per window.

    Args:
        fmap: `[H, W, C]` feature map.
        ys, xs: window top-left corners, `[K]` ints, multiples of `cell`.
        size: window side, a multiple of `cell`.
        cell: block side.

    Returns:
        `(mean, mean_sq)`, each `[K, C]` float64.
    """
    x = np.asarray(fmap, np.float64)
    hb, wb = x.shape[0] // cell, x.shape[1] // cell
    x = x[: hb * cell, : wb * cell]
    by, bx, bs = np.asarray(ys) // cell, np.asarray(xs) // cell, size // cell
    out = []
    for v in (x, x * x):
        blocks = v.reshape(hb, cell, wb, cell, -1).sum((1, 3))
        table = np.zeros((hb + 1, wb + 1, v.shape[2]))
        table[1:, 1:] = blocks.cumsum(0).cumsum(1)
        total = (
            table[by + bs, bx + bs]
            - table[by, bx + bs]
            - table[by + bs, bx]
            + table[by, bx]
        )
        out.append(total / (size * size))
    return out[0], out[1]


def standardize(features, reference):
    """`(features - mean) / std` with the reference set's per-dimension
    statistics (population std; constant dimensions divide by 1)."""
    ref = np.asarray(reference, np.float64)
    std = ref.std(0)
    return (np.asarray(features, np.float64) - ref.mean(0)) / np.where(
        std > 1e-12, std, 1.0
    )


def style_gain(outputs, photos, style, subsets=10, subset_size=1000):
    """Style gain from descriptor sets (see the module docstring).

    All three sets are standardised by the style set's statistics first, so
    that every layer's statistics weigh alike in the kernel.

    Args:
        outputs, photos, style: `[N, D]` descriptors (`StyleDescriptor`).

    Returns:
        dict with "gain", "kid_outputs" (KID(outputs, style)) and
        "kid_photos" (KID(photos, style)).
    """
    z_style = standardize(style, style)
    k_out = kid(standardize(outputs, style), z_style, subsets, subset_size)[0]
    k_photo = kid(standardize(photos, style), z_style, subsets, subset_size)[0]
    return {
        "gain": 1.0 - k_out / k_photo,
        "kid_outputs": k_out,
        "kid_photos": k_photo,
    }
