"""Video stylization: frames through the generator, audio copied, fps kept.

Uses the static ffmpeg that the `imageio-ffmpeg` wheel ships (no system
ffmpeg needed). Frames are stylized in batches; an optional temporal
smoothing blends each stylized frame with the previous result where the
input did not change, which removes most frame-to-frame flicker of
per-frame GAN stylization without ghosting moving objects.
"""

import fractions
import os
import pathlib
import re
import subprocess
import tempfile

import imageio_ffmpeg
import numpy as np

from uegan_tf.fileutil import publish
from uegan_tf.fileutil import temp_prefix

VIDEO_EXTENSIONS = (".mp4", ".mov", ".mkv", ".avi", ".webm", ".m4v")


class VideoError(Exception):
    """A video that cannot be stylized; `str()` is one line.

    `detail` keeps ffmpeg's full output (its version, build configuration
    and every log line), for `--verbose` only: users, and the web app's
    visitors, get the one line.
    """

    def __init__(self, message, detail=None):
        super().__init__(message)
        self.detail = detail


# ffmpeg lines that say what is wrong, most telling first.
_FFMPEG_REASONS = (
    "partial file",
    "moov atom not found",
    "Invalid data found",
    "could not find codec",
    "Could not find codec parameters",
    "error",
)
# Decoded frames may fall short of duration x fps by this much (rounding
# of the container duration, a last frame shorter than 1/fps, an audio
# track that ends a little after the video) without the file being
# truncated.
SHORT_VIDEO_TOLERANCE = (2, 0.05)  # frames, fraction of the declared count


def ffmpeg_reason(text):
    """The one line of an ffmpeg log that says what went wrong.

    Drops the banner and the "[demuxer @ 0x...]" prefixes; falls back to
    the last non-empty line.
    """
    lines = [
        re.sub(r"^(\[[^\]]*\]\s*)+", "", line).strip()
        for line in str(text).splitlines()
    ]
    lines = [
        line
        for line in lines
        if line
        and not line.startswith(
            ("ffmpeg version", "built with", "configuration:", "lib")
        )
        and line not in ("Conversion failed!", "=== stderr ===")
    ]
    for needle in _FFMPEG_REASONS:
        for line in lines:
            if needle.lower() in line.lower():
                return line
    return lines[-1] if lines else "ffmpeg failed"


def declared_frames(info):
    """Frames a video declares in its header: duration x fps (or None)."""
    if not info.get("duration") or not info.get("fps"):
        return None
    return round(info["duration"] * float(info["fps"]))


def is_short(decoded, declared):
    """Whether `decoded` frames fall short of `declared` beyond tolerance."""
    if not declared:
        return False
    frames, fraction = SHORT_VIDEO_TOLERANCE
    return decoded + max(frames, round(fraction * declared)) < declared


def is_video_path(path):
    return pathlib.Path(path).suffix.lower() in VIDEO_EXTENSIONS


def probe(path):
    """Stream facts from `ffmpeg -i`: size, fps, duration, audio presence.

    Returns:
        dict with "width", "height", "fps" (Fraction or None), "duration"
        (seconds or None), "has_audio", "has_video".

    Raises:
        VideoError: missing or unreadable file.
    """
    path = str(path)
    if not os.path.isfile(path):
        raise VideoError(f"{path}: no such file")
    proc = subprocess.run(
        [imageio_ffmpeg.get_ffmpeg_exe(), "-hide_banner", "-i", path],
        capture_output=True,
        text=True,
        errors="replace",
    )
    text = proc.stderr
    if "Invalid data found" in text or "could not find codec" in text:
        raise VideoError(
            f"{path}: not a readable video ({ffmpeg_reason(text)})", text
        )
    video = re.search(r"Stream #\S+.*?: Video: .*?(\d{2,5})x(\d{2,5})", text)
    fps = re.search(r"(\d+(?:\.\d+)?) fps", text)
    duration = re.search(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)", text)
    info = {
        "has_video": video is not None,
        "has_audio": re.search(r"Stream #\S+.*?: Audio:", text) is not None,
        "width": int(video.group(1)) if video else None,
        "height": int(video.group(2)) if video else None,
        "fps": fractions.Fraction(fps.group(1)).limit_denominator(1001)
        if fps
        else None,
        "duration": (
            int(duration.group(1)) * 3600
            + int(duration.group(2)) * 60
            + float(duration.group(3))
        )
        if duration
        else None,
    }
    if not info["has_video"]:
        raise VideoError(f"{path}: no video stream")
    return info


def temporal_blend(
    current, previous_out, current_in, previous_in, strength, sigma=12.0
):
    """Blend a stylized frame with the previous one where the input is still.

    out = (1 - a) * current + a * previous_out, with the per-pixel weight
    a = strength * exp(-|in_t - in_{t-1}| / sigma) (mean over RGB, 0..255):
    static regions keep the previous look (no flicker), moving regions follow
    the new frame (no ghosting).

    Args:
        current: stylized frame t, uint8 `[H, W, 3]`.
        previous_out: blended output of frame t-1, uint8.
        current_in, previous_in: input frames t and t-1, uint8.
        strength: 0 (off) .. <1.
        sigma: input change (grey levels) at which the weight falls to 1/e.

    Returns:
        uint8 `[H, W, 3]`.
    """
    change = np.abs(
        current_in.astype(np.float32) - previous_in.astype(np.float32)
    ).mean(-1, keepdims=True)
    a = strength * np.exp(-change / sigma)
    out = (1 - a) * current.astype(np.float32) + a * previous_out.astype(
        np.float32
    )
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def stylize_video(
    stylizer,
    src,
    dst,
    batch=4,
    temporal_smoothing=0.0,
    side_by_side=False,
    progress=None,
    quality=7,
    allow_short=False,
):
    """Stylize a video file frame by frame into an H.264 MP4 (or `dst` type).

    Keeps the frame count and frame rate and copies the audio track
    (re-encoded to AAC so that any source container works).

    Args:
        stylizer: a `uegan_tf.inference.Stylizer`.
        src: input video path.
        dst: output path (written atomically).
        batch: frames per generator call.
        temporal_smoothing: 0 disables; 0.3-0.7 reduces flicker.
        side_by_side: input and output next to each other.
        progress: callable(frames_done) for progress reporting.
        quality: ffmpeg quality 0-10 (imageio-ffmpeg scale).
        allow_short: publish the output of a video that decodes fewer
            frames than its header declares (a truncated file); by default
            that is an error and nothing is written.

    Returns:
        dict with "frames", "fps", "audio", "size" and "declared" (the
        header's frame count, or None).

    Raises:
        VideoError: unreadable video, no frames, fewer frames than declared
            (unless `allow_short`).
    """
    info = probe(src)
    declared = declared_frames(info)
    reader = imageio_ffmpeg.read_frames(str(src))
    try:
        meta = next(reader)
    except (StopIteration, RuntimeError, OSError) as e:
        # imageio-ffmpeg puts ffmpeg's whole log (banner, build
        # configuration, ...) into the message: keep one line of it.
        raise VideoError(
            f"{src}: cannot decode the video ({ffmpeg_reason(e)})", str(e)
        ) from None
    width, height = meta["size"]
    fps = info["fps"] or fractions.Fraction(meta.get("fps") or 25)
    frame_bytes = width * height * 3

    first = next(reader, None)
    if first is None or len(first) != frame_bytes:
        reader.close()
        raise VideoError(f"{src}: the video has no frames")

    dst = pathlib.Path(dst)
    dst.parent.mkdir(parents=True, exist_ok=True)
    # ffmpeg picks the container from the suffix: keep it last.
    fd, tmp = tempfile.mkstemp(
        prefix=temp_prefix(dst.stem),
        suffix=dst.suffix or ".mp4",
        dir=dst.parent,
    )
    os.close(fd)
    # Scale the stylized frame back to the source size if max_side shrank
    # it: a video keeps its resolution.
    out_w = width * (2 if side_by_side else 1)
    writer = imageio_ffmpeg.write_frames(
        tmp,
        (out_w, height),
        fps=fps,
        quality=quality,
        macro_block_size=2,
        audio_path=str(src) if info["has_audio"] else None,
        audio_codec="aac" if info["has_audio"] else None,
        ffmpeg_log_level="error",
    )
    count = 0
    try:
        writer.send(None)  # start ffmpeg
        prev_in = prev_out = None
        pending = [first]

        def flush(raw_frames):
            nonlocal prev_in, prev_out, count
            frames = np.stack(
                [
                    np.frombuffer(f, np.uint8).reshape(height, width, 3)
                    for f in raw_frames
                ]
            )
            styled = stylizer.stylize_batch(
                np.stack([stylizer.prepare(f) for f in frames])
            )
            for f, s in zip(frames, styled):
                if s.shape[:2] != (height, width):
                    import cv2

                    s = cv2.resize(
                        s, (width, height), interpolation=cv2.INTER_CUBIC
                    )
                if temporal_smoothing > 0 and prev_out is not None:
                    s = temporal_blend(
                        s, prev_out, f, prev_in, temporal_smoothing
                    )
                prev_in, prev_out = f, s
                out = np.concatenate([f, s], axis=1) if side_by_side else s
                writer.send(np.ascontiguousarray(out))
                count += 1
            if progress:
                progress(count)

        try:
            for raw in reader:
                if len(raw) != frame_bytes:
                    break  # a truncated last frame
                pending.append(raw)
                if len(pending) >= batch:
                    flush(pending)
                    pending = []
        except (RuntimeError, OSError) as e:
            raise VideoError(
                f"{src}: decoding failed after {count + len(pending)} "
                f"frames ({ffmpeg_reason(e)})",
                str(e),
            ) from None
        if pending:
            flush(pending)
        if is_short(count, declared) and not allow_short:
            # A truncated file decodes its first frames and then stops
            # without an error: refuse rather than publish a short video.
            raise VideoError(
                f"{src}: only {count} of the {declared} frames its header "
                "declares could be decoded (truncated or damaged file); "
                "nothing written (--allow_short_video keeps them)"
            )
        writer.close()
        publish(tmp, dst)
    except BaseException:
        try:
            writer.close()
        except Exception:  # best effort while failing
            pass
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    finally:
        reader.close()
    return {
        "frames": count,
        "declared": declared,
        "fps": fps,
        "audio": info["has_audio"],
        "size": (out_w, height),
    }
