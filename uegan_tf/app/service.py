r"""The web app's service: requests, limits and temp files (no Gradio).

    uegan app [--host=127.0.0.1] [--port=7860] [--model=PATH ...] ...
    python -m uegan_tf.app ...                   # the same command

Its settings (`AppConfig`, flags listed by `uegan app --help`) are
defined in `uegan_tf/config.py`.

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
read with `image_io.load_rgb` and stylized by
`inference.stylizer.Stylizer`, videos by `inference.video.stylize_video`.
`StylizeService` holds that logic without any Gradio import, so it can be
tested directly; `build_app` (`page.py`) only lays out the page and turns
`InputError`s into messages for the user.
"""

import base64
import collections
import math
import os
import pathlib
import re
import shutil
import tempfile
import threading
import time

from uegan_tf.config import AppConfig  # noqa: F401 (re-exported)
from uegan_tf.config import parse_size  # noqa: F401 (re-exported)


class InputError(Exception):
    """A request the app refuses; `str()` is a one-line message for the user."""


def format_size(num_bytes):
    """Bytes -> "25 MB" / "512 KB" / "100 bytes" for messages."""
    for unit, size in (("GB", 2**30), ("MB", 2**20), ("KB", 2**10)):
        if num_bytes >= size:
            return f"{num_bytes / size:.3g} {unit}"
    return f"{num_bytes} bytes"


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
        from uegan_tf.inference.stylizer import DEFAULT_MAX_MEMORY
        from uegan_tf.inference.stylizer import Stylizer

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
        from uegan_tf.inference.stylizer import ModelLoadError

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
        from uegan_tf.inference.video import VideoError
        from uegan_tf.inference.video import probe
        from uegan_tf.inference.video import stylize_video

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
