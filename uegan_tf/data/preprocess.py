"""Per-image preparation work, run in worker processes.

This module must not import TensorFlow: it runs in `spawn`ed worker
processes, which then start in a fraction of a second and never share TF's
threads with the parent.
"""

import numpy as np

from uegan_tf.data.edge_smooth import edge_smooth
from uegan_tf.image_io import ImageReadError
from uegan_tf.image_io import encode_jpeg
from uegan_tf.image_io import load_rgb
from uegan_tf.image_ops import resize_short_side


def prepare_image(task):
    """Load (or take), resize and encode one image; smooth style images.

    Args:
        task: dict with "source" (a name for messages and the manifest),
            either "path" (a file) or "array" (uint8 `[H, W, 3]`, from TFDS),
            optionally "smooth_path" (a given edge-smoothed copy), and the
            settings "size", "min_side", "quality", "smooth" (bool: make or
            read the smoothed copy).

    Returns:
        dict: on success "ok": True, "source", "image" (JPEG bytes),
        "smooth" (JPEG bytes or None), "height", "width", "channel_mean"
        (float64 `[3]`, the image's mean RGB); on a bad
        input "ok": False, "source", "reason".
    """
    source = task["source"]
    try:
        if "array" in task:
            rgb = np.asarray(task["array"])
            if rgb.ndim == 2:
                rgb = np.stack([rgb] * 3, axis=-1)
            if rgb.ndim != 3 or rgb.shape[-1] not in (1, 3, 4):
                raise ImageReadError(source, f"unsupported shape {rgb.shape}")
            if rgb.shape[-1] == 1:
                rgb = np.repeat(rgb, 3, axis=-1)
            rgb = rgb[..., :3].astype(np.uint8)
            if min(rgb.shape[:2]) < task["min_side"]:
                raise ImageReadError(
                    source,
                    f"image too small ({rgb.shape[1]}x{rgb.shape[0]}, need "
                    f"at least {task['min_side']} px on the short side)",
                )
        else:
            rgb = load_rgb(task["path"], min_side=task["min_side"])
        rgb = resize_short_side(rgb, task["size"])
        smooth = None
        if task.get("smooth"):
            if task.get("smooth_path"):
                s = load_rgb(task["smooth_path"])
                s = resize_short_side(s, task["size"])
                if s.shape != rgb.shape:
                    import cv2

                    s = cv2.resize(
                        s,
                        (rgb.shape[1], rgb.shape[0]),
                        interpolation=cv2.INTER_AREA,
                    )
            else:
                s = edge_smooth(rgb)
            smooth = encode_jpeg(s, task["quality"])
    except ImageReadError as e:
        return {"ok": False, "source": source, "reason": e.reason}
    return {
        "ok": True,
        "source": source,
        "image": encode_jpeg(rgb, task["quality"]),
        "smooth": smooth,
        "height": int(rgb.shape[0]),
        "width": int(rgb.shape[1]),
        "channel_mean": rgb.reshape(-1, 3).mean(axis=0, dtype=np.float64),
    }
