"""Edge smoothing of anime images (CartoonGAN / AnimeGANv2 `edge_smooth.py`).

The discriminator learns that anime lines are crisp by seeing the same
images with their edges blurred as "fake" (the edge-promoting loss).
"""

import cv2
import numpy as np

CANNY_LOW = 100
CANNY_HIGH = 200
KERNEL_SIZE = 5


def edge_mask(rgb):
    """Pixels the reference smooths: Canny(100, 200) dilated by 5x5 ones.

    Args:
        rgb: `[H, W, 3]` uint8 RGB.

    Returns:
        `[H, W]` bool.
    """
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)  # BT.601, as IMREAD_GRAYSCALE
    edges = cv2.Canny(gray, CANNY_LOW, CANNY_HIGH)
    kernel = np.ones((KERNEL_SIZE, KERNEL_SIZE), np.uint8)
    return cv2.dilate(edges, kernel) != 0


def edge_smooth(rgb):
    """Blur an image on and around its edges (`docs/design.md#training-data`).

    At every pixel of the dilated Canny edge map, each channel becomes the
    5x5 Gaussian-weighted sum (OpenCV kernel, sigma 1.1) of the image
    reflect-padded by 2 (`np.pad(mode="reflect")`, OpenCV's
    BORDER_REFLECT_101); other pixels are unchanged. As in the reference the
    weighted sum is truncated to uint8 when stored.

    Unlike the reference this runs on the image at its stored size (the
    reference first squashes every image to 256x256).

    Args:
        rgb: `[H, W, 3]` uint8 RGB.

    Returns:
        `[H, W, 3]` uint8, smoothed copy.
    """
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    mask = edge_mask(rgb)
    g = cv2.getGaussianKernel(KERNEL_SIZE, 0)
    kernel2d = g @ g.T
    blurred = cv2.filter2D(
        rgb.astype(np.float64),
        -1,
        kernel2d,
        borderType=cv2.BORDER_REFLECT_101,
    )
    out = rgb.copy()
    out[mask] = np.clip(blurred[mask], 0, 255).astype(np.uint8)
    return out
