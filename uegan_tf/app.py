r"""The web app: stylize photos and videos in the browser (Gradio).

    uegan app [--host=127.0.0.1] [--port=7860] [--model=PATH ...] \
        [--max_file_size=25mb] [--max_video_seconds=60] \
        [--max_megapixels=64] [--max_side=4096] [--concurrency=2] \
        [--queue_size=16] [--cache_size=4] [--max_user_disk=200mb] \
        [--precision=bf16] [--max_memory=1.5G]
    python -m uegan_tf.app ...                   # the same command

Gradio is an optional extra (`pip install .[app]`). The app only serves
the loopback interface unless `--host` says otherwise, and it sends no
analytics. Each `--model` is `PATH` or `NAME=PATH` (a style name, .keras
file, training work dir, SavedModel or TF1 checkpoint folder); several can
be given, repeated or comma-separated. Without `--model` the installed
styles (`uegan list-styles`) are offered.

Uploads, results and Gradio's copies of them live in a folder of this
server's own (`private_temp_root`), deleted when it stops (Ctrl-C or
SIGTERM); each browser session may keep at most `--max_user_disk` of them,
and each client address may upload at most that much per hour
(`UploadQuota`).

Every request goes through the same code as `uegan stylize`: images are
read with `image_io.load_rgb` and stylized by `inference.Stylizer`, videos
by `video.stylize_video`. `StylizeService` holds that logic without any
Gradio import, so it can be tested directly; `build_app` only lays out the
page and turns `InputError`s into messages for the user.
"""

import argparse
import base64
import collections
import dataclasses
import math
import os
import pathlib
import re
import shutil
import signal
import sys
import tempfile
import threading
import time

EXAMPLES_DIR = pathlib.Path(__file__).resolve().parent / "examples"


class InputError(Exception):
    """A request the app refuses; `str()` is a one-line message for the user."""


@dataclasses.dataclass(frozen=True)
class AppConfig:
    """Settings of one app server (built from the command line at the edge).

    Attributes:
        host: interface to listen on; loopback unless asked otherwise.
        port: TCP port.
        models: raw `--model` values (`PATH` or `NAME=PATH`); empty: the
            installed styles.
        max_file_size: largest accepted upload, in bytes (Gradio refuses
            bigger ones before they reach the disk).
        max_video_seconds: longest accepted video.
        max_pixels: photos with more pixels are refused before decoding
            (a small PNG can expand to gigabytes).
        max_side: photos and frames with a longer side are downscaled
            first (0: never), which bounds the work of one request.
        concurrency: requests stylized at the same time (image and video
            share this pool, so memory stays bounded under load).
        queue_size: requests allowed to wait; more get "queue full".
        cache_size: loaded stylizers kept in memory (LRU).
        video_batch: video frames per generator call.
        max_memory: peak memory budget (bytes) of stylizing; each of the
            `concurrency` requests running at once gets an equal share of
            it above the process's fixed part (see `request_memory`).
        precision: "fp32" or "bf16" inference (see `Stylizer`).
        keep_outputs_seconds: results older than this are deleted.
        max_user_bytes: disk one user (browser session) may take with the
            uploads and results of their requests still kept; their oldest
            results are deleted to make room, and a request that would
            still exceed it is refused.
    """

    host: str = "127.0.0.1"
    port: int = 7860
    models: tuple = ()
    max_file_size: int = 25 * 2**20
    max_video_seconds: float = 60.0
    max_pixels: int = 64_000_000
    max_side: int = 4096
    concurrency: int = 2
    queue_size: int = 16
    cache_size: int = 4
    video_batch: int = 4
    max_memory: int = 1_500_000_000
    precision: str = "fp32"
    keep_outputs_seconds: float = 3600.0
    max_user_bytes: int = 200 * 2**20

    def validate(self):
        """Returns self; raises ValueError naming the first bad setting."""
        if not 0 <= self.port <= 65535:
            raise ValueError(f"--port must be in 0..65535, got {self.port}")
        if self.max_file_size < 1:
            raise ValueError("--max_file_size must be positive")
        if self.max_user_bytes < self.max_file_size:
            raise ValueError("--max_user_disk must be >= --max_file_size")
        if self.max_video_seconds <= 0:
            raise ValueError("--max_video_seconds must be positive")
        if self.max_pixels < 1:
            raise ValueError("--max_megapixels must be positive")
        if self.max_side < 0 or 0 < self.max_side < 64:
            raise ValueError(
                f"--max_side must be 0 or >= 64, got {self.max_side}"
            )
        if self.max_memory < 1:
            raise ValueError("--max_memory must be positive")
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(
                f"--precision must be fp32 or bf16, got {self.precision!r}"
            )
        for name in ("concurrency", "queue_size", "cache_size", "video_batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"--{name} must be >= 1")
        return self

    def request_memory(self):
        """The memory budget of one stylize call (`Stylizer.max_memory`).

        The fixed part of the process (interpreter, TensorFlow, a model) is
        counted once; the rest is shared by the concurrent requests.
        """
        from uegan_tf.inference import MEMORY_BASE_BYTES

        share = (self.max_memory - MEMORY_BASE_BYTES) / self.concurrency
        return int(MEMORY_BASE_BYTES + max(share, 0))


_SIZE_UNITS = {"": 1, "b": 1, "kb": 2**10, "mb": 2**20, "gb": 2**30}


def parse_size(text):
    """ "25mb", "512kb", "1gb" or a byte count -> bytes (binary units).

    Raises:
        ValueError: not a size.
    """
    match = re.fullmatch(
        r"\s*(\d+(?:\.\d+)?)\s*([kmg]?b?)\s*", str(text).lower()
    )
    if not match:
        raise ValueError(f"not a size: {text!r} (examples: 25mb, 512kb)")
    return int(float(match.group(1)) * _SIZE_UNITS[match.group(2)])


def format_size(num_bytes):
    """Bytes -> "25 MB" / "512 KB" / "100 bytes" for messages."""
    for unit, size in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if num_bytes >= size:
            return f"{num_bytes / size:.3g} {unit}"
    return f"{num_bytes} bytes"


def _style_name(source):
    path = pathlib.Path(source)
    if path.name == "generator.keras":  # a style folder's file
        return path.parent.name
    return path.stem if path.suffix else path.name


def parse_model_specs(values):
    """`--model` values -> styles, in the given order.

    Args:
        values: strings, each `PATH` or `NAME=PATH`, possibly several
            separated by commas.

    Returns:
        dict display name -> model source. A name taken twice gets a
        numeric suffix.
    """
    styles = {}
    for value in values:
        for spec in filter(None, (s.strip() for s in value.split(","))):
            name, sep, source = spec.partition("=")
            if not sep:
                name, source = _style_name(spec), spec
            name, base, n = name.strip() or "model", name.strip(), 2
            while name in styles:
                name, n = f"{base}-{n}", n + 1
            styles[name] = source.strip()
    return styles


def registry_styles():
    """The installed styles (`uegan list-styles`), the default one first."""
    from uegan_tf import registry

    found = registry.list_styles()
    found.sort(key=lambda s: s["name"] != registry.DEFAULT_STYLE)
    return {s["name"]: s["path"] for s in found}


def _upload_file(payload, kind):
    """A raw Gradio upload value -> (path or None, data or None, name).

    The app's events skip Gradio's own preprocessing (which would open
    images with PIL and fail with a generic error on a bad file), so the
    handlers receive the upload as JSON: `{"path", "orig_name", ...}` for
    files, `{"video": {...}}` for videos, or a base64 `data:` URL for some
    browser captures.
    """
    if isinstance(payload, dict) and isinstance(payload.get("video"), dict):
        payload = payload["video"]
    if isinstance(payload, (str, pathlib.Path)):
        payload = {"path": str(payload)}
    if not isinstance(payload, dict) or not (
        payload.get("path") or payload.get("url")
    ):
        raise InputError(f"no {kind}: upload one first")
    path = payload.get("path")
    url = payload.get("url") or ""
    name = payload.get("orig_name") or (
        pathlib.Path(path).name if path else f"captured {kind}"
    )
    if not path and url.startswith("data:"):
        try:
            data = base64.b64decode(url.partition(",")[2], validate=True)
        except ValueError:
            raise InputError(f"{name}: unreadable browser capture") from None
        return None, data, name
    if not path:
        raise InputError(f"{name}: remote files are not accepted; upload it")
    return path, None, name


def _tree_size(path):
    """Bytes of the files under `path` (0 if it is gone)."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(root, name)).st_size
            except OSError:  # deleted meanwhile
                pass
    return total


def _upload_size(payload):
    """Bytes of an upload on disk (0 for in-memory captures)."""
    try:
        path, data, _ = _upload_file(payload, "file")
    except InputError:
        return 0
    if data is not None:
        return len(data)
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def private_temp_root():
    """A fresh folder for this server's uploads and results.

    Gradio keeps every upload and every served result in its cache folder
    (`GRADIO_TEMP_DIR`, by default the shared /tmp/gradio) and never
    deletes them on exit; pointing it into a folder of this server's own
    lets `remove_temp_root` delete everything on shutdown. A
    `GRADIO_TEMP_DIR` set by the user is the parent, never deleted itself.
    Call before `build_app` (Gradio reads the variable when the page and
    the server are created).
    """
    parent = os.environ.get("GRADIO_TEMP_DIR")
    if parent:
        pathlib.Path(parent).mkdir(parents=True, exist_ok=True)
    root = pathlib.Path(tempfile.mkdtemp(prefix="uegan_app_", dir=parent))
    os.environ["GRADIO_TEMP_DIR"] = str(root / "gradio")
    return root


def remove_temp_root(root):
    """Delete the folder of `private_temp_root` (uploads and results)."""
    shutil.rmtree(root, ignore_errors=True)
    return not pathlib.Path(root).exists()


class UploadQuota:
    """ASGI middleware: a disk quota for each client's uploads.

    Gradio stores an upload before any request uses it and ties it to no
    session, so `StylizeService`'s per-session share cannot see uploads
    that are never converted. This middleware counts the bytes each client
    address POSTs to the upload route within `window` seconds (Gradio's
    cache keeps files about that long) and answers 413 once `max_bytes`
    would be exceeded; the bytes are counted as they arrive, so a missing
    or false Content-Length does not get around it.

    Args:
        app: the ASGI app.
        max_bytes: upload bytes one client may send per window.
        window: seconds after which an upload no longer counts.
    """

    def __init__(self, app, max_bytes, window):
        self.app = app
        self.max_bytes = max_bytes
        self.window = window
        self._sent = collections.defaultdict(list)  # client -> [(t, bytes)]
        self._lock = threading.Lock()

    def used(self, client):
        """Bytes `client` uploaded within the window."""
        now = time.monotonic()
        with self._lock:
            # Entries stay the same lists: uploads in progress add to them.
            kept = [e for e in self._sent[client] if now - e[0] < self.window]
            self._sent[client] = kept
            return sum(n for _, n in kept)

    async def __call__(self, scope, receive, send):
        if (
            scope["type"] != "http"
            or scope.get("method") != "POST"
            or not scope.get("path", "").rstrip("/").endswith("/upload")
        ):
            await self.app(scope, receive, send)
            return
        client = (scope.get("client") or ("unknown",))[0]
        entry = [time.monotonic(), 0]
        with self._lock:
            self._sent[client].append(entry)
        over = False

        async def counted_receive():
            nonlocal over
            message = await receive()
            if message["type"] == "http.request":
                with self._lock:
                    entry[1] += len(message.get("body", b""))
                if self.used(client) > self.max_bytes:
                    over = True
                    # Ends the upload here: the app sees a disconnect.
                    return {"type": "http.disconnect"}
            return message

        if self.used(client) >= self.max_bytes:
            over = True
        else:
            started = False

            async def guarded_send(message):
                nonlocal started
                if over and not started:
                    return  # the app's reply is replaced by the 413 below
                started = True
                await send(message)

            await self.app(scope, counted_receive, guarded_send)
            if not over or started:
                return
        with self._lock:
            entry[1] = 0  # refused: nothing of it is kept
        text = (
            f"upload quota exceeded: {format_size(self.max_bytes)} per "
            f"{self.window / 60:g} min from one address"
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [(b"content-type", b"text/plain; charset=utf-8")],
            }
        )
        await send({"type": "http.response.body", "body": text})


class StylizerCache:
    """A bounded, thread-safe LRU of `Stylizer`s keyed by (source, options).

    Options that only change pre/post-processing (tiling, brightness) reuse
    an already loaded model of the same source, so switching them does not
    reload weights; only a new source is loaded from disk.

    Args:
        size: stylizers kept.
        max_side: `Stylizer(max_side=...)` for every stylizer.
        max_memory: `Stylizer(max_memory=...)` for every stylizer.
        precision: `Stylizer(precision=...)` for every stylizer.
    """

    def __init__(self, size=4, max_side=0, max_memory=None, precision="fp32"):
        self.size = size
        self.max_side = max_side
        self.max_memory = max_memory
        self.precision = precision
        self._items = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, source, tile=None, brightness=False):
        """The stylizer for `source` with these options (loaded if needed).

        Raises:
            ModelLoadError: the source cannot be loaded.
        """
        from uegan_tf.inference import DEFAULT_MAX_MEMORY
        from uegan_tf.inference import Stylizer

        key = (str(source), tile, bool(brightness))
        # Loading under the lock means two first requests for one style
        # load it once, and the cache never holds more than `size` models.
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
            sibling = next(
                (s for k, s in self._items.items() if k[0] == key[0]), None
            )
            if sibling is not None:
                # Same weights and traced functions, other options.
                stylizer = sibling.with_options(
                    tile=tile, brightness=bool(brightness)
                )
            else:
                stylizer = Stylizer(
                    source,
                    tile=tile,
                    brightness=brightness,
                    max_side=self.max_side,
                    max_memory=self.max_memory or DEFAULT_MAX_MEMORY,
                    precision=self.precision,
                )
            self._items[key] = stylizer
            while len(self._items) > self.size:
                self._items.popitem(last=False)
            return stylizer


class StylizeService:
    """What the app does, without Gradio: checks, stylizes, writes results.

    Args:
        styles: display name -> model source (see `parse_model_specs`).
        config: an `AppConfig`.
        work_dir: where results are written (default: a new temporary
            folder); results older than `config.keep_outputs_seconds` are
            deleted as new ones arrive.
    """

    # Tiles used when the user asks for tiled inference. Without it the
    # stylizer still tiles automatically when a photo would not fit
    # `--max_memory`, so an unticked box never risks running out of memory.
    TILE = 512

    def __init__(self, styles, config=None, work_dir=None):
        self.styles = dict(styles)
        self.config = config or AppConfig()
        self.work_dir = pathlib.Path(
            work_dir or tempfile.mkdtemp(prefix="uegan_app_")
        )
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.cache = StylizerCache(
            self.config.cache_size,
            self.config.max_side,
            max_memory=self.config.request_memory(),
            precision=self.config.precision,
        )
        # user -> [(job folder, upload bytes)], oldest first.
        self._usage = collections.defaultdict(list)
        self._usage_lock = threading.Lock()

    # -- helpers -------------------------------------------------------------

    def no_models_message(self):
        return (
            "No style is available. Start the app with "
            "`--model=PATH` (a generator .keras file, training work dir or "
            "SavedModel) or install a style with `uegan add-style NAME "
            "WORKDIR`."
        )

    def stylizer(self, style, tiled, brightness):
        """The cached stylizer of a style shown in the menu.

        Raises:
            InputError: no models, unknown style or unloadable model.
        """
        from uegan_tf.inference import ModelLoadError

        if not self.styles:
            raise InputError(self.no_models_message())
        # Only menu names are accepted: an API client must not be able to
        # make the server load an arbitrary path.
        if style not in self.styles:
            raise InputError(
                f"unknown style {style!r} (available: {', '.join(self.styles)})"
            )
        try:
            return self.cache.get(
                self.styles[style],
                tile=self.TILE if tiled else None,
                brightness=bool(brightness),
            )
        except ModelLoadError as e:
            raise InputError(f"cannot load style {style!r}: {e}") from e

    def _job_dir(self, user=None, upload_bytes=0):
        """A fresh folder for one request (names of parallel jobs differ).

        Expired results are deleted first; then the user's own oldest
        results until their uploads and results, with this request's
        upload, fit `config.max_user_bytes`.

        Raises:
            InputError: this upload alone does not fit the user's share.
        """
        now = time.time()
        for old in self.work_dir.iterdir():
            try:
                if now - old.stat().st_mtime > self.config.keep_outputs_seconds:
                    shutil.rmtree(old, ignore_errors=True)
            except OSError:  # removed by a concurrent request
                pass
        job = pathlib.Path(tempfile.mkdtemp(dir=self.work_dir))
        if user is None:
            return job
        cap = self.config.max_user_bytes
        with self._usage_lock:
            jobs = [(d, n) for d, n in self._usage[user] if d.exists()]
            used = sum(_tree_size(d) + n for d, n in jobs)
            while jobs and used + upload_bytes > cap:
                oldest, n = jobs.pop(0)
                used -= _tree_size(oldest) + n
                shutil.rmtree(oldest, ignore_errors=True)
            if used + upload_bytes > cap:
                shutil.rmtree(job, ignore_errors=True)
                self._usage[user] = jobs
                raise InputError(
                    f"this upload ({format_size(upload_bytes)}) does not fit "
                    f"the {format_size(cap)} of disk one user may use"
                )
            jobs.append((job, upload_bytes))
            self._usage[user] = jobs
        return job

    def _settle(self, user, job):
        """After `job`'s results are written: delete `user`'s oldest other
        results until their share fits `config.max_user_bytes` again (one
        request's own results are always kept)."""
        if user is None:
            return
        cap = self.config.max_user_bytes
        with self._usage_lock:
            jobs = [(d, n) for d, n in self._usage[user] if d.exists()]
            used = sum(_tree_size(d) + n for d, n in jobs)
            while used > cap and len(jobs) > 1 and jobs[0][0] != job:
                oldest, n = jobs.pop(0)
                used -= _tree_size(oldest) + n
                shutil.rmtree(oldest, ignore_errors=True)
            self._usage[user] = jobs

    def disk_used(self, user):
        """Bytes of `user`'s kept uploads and results (see `_job_dir`)."""
        with self._usage_lock:
            return sum(
                _tree_size(d) + n for d, n in self._usage[user] if d.exists()
            )

    def read_image(self, payload):
        """An uploaded image as uint8 RGB, via the project's one reader.

        Returns:
            `(rgb, name)`.

        Raises:
            InputError: no upload, or not a usable image (one-line reason).
        """
        from uegan_tf.image_io import ImageReadError
        from uegan_tf.image_io import decode_rgb
        from uegan_tf.image_io import load_rgb

        path, data, name = _upload_file(payload, "image")
        limit = self.config.max_pixels
        try:
            if data is not None:
                return decode_rgb(
                    data, name, min_side=4, max_pixels=limit
                ), name
            return load_rgb(path, min_side=4, max_pixels=limit), name
        except ImageReadError as e:
            # The user knows the file by its own name, not the upload path.
            raise InputError(f"{name}: {e.reason}") from e

    # -- requests ------------------------------------------------------------

    def stylize_image(
        self,
        payload,
        style,
        tiled=False,
        brightness=False,
        side_by_side=False,
        user=None,
    ):
        """Stylize one uploaded photo.

        Args:
            payload: the upload (see `_upload_file`).
            style: a name of `self.styles`.
            tiled: tiled inference with `TILE`-pixel tiles.
            brightness: match the photo's mean brightness.
            side_by_side: the download holds photo | result.
            user: who asks (the browser session), for the disk share.

        Returns:
            `((original_path, result_path), download_path, message)`: the
            photo as stylized (after `max_side`), the result PNG, the file
            offered for download and a one-line summary.

        Raises:
            InputError: bad upload, style or model, or out of memory.
        """
        import numpy as np

        from uegan_tf.image_io import save_rgb

        rgb, name = self.read_image(payload)
        stylizer = self.stylizer(style, tiled, brightness)
        photo = stylizer.prepare(rgb)
        start = time.monotonic()
        try:
            result = stylizer(photo)
        except MemoryError:
            raise InputError(
                f"{name}: out of memory; tick tiled inference "
                "or use a smaller photo"
            ) from None
        seconds = time.monotonic() - start
        job = self._job_dir(user, _upload_size(payload))
        stem = re.sub(r"[^\w.-]+", "_", pathlib.Path(name).stem) or "photo"
        shown = save_rgb(job / f"{stem}.jpg", photo)
        styled = save_rgb(job / f"{stem}_{style}.png", result)
        download = styled
        if side_by_side:
            download = save_rgb(
                job / f"{stem}_{style}_side_by_side.png",
                np.concatenate([photo, result], axis=1),
            )
        self._settle(user, job)
        h, w = photo.shape[:2]
        message = f"{name}: {w}x{h} stylized as {style!r} in {seconds:.1f} s"
        if photo.shape != rgb.shape:
            message += (
                f" (downscaled from {rgb.shape[1]}x{rgb.shape[0]}; "
                f"limit {self.config.max_side} px)"
            )
        return (str(shown), str(styled)), str(download), message

    def stylize_video(
        self,
        payload,
        style,
        tiled=False,
        brightness=False,
        side_by_side=False,
        temporal_smoothing=0.0,
        progress=None,
        user=None,
    ):
        """Stylize one uploaded video into an MP4 (audio kept).

        Args:
            payload: the upload (see `_upload_file`).
            style, tiled, brightness, side_by_side: as `stylize_image`.
            temporal_smoothing: flicker reduction, 0 (off) to 0.9.
            progress: callable(frames_done, frames_total_or_None).
            user: who asks (the browser session), for the disk share.

        Returns:
            `(video_path, message)`.

        Raises:
            InputError: bad upload, style or model; video too long.
        """
        from uegan_tf.video import VideoError
        from uegan_tf.video import probe
        from uegan_tf.video import stylize_video

        path, data, name = _upload_file(payload, "video")
        if path is None:
            raise InputError(f"{name}: upload the video as a file")
        limit = self.config.max_video_seconds
        if not 0 <= float(temporal_smoothing) < 1:
            raise InputError("temporal smoothing must be in [0, 1)")

        def user_message(error):
            return str(error).replace(str(path), name)

        try:
            info = probe(path)
        except VideoError as e:
            raise InputError(user_message(e)) from e
        if info["duration"] is not None and info["duration"] > limit:
            raise InputError(
                f"{name}: video too long ({info['duration']:.1f}"
                f" s; the limit is {limit:g} s)"
            )
        stylizer = self.stylizer(style, tiled, brightness)
        fps = float(info["fps"] or 25)
        total = round(info["duration"] * fps) if info["duration"] else None
        # Browser recordings often carry no duration: count frames instead.
        max_frames = math.ceil(limit * fps) + 1

        def report(done):
            if done > max_frames:
                raise InputError(f"{name}: video too long (over {limit:g} s)")
            if progress:
                progress(done, total)

        job = self._job_dir(user, _upload_size(payload))
        stem = re.sub(r"[^\w.-]+", "_", pathlib.Path(name).stem) or "video"
        dst = job / f"{stem}_{style}.mp4"
        start = time.monotonic()
        try:
            stats = stylize_video(
                stylizer,
                path,
                dst,
                batch=self.config.video_batch,
                temporal_smoothing=float(temporal_smoothing),
                side_by_side=bool(side_by_side),
                progress=report,
            )
        except VideoError as e:
            raise InputError(user_message(e)) from e
        except MemoryError:
            raise InputError(
                f"{name}: out of memory; tick tiled inference"
            ) from None
        self._settle(user, job)
        seconds = time.monotonic() - start
        message = (
            f"{name}: {stats['frames']} frames at "
            f"{float(stats['fps']):.3g} fps stylized as {style!r} in "
            f"{seconds:.1f} s ({'with' if stats['audio'] else 'no'} "
            "audio)"
        )
        return str(dst), message


# ---------------------------------------------------------------------------
# The Gradio page.


def _import_gradio():
    # No usage statistics leave the machine; set before Gradio reads it.
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    try:
        import gradio as gr
    except ImportError as e:
        raise ImportError(
            "the web app needs Gradio: pip install '.[app]' "
            "(or pip install gradio)"
        ) from e
    return gr


def _session(request):
    """The user a request counts against: its browser session."""
    return getattr(request, "session_hash", None) or "anonymous"


def build_app(styles=None, config=None, work_dir=None):
    """The web app as a Gradio `Blocks` with its queue configured.

    Args:
        styles: display name -> model source (see `parse_model_specs`);
            None: the installed styles. May be empty: the page then says
            how to add a model instead of failing.
        config: an `AppConfig` (limits, concurrency).
        work_dir: results folder (see `StylizeService`).

    Returns:
        `gradio.Blocks`; start it with `launch(demo, config)`.
    """
    gr = _import_gradio()
    config = config or AppConfig()
    service = StylizeService(
        registry_styles() if styles is None else styles, config, work_dir
    )
    names = list(service.styles)

    def user_errors(fn, *args):
        try:
            return fn(*args)
        except InputError as e:
            # An expected refusal: a message for the user, no traceback.
            raise gr.Error(str(e), print_exception=False) from e

    def on_image(
        payload, style, tiled, brightness, side_by_side, request: gr.Request
    ):
        return user_errors(
            service.stylize_image,
            payload,
            style,
            tiled,
            brightness,
            side_by_side,
            _session(request),
        )

    # Gradio finds the progress tracker by this default value.
    def on_video(
        payload,
        style,
        tiled,
        brightness,
        side_by_side,
        smoothing,
        request: gr.Request,
        progress=gr.Progress(),  # noqa: B008 (Gradio injects it this way)
    ):
        def report(done, total):
            progress((done, total), desc="Stylizing frames", unit="frames")

        return user_errors(
            service.stylize_video,
            payload,
            style,
            tiled,
            brightness,
            side_by_side,
            smoothing,
            report,
            _session(request),
        )

    limits = (
        f"Uploads up to {format_size(config.max_file_size)}; videos "
        f"up to {config.max_video_seconds:g} s"
    )
    if config.max_side:
        limits += f"; larger than {config.max_side} px are downscaled"
    with gr.Blocks(
        title="UE-AnimeGANv2",
        analytics_enabled=False,
        delete_cache=(3600, 3600),
    ) as demo:
        gr.Markdown(
            "# UE-AnimeGANv2: photo to anime\n"
            f"Choose a photo or a video, pick a style, convert. "
            f"{limits}."
        )
        if not names:
            gr.Markdown(
                f"**{service.no_models_message()}**", elem_id="no-models"
            )
        with gr.Row():
            style = gr.Dropdown(
                names,
                value=names[0] if names else None,
                label="Style",
                interactive=bool(names),
                elem_id="style",
            )
            tiled = gr.Checkbox(
                False,
                label="Tiled inference",
                info=f"{StylizeService.TILE}-px tiles: less memory for big "
                "photos (large ones are always tiled)",
            )
            brightness = gr.Checkbox(
                False,
                label="Match brightness",
                info="keep the photo's mean brightness",
            )
            side_by_side = gr.Checkbox(
                False,
                label="Side by side",
                info="the download shows original | result",
            )
        with gr.Tab("Image"):
            with gr.Row():
                image_in = gr.Image(
                    type="filepath",
                    image_mode=None,
                    label="Photo",
                    sources=["upload", "webcam", "clipboard"],
                    elem_id="photo",
                )
                compare = gr.ImageSlider(
                    type="filepath",
                    label="Original | result (drag)",
                    interactive=False,
                    elem_id="compare",
                )
            image_button = gr.Button(
                "Convert", variant="primary", elem_id="convert-image"
            )
            with gr.Row():
                image_file = gr.File(
                    label="Download",
                    interactive=False,
                    elem_id="download-image",
                )
                image_status = gr.Markdown(elem_id="image-status")
            examples = sorted(EXAMPLES_DIR.glob("*.jpg"))
            if examples:
                gr.Examples(
                    [[str(p)] for p in examples],
                    inputs=[image_in],
                    label="Example photos (click one)",
                )
        with gr.Tab("Video"):
            with gr.Row():
                video_in = gr.Video(
                    label="Video", sources=["upload", "webcam"], elem_id="video"
                )
                video_out = gr.Video(
                    label="Result", interactive=False, elem_id="video-result"
                )
            smoothing = gr.Slider(
                0.0,
                0.9,
                value=0.0,
                step=0.1,
                label="Temporal smoothing",
                info="reduces flicker between frames (0: off)",
            )
            video_button = gr.Button(
                "Convert video", variant="primary", elem_id="convert-video"
            )
            video_status = gr.Markdown(elem_id="video-status")
        options = [style, tiled, brightness, side_by_side]
        # preprocess=False: the handlers read uploads with the project's
        # own loader (clear reasons for bad files) instead of Gradio's.
        # One concurrency id: images and videos share the worker pool.
        image_button.click(
            on_image,
            [image_in, *options],
            [compare, image_file, image_status],
            api_name="stylize_image",
            preprocess=False,
            concurrency_id="stylize",
            concurrency_limit=config.concurrency,
        )
        video_button.click(
            on_video,
            [video_in, *options, smoothing],
            [video_out, video_status],
            api_name="stylize_video",
            preprocess=False,
            concurrency_id="stylize",
            concurrency_limit=config.concurrency,
        )
    demo.queue(
        default_concurrency_limit=config.concurrency, max_size=config.queue_size
    )
    demo.uegan_service = service  # for tests and embedding
    return demo


def launch(demo, config=None, **kwargs):
    """Start the server of `build_app` with the config's limits.

    Args:
        demo: the `Blocks` from `build_app`.
        config: the `AppConfig` (host, port, upload limit).
        **kwargs: more `Blocks.launch` arguments (e.g.
            `prevent_thread_lock=True` to return at once).

    Returns:
        What `Blocks.launch` returns: `(app, local_url, share_url)`.
    """
    config = config or AppConfig()
    options = dict(
        server_name=config.host,
        server_port=config.port,
        max_file_size=config.max_file_size,
        # No share tunnel and no server-side rendering (a Node process):
        # a local demo server only.
        share=False,
        ssr_mode=False,
        show_error=False,
    )
    from starlette.middleware import Middleware

    options["app_kwargs"] = {
        "middleware": [
            Middleware(
                UploadQuota,
                max_bytes=config.max_user_bytes,
                window=config.keep_outputs_seconds,
            )
        ]
    }
    options.update(kwargs)
    return demo.launch(**options)


# ---------------------------------------------------------------------------
# Command line.


def parse_args(argv):
    """`[prog, *args]` -> `(AppConfig, styles or None)`.

    Raises:
        ValueError: a bad option value.
        SystemExit: `--help` or an unknown option (from argparse).
    """
    from uegan_tf.image_io import parse_memory

    d = AppConfig()
    parser = argparse.ArgumentParser(
        prog=argv[0] if argv else "uegan app",
        description="Stylize photos and videos in the browser (Gradio).",
    )
    parser.add_argument(
        "--host",
        default=d.host,
        help="interface to listen on (default: loopback)",
    )
    parser.add_argument("--port", type=int, default=d.port)
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        help="PATH or NAME=PATH of a model (style name, .keras, work dir, "
        "SavedModel); repeatable or comma-separated. Default: the "
        "installed styles",
    )
    parser.add_argument(
        "--max_file_size",
        default="25mb",
        help="largest upload, e.g. 25mb (default: 25mb)",
    )
    parser.add_argument(
        "--max_video_seconds", type=float, default=d.max_video_seconds
    )
    parser.add_argument(
        "--max_user_disk",
        default="200mb",
        help="disk one user's kept uploads and results may take "
        "(default: 200mb); their oldest results make room first",
    )
    parser.add_argument(
        "--max_megapixels",
        type=float,
        default=d.max_pixels / 1e6,
        help="refuse photos with more pixels",
    )
    parser.add_argument(
        "--max_side",
        type=int,
        default=d.max_side,
        help="downscale longer photos/frames (0: never)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=d.concurrency,
        help="requests stylized at once",
    )
    parser.add_argument(
        "--queue_size",
        type=int,
        default=d.queue_size,
        help="requests allowed to wait",
    )
    parser.add_argument(
        "--max_memory",
        default="1.5G",
        help="peak memory budget of stylizing, e.g. 1.5G or 800M (default: "
        "1.5G); larger photos are tiled to fit it",
    )
    parser.add_argument(
        "--precision",
        choices=("fp32", "bf16"),
        default=d.precision,
        help="inference precision; bf16 needs a CPU with AVX512_BF16/AMX "
        "(elsewhere a note and fp32)",
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="show TensorFlow's start-up log",
    )
    parser.add_argument(
        "--cache_size",
        type=int,
        default=d.cache_size,
        help="loaded models kept in memory",
    )
    args = parser.parse_args(argv[1:])
    config = AppConfig(
        host=args.host,
        port=args.port,
        models=tuple(args.model),
        max_file_size=parse_size(args.max_file_size),
        max_user_bytes=parse_size(args.max_user_disk),
        max_video_seconds=args.max_video_seconds,
        max_pixels=round(args.max_megapixels * 1e6),
        max_side=args.max_side,
        concurrency=args.concurrency,
        queue_size=args.queue_size,
        cache_size=args.cache_size,
        max_memory=parse_memory(args.max_memory),
        precision=args.precision,
    ).validate()
    styles = parse_model_specs(config.models) if config.models else None
    return config, styles


def cli(argv=None):
    """Entry point of `uegan app` / `python -m uegan_tf.app`.

    Returns:
        The exit code: 0 after a normal shutdown, 2 for usage errors.
    """
    argv = list(sys.argv if argv is None else argv)
    try:
        config, styles = parse_args(argv)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    from uegan_tf.quiet import quiet_tensorflow

    quiet_tensorflow("--verbose" in argv)
    root = private_temp_root()
    try:
        demo = build_app(styles, config, work_dir=root / "results")
    except ImportError as e:
        remove_temp_root(root)
        print(f"error: {e}", file=sys.stderr)
        return 2
    service = demo.uegan_service
    if service.styles:
        print(
            "styles: "
            + ", ".join(
                f"{name} ({source})" for name, source in service.styles.items()
            )
        )
    else:
        print(f"warning: {service.no_models_message()}", file=sys.stderr)
    # SIGTERM (systemd, docker stop) ends the server like Ctrl-C, so that
    # the uploads and results are deleted below instead of staying behind.
    previous = signal.signal(signal.SIGTERM, _interrupt)
    try:
        launch(demo, config)
    except OSError as e:  # port in use, bad host
        print(f"error: cannot start the server: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        # Ctrl-C while Gradio is still starting up (once it serves, its own
        # loop handles Ctrl-C and returns normally).
        demo.close()
    finally:
        signal.signal(signal.SIGTERM, previous)
        remove_temp_root(root)
    return 0


def _interrupt(signum, frame):
    raise KeyboardInterrupt


if __name__ == "__main__":
    sys.exit(cli())
