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
import queue
import re
import subprocess
import tempfile
import threading
import time

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


def model_share(info):
    """Share of a `stylize_video` frame loop spent in the generator."""
    return info["model_seconds"] / max(info["seconds"], 1e-9)


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
    overlap=True,
):
    """Stylize a video file frame by frame into an H.264 MP4 (or `dst` type).

    Keeps the frame count and frame rate and copies the audio track
    (re-encoded to AAC so that any source container works).

    Args:
        stylizer: a `uegan_tf.inference.stylizer.Stylizer`.
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
        overlap: decode, stylize and encode in three threads (the default);
            False runs them one after another in this thread (the
            benchmark's baseline).

    Returns:
        dict with "frames", "fps", "audio", "size", "declared" (the
        header's frame count, or None), "seconds" (wall time of the frame
        loop) and "model_seconds" (time inside the generator calls).

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
    try:
        stats = _run_stages(
            reader,
            writer,
            first,
            (height, width),
            lambda frames: stylizer.stylize_batch(
                np.stack([stylizer.prepare(f) for f in frames])
            ),
            batch=batch,
            temporal_smoothing=temporal_smoothing,
            side_by_side=side_by_side,
            progress=progress,
            overlap=overlap,
            src=src,
        )
        count = stats["frames"]
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
        "seconds": stats["seconds"],
        "model_seconds": stats["model_seconds"],
    }


# Frames waiting between stages, in batches: bounds memory (a 1280x720
# batch of 4 is 11 MB) while letting decode and encode run ahead/behind.
QUEUE_BATCHES = 2
_END = object()  # end of stream marker on a queue


def _run_stages(
    reader,
    writer,
    first,
    shape,
    stylize,
    batch,
    temporal_smoothing,
    side_by_side,
    progress,
    overlap,
    src,
):
    """Decode -> stylize -> encode; returns {"frames", "seconds",
    "model_seconds"}.

    With `overlap`, a reader thread decodes raw frames into a bounded queue
    of batches and a writer thread blends, scales and encodes stylized
    batches from another, so the generator (which releases the GIL inside
    TensorFlow ops) is busy while ffmpeg decodes and encodes: on a
    2-core CPU the frame rate approaches the model's own. Errors in either
    thread stop the others and are raised here. Without `overlap` the
    same stage functions run in turn in this thread.

    Args:
        reader: imageio-ffmpeg frame generator (after its metadata item).
        writer: started imageio-ffmpeg writer generator.
        first: the first raw frame (bytes), already read.
        shape: (height, width) of the source frames.
        stylize: callable(uint8 [N, H, W, 3]) -> uint8 [N, h, w, 3].
    """
    height, width = shape
    frame_bytes = height * width * 3
    decoded = 0  # raw frames read so far (for error messages)

    def batches():
        """Raw frames of the source, `batch` at a time, as uint8 arrays."""
        nonlocal decoded
        pending = [first]
        decoded = 1
        try:
            for raw in reader:
                if len(raw) != frame_bytes:
                    break  # a truncated last frame
                pending.append(raw)
                decoded += 1
                if len(pending) >= batch:
                    yield _to_frames(pending, height, width)
                    pending = []
        except (RuntimeError, OSError) as e:
            raise VideoError(
                f"{src}: decoding failed after {decoded} frames "
                f"({ffmpeg_reason(e)})",
                str(e),
            ) from None
        if pending:
            yield _to_frames(pending, height, width)

    written = 0
    prev_in = prev_out = None

    def write(frames, styled):
        nonlocal written, prev_in, prev_out
        for f, s in zip(frames, styled):
            if s.shape[:2] != (height, width):
                # max_side shrank the frame: a video keeps its resolution.
                import cv2

                s = cv2.resize(
                    s, (width, height), interpolation=cv2.INTER_CUBIC
                )
            if temporal_smoothing > 0 and prev_out is not None:
                s = temporal_blend(s, prev_out, f, prev_in, temporal_smoothing)
            prev_in, prev_out = f, s
            out = np.concatenate([f, s], axis=1) if side_by_side else s
            writer.send(np.ascontiguousarray(out))
            written += 1
        if progress:
            progress(written)

    model_seconds = 0.0

    def timed_stylize(frames):
        nonlocal model_seconds
        t = time.perf_counter()
        out = stylize(frames)
        model_seconds += time.perf_counter() - t
        return out

    start = time.perf_counter()
    writer.send(None)  # start ffmpeg
    if not overlap:
        for frames in batches():
            write(frames, timed_stylize(frames))
    else:
        _overlapped(batches(), timed_stylize, write)
    return {
        "frames": written,
        "seconds": time.perf_counter() - start,
        "model_seconds": model_seconds,
    }


def _overlapped(source, stylize, write):
    """Run source -> stylize -> write with a thread on each side.

    `source` runs in a reader thread, `write` in a writer thread, `stylize`
    here; queues hold at most QUEUE_BATCHES batches each. The first error
    of any stage is re-raised after every thread has stopped.
    """
    decoded_q = queue.Queue(QUEUE_BATCHES)
    styled_q = queue.Queue(QUEUE_BATCHES)
    stop = threading.Event()
    errors = []

    def put(q, item):
        # Give up (instead of blocking forever) once another stage failed.
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def get(q):
        while not stop.is_set():
            try:
                return q.get(timeout=0.1)
            except queue.Empty:
                continue
        return _END

    def fail(e):
        errors.append(e)
        stop.set()

    def read_all():
        try:
            for frames in source:
                if not put(decoded_q, frames):
                    return
            put(decoded_q, _END)
        except BaseException as e:  # re-raised in the calling thread
            fail(e)

    def write_all():
        try:
            while (item := get(styled_q)) is not _END:
                write(*item)
        except BaseException as e:
            fail(e)

    threads = [
        threading.Thread(target=read_all, name="video-decode", daemon=True),
        threading.Thread(target=write_all, name="video-encode", daemon=True),
    ]
    for t in threads:
        t.start()
    try:
        while (frames := get(decoded_q)) is not _END:
            if not put(styled_q, (frames, stylize(frames))):
                break
        put(styled_q, _END)
        threads[1].join()  # the writer drains its queue
    except BaseException as e:  # KeyboardInterrupt, generator errors
        fail(e)
    finally:
        stop.set()
        for t in threads:
            t.join()
    if errors:
        raise errors[0]


def _to_frames(raw_frames, height, width):
    """Raw RGB24 frame buffers -> uint8 `[N, H, W, 3]`."""
    return np.stack(
        [
            np.frombuffer(f, np.uint8).reshape(height, width, 3)
            for f in raw_frames
        ]
    )
