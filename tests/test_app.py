"""The web app: options, the request service, the server and a browser.

One app server and one stylizer cache (a random-weights generator of
width 4, small limits) are shared by the module: the tests check plumbing,
not the reference network (width 32). The options and the command are
tested in-process; one real `python -m uegan_tf.app` process checks that
Ctrl-C stops the server and deletes its files.

The browser test drives Debian's headless Chromium with Playwright
(no browser download) and leaves `test-artifacts/app_e2e.png`; it skips
with the reason when Chromium or Playwright is missing.
"""

import concurrent.futures
import os
import pathlib
import socket
import subprocess
import sys
import time
import urllib.request

import numpy as np
import pytest
from conftest import REPO
from PIL import Image

from uegan_tf import app
from uegan_tf.app import command as app_command

gradio = pytest.importorskip(
    "gradio", reason="the [app] extra is not installed"
)
from gradio_client import Client  # noqa: E402
from gradio_client import handle_file  # noqa: E402
from gradio_client.exceptions import AppError  # noqa: E402

CHROMIUM = pathlib.Path("/usr/bin/chromium")
# Without the background-networking switches Chromium tries to reach
# Google services, which a closed network refuses slowly.
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
MAX_FILE_SIZE = 256 * 1024  # small, so the oversized upload is cheap
MAX_VIDEO_SECONDS = 2.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def generator_path(tmp_path_factory):
    """A tiny random-weights U-Net generator (width 4) saved as .keras."""
    import keras

    from uegan_tf.models import build_generator

    keras.utils.set_random_seed(0)
    path = tmp_path_factory.mktemp("model") / "g.keras"
    build_generator(unet=True, width=4).save(path)
    return path


@pytest.fixture(scope="module")
def stylizers():
    """The module's one stylizer cache: the generator is loaded once."""
    return app.StylizerCache()


@pytest.fixture
def make_service(generator_path, stylizers):
    """`StylizeService` of the "random" style using the shared cache."""

    def make(work_dir, config=None):
        service = app.StylizeService(
            {"random": str(generator_path)}, config, work_dir=work_dir
        )
        service.cache = stylizers
        return service

    return make


@pytest.fixture(scope="module")
def server(generator_path, stylizers, tmp_path_factory):
    """The app on a free loopback port: `(url, demo, config)`."""
    config = app.AppConfig(
        port=free_port(),
        max_file_size=MAX_FILE_SIZE,
        max_video_seconds=MAX_VIDEO_SECONDS,
        concurrency=2,
        queue_size=16,
    )
    demo = app.build_app(
        {"random": str(generator_path)},
        config,
        work_dir=tmp_path_factory.mktemp("app_out"),
    )
    demo.uegan_service.cache = stylizers
    _, url, _ = app.launch(demo, config, prevent_thread_lock=True, quiet=True)
    yield url, demo, config
    demo.close()


@pytest.fixture
def client(server, tmp_path):
    return Client(
        server[0],
        verbose=False,
        download_files=str(tmp_path),
        analytics_enabled=False,
    )


def photo(tmp_path, size=(96, 64), name="chelsea.png"):
    """A real photo (skimage.data's cat) resized to `size` (w, h)."""
    from skimage import data

    path = tmp_path / name
    Image.fromarray(data.chelsea()).resize(size, Image.BICUBIC).save(path)
    return path


def read(path):
    return np.asarray(Image.open(path).convert("RGB"))


def write_video(path, frames, fps, size=(64, 48), index_first=False):
    """A small moving-gradient MP4 (`index_first`: moov before the data)."""
    import imageio_ffmpeg

    w, h = size
    writer = imageio_ffmpeg.write_frames(
        str(path),
        size,
        fps=fps,
        macro_block_size=2,
        ffmpeg_log_level="error",
        output_params=["-movflags", "+faststart"] if index_first else None,
    )
    writer.send(None)
    ramp = np.linspace(0, 255, w, dtype=np.float32)
    for i in range(frames):
        frame = np.empty((h, w, 3), np.uint8)
        frame[...] = ((ramp + 20 * i) % 256)[None, :, None]
        writer.send(frame)
    writer.close()
    return path


# -- options -----------------------------------------------------------------


def test_parse_size():
    assert app.parse_size("25mb") == 25 * 2**20
    assert app.parse_size("512KB") == 512 * 1024
    assert app.parse_size("1000") == 1000
    with pytest.raises(ValueError, match="not a size"):
        app.parse_size("lots")


def test_parse_model_specs():
    styles = app.parse_model_specs(
        [
            "runs/a/generator.keras,hayao=x/h.keras",
            "anime",
            "b/h.keras",
        ]
    )
    assert styles == {
        "a": "runs/a/generator.keras",
        "hayao": "x/h.keras",
        "anime": "anime",
        "h": "b/h.keras",
    }
    assert list(app.parse_model_specs(["a.keras", "x/a.keras"])) == ["a", "a-2"]


def test_parse_args_defaults_to_loopback():
    config, styles = app.parse_args(["uegan app"])
    assert config.host == "127.0.0.1" and styles is None
    assert config == app.AppConfig()
    config, styles = app.parse_args(
        ["uegan app", "--model=m=g.keras", "--max_file_size=1mb", "--port=8000"]
    )
    assert styles == {"m": "g.keras"}
    assert (config.max_file_size, config.port) == (2**20, 8000)


def test_parse_args_every_flag(tmp_path):
    flagfile = tmp_path / "app.flags"
    flagfile.write_text("--model=x/b.keras\n--queue_size=3\n")
    config, styles = app.parse_args(
        [
            "uegan app",
            "--host=0.0.0.0",
            "--model=a=x/a.keras,c",
            f"--flagfile={flagfile}",
            "--max_video_seconds=5",
            "--max_user_disk=1gb",
            "--max_megapixels=2.5",
            "--max_side=0",
            "--concurrency=3",
            "--cache_size=1",
            "--max_memory=3G",
            "--precision=bf16",
            "--verbose",
        ]
    )
    assert styles == {"a": "x/a.keras", "c": "c", "b": "x/b.keras"}
    assert config == app.AppConfig(
        host="0.0.0.0",
        models=("a=x/a.keras,c", "x/b.keras"),
        max_video_seconds=5.0,
        max_user_bytes=2**30,
        max_megapixels=2.5,
        max_side=0,
        concurrency=3,
        queue_size=3,
        cache_size=1,
        max_memory=3_000_000_000,
        precision="bf16",
        verbose=True,
    )
    assert config.max_pixels == 2_500_000


@pytest.mark.parametrize(
    "args, message",
    [
        (["--port=70000"], "--port must be in 0..65535, got 70000"),
        (["--port=http"], "flag --port=http: invalid literal"),
        (["--max_file_size=huge"], "--max_file_size: not a size: 'huge'"),
        (["--max_memory=lots"], "flag --max_memory=lots: not a memory size"),
        (["--max_user_disk=1kb"], "--max_user_disk must be >= --max_file_size"),
        (["--concurrency=0"], "--concurrency must be >= 1"),
        (["--max_video_seconds=0"], "--max_video_seconds must be positive"),
        (["--max_side=10"], "--max_side must be 0 or >= 64, got 10"),
        (["--precision=int8"], "value should be one of <fp32|bf16>"),
        (["--bogus=1"], "Unknown command line flag 'bogus'"),
        (["photo.jpg"], "unexpected arguments: photo.jpg"),
    ],
)
def test_cli_usage_errors(args, message, capsys):
    assert app.cli(["uegan app", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert err.count("\n") == 1  # one line


def test_cli_help_lists_every_flag(capsys):
    assert app.cli(["uegan app", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("usage:\n  uegan app [--host")
    for flag in (
        "host port model max_file_size max_video_seconds max_user_disk "
        "max_megapixels max_side concurrency queue_size cache_size "
        "max_memory precision"
    ).split():
        assert f"--{flag}:" in out
    assert "(default: '1.5G')" in out and "(default: '25mb')" in out
    with pytest.raises(SystemExit) as e:
        app.parse_args(["uegan app", "-h"])
    assert e.value.code == 0


def test_uegan_app_dispatches_here(capsys):
    from uegan_tf import cli

    assert cli.main(["uegan", "app", "--help"]) == 0
    assert "\n  uegan app [--host" in capsys.readouterr().out
    assert cli.main(["uegan", "app", "--max_side=1"]) == 2
    assert "--max_side must be 0 or >= 64" in capsys.readouterr().err


def test_module_help():
    proc = subprocess.run(
        [sys.executable, "-m", "uegan_tf.app", "--help"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0
    assert "--model" in proc.stdout and "--max_video_seconds" in proc.stdout


# -- the service, without a server ----------------------------------------


def test_missing_model_path_is_a_usage_error_at_start(tmp_path, capsys):
    code = app.cli(["uegan app", f"--model=mine={tmp_path / 'nope'}"])
    assert code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "nope" in err[0]


def test_no_models_gives_a_message(tmp_path):
    service = app.StylizeService({}, work_dir=tmp_path)
    with pytest.raises(app.InputError, match="No style is available"):
        service.stylize_image(str(photo(tmp_path)), None)
    demo = app.build_app({}, work_dir=tmp_path)  # builds, does not raise
    assert "No style is available" in str(demo.config)


def test_unknown_style_is_refused(tmp_path, generator_path, make_service):
    service = make_service(tmp_path)
    # Only menu names: an API client cannot make the server load a path.
    with pytest.raises(app.InputError, match="unknown style"):
        service.stylize_image(str(photo(tmp_path)), str(generator_path))


def test_huge_image_is_refused_before_decoding(tmp_path, make_service):
    service = make_service(tmp_path / "out", app.AppConfig(max_megapixels=1))
    # 2000x1000 of one colour: a few KB on disk, 6 MB once decoded.
    path = tmp_path / "flat.png"
    Image.new("RGB", (2000, 1000), (40, 90, 200)).save(path)
    assert path.stat().st_size < 50_000
    with pytest.raises(
        app.InputError,
        match=r"flat.png: image too large "
        r"\(2000x1000; the limit is 1 megapixels\)",
    ):
        service.stylize_image(str(path), "random")


def test_one_users_disk_share_is_capped(tmp_path, make_service):
    src = photo(tmp_path, size=(96, 64))
    upload = src.stat().st_size
    probe = make_service(tmp_path / "probe")
    probe.stylize_image(str(src), "random", user="alice")
    per_request = probe.disk_used("alice")  # upload + its results
    assert per_request > upload
    # Room for two and a half requests per user.
    cap = int(per_request * 2.5)
    service = make_service(
        tmp_path / "out",
        app.AppConfig(max_file_size=upload, max_user_bytes=cap),
    )
    results = []
    for _ in range(4):
        (_, styled), _, _ = service.stylize_image(
            str(src), "random", user="alice"
        )
        results.append(pathlib.Path(styled))
        assert service.disk_used("alice") <= cap
    # The oldest results made room; the two newest are kept.
    assert [p.exists() for p in results] == [False, False, True, True]
    # Another user's share is their own.
    (_, bob), _, _ = service.stylize_image(str(src), "random", user="bob")
    assert pathlib.Path(bob).exists() and results[-1].exists()
    # An upload that alone exceeds the share is refused, nothing written.
    small = make_service(
        tmp_path / "small",
        app.AppConfig(max_file_size=upload // 2, max_user_bytes=upload // 2),
    )
    with pytest.raises(app.InputError, match="does not fit the .* of disk"):
        small.stylize_image(str(src), "random", user="carol")
    assert not list((tmp_path / "small").iterdir())


def test_private_temp_root_holds_gradio_files_and_is_removed(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "mine"))
    root = app.private_temp_root()
    # Inside the user's GRADIO_TEMP_DIR, which stays.
    assert root.parent == tmp_path / "mine"
    import gradio.utils

    assert gradio.utils.get_upload_folder() == str(root / "gradio")
    (root / "gradio" / "abc").mkdir(parents=True)
    (root / "gradio" / "abc" / "upload.png").write_bytes(b"x" * 10)
    assert app.remove_temp_root(root)
    assert not root.exists() and (tmp_path / "mine").is_dir()
    with pytest.raises(KeyboardInterrupt):
        # SIGTERM ends the server like Ctrl-C.
        app_command._interrupt(15, None)


def test_upload_quota_per_client_address():
    import asyncio

    async def gradio_upload(scope, receive, send):
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return  # the client went away: nothing stored
            size += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"%d" % size})

    quota = app.UploadQuota(gradio_upload, max_bytes=100, window=3600)

    def post(client, *chunks, path="/gradio_api/upload"):
        messages = [
            {
                "type": "http.request",
                "body": c,
                "more_body": i < len(chunks) - 1,
            }
            for i, c in enumerate(chunks)
        ]
        sent = []

        async def receive():
            return messages.pop(0)

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": path}
        scope["client"] = (client, 5000)
        asyncio.run(quota(scope, receive, send))
        return sent[0]["status"], sent[1]["body"].decode()

    assert post("10.0.0.1", b"x" * 40) == (200, "40")
    assert post("10.0.0.1", b"x" * 40) == (200, "40")
    # The third upload crosses 100 bytes while streaming: cut off, 413.
    status, text = post("10.0.0.1", b"x" * 15, b"x" * 15)
    assert status == 413 and "100 bytes per 60 min" in text
    assert quota.used("10.0.0.1") == 80  # the refused bytes are not kept
    assert post("10.0.0.1", b"x" * 20) == (200, "20")
    assert post("10.0.0.1", b"x")[0] == 413  # full
    # Another address has its own quota; other routes are not counted.
    assert post("10.0.0.2", b"x" * 90) == (200, "90")
    assert post("10.0.0.1", b"x", path="/gradio_api/queue/join") == (200, "1")


def test_launch_installs_the_upload_quota(server):
    _, demo, config = server
    (quota,) = [
        m for m in demo.server_app.user_middleware if m.cls is app.UploadQuota
    ]
    assert quota.kwargs == {
        "max_bytes": config.max_user_bytes,
        "window": config.keep_outputs_seconds,
    }


def test_cache_shares_weights_and_is_bounded(generator_path):
    cache = app.StylizerCache(size=2)
    plain = cache.get(generator_path)
    assert cache.get(generator_path) is plain
    tiled = cache.get(generator_path, tile=512, brightness=True)
    assert tiled is not plain and tiled.generator is plain.generator
    assert (tiled.tile, tiled.brightness) == (512, True)
    assert (plain.tile, plain.brightness) == (None, False)
    cache.get(generator_path, tile=512)
    assert len(cache._items) == 2


def test_video_without_duration_is_cut_at_the_limit(
    tmp_path, make_service, monkeypatch
):
    from uegan_tf.inference import video

    # Browser recordings often have no duration; frames are counted.
    real_probe = video.probe
    monkeypatch.setattr(
        video, "probe", lambda p: {**real_probe(p), "duration": None}
    )
    service = make_service(
        tmp_path / "out", app.AppConfig(max_video_seconds=0.5, video_batch=2)
    )
    clip = write_video(tmp_path / "clip.mp4", frames=8, fps=4)
    with pytest.raises(app.InputError, match="video too long"):
        service.stylize_video(str(clip), "random")
    assert not list((tmp_path / "out").rglob("*.mp4"))


def test_video_without_frames_is_one_line_for_the_user(tmp_path, make_service):
    service = make_service(tmp_path / "out")
    clip = write_video(tmp_path / "clip.mp4", frames=8, fps=4, index_first=True)
    # Keep the header (a video stream) and drop every frame: ffmpeg's 40
    # lines of banner and build configuration must not reach the browser.
    data = clip.read_bytes()
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(data[: data.find(b"mdat") + 4])
    with pytest.raises(app.InputError) as e:
        service.stylize_video(
            {"path": str(empty), "orig_name": "holiday.mp4"}, "random"
        )
    message = str(e.value)
    assert "\n" not in message and "configuration" not in message
    assert message.startswith("holiday.mp4: cannot decode the video ("), message
    assert message.endswith(": partial file)")
    assert str(tmp_path) not in message  # the server's paths stay private
    assert not list((tmp_path / "out").rglob("*.mp4"))


# -- the server, through the Gradio client API -----------------------------


def test_image_api(client, tmp_path):
    src = photo(tmp_path, size=(96, 64))
    (original, result), download, message = client.predict(
        handle_file(src),
        "random",
        False,
        True,
        True,
        api_name="/stylize_image",
    )
    rgb = read(src)
    out = read(result)
    assert out.shape == rgb.shape
    assert np.abs(out.astype(int) - rgb).mean() > 5
    assert read(original).shape == rgb.shape
    assert read(download).shape == (64, 192, 3)  # side by side
    assert "96x64" in message and "'random'" in message


def test_non_image_upload_gets_the_message(client, tmp_path):
    fake = tmp_path / "notes.png"
    fake.write_text("this is not a picture\n")
    with pytest.raises(AppError) as e:
        client.predict(
            handle_file(fake),
            "random",
            False,
            False,
            False,
            api_name="/stylize_image",
        )
    message = str(e.value).strip()
    assert message == "notes.png: not an image (unrecognised format)"


def test_oversized_upload_is_refused(server, tmp_path):
    import httpx

    big = tmp_path / "big.jpg"
    big.write_bytes(os.urandom(MAX_FILE_SIZE + 1024))
    with big.open("rb") as f:
        response = httpx.post(
            f"{server[0]}gradio_api/upload",
            files={"files": ("big.jpg", f)},
            timeout=30,
        )
    assert response.status_code == 413
    assert "maximum allowed size" in response.text


def test_eight_concurrent_requests(client, tmp_path):
    sources = [
        photo(tmp_path, size=(64 + 8 * i, 64), name=f"p{i}.png")
        for i in range(8)
    ]
    jobs = [
        client.submit(
            handle_file(p),
            "random",
            i % 2 == 0,
            i % 3 == 0,
            False,
            api_name="/stylize_image",
        )
        for i, p in enumerate(sources)
    ]
    done, _ = concurrent.futures.wait(jobs, timeout=150)
    assert len(done) == 8
    for job, src in zip(jobs, sources):
        (_, result), _, message = job.result()
        assert read(result).shape == read(src).shape, message


def test_video_api(client, tmp_path):
    from uegan_tf.inference.video import probe

    clip = write_video(tmp_path / "clip.mp4", frames=6, fps=6)
    result, message = client.predict(
        handle_file(clip),
        "random",
        False,
        False,
        True,
        0.5,
        api_name="/stylize_video",
    )
    info = probe(result["video"] if isinstance(result, dict) else result)
    assert (info["width"], info["height"]) == (128, 48)  # side by side
    assert message.startswith("clip.mp4: 6 frames")


def test_long_or_non_video_is_refused(client, tmp_path):
    clip = write_video(tmp_path / "long.mp4", frames=12, fps=4)  # 3 s
    with pytest.raises(
        AppError,
        match=r"long.mp4: video too long \(3.0 s; "
        r"the limit is 2 s\)",
    ):
        client.predict(
            handle_file(clip),
            "random",
            False,
            False,
            False,
            0.0,
            api_name="/stylize_video",
        )
    fake = tmp_path / "movie.mp4"
    fake.write_text("not a movie")
    with pytest.raises(AppError, match="movie.mp4: not a readable video"):
        client.predict(
            handle_file(fake),
            "random",
            False,
            False,
            False,
            0.0,
            api_name="/stylize_video",
        )


def test_command_in_process_stops_on_sigterm(
    generator_path, tmp_path, monkeypatch, capsys
):
    """`cli` end to end but `launch`: SIGTERM ends it like Ctrl-C, and the
    server's folder is deleted (the real server: the test below)."""
    import signal

    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "parent"))
    seen = {}

    def serve(demo, config):
        seen["handler"] = signal.getsignal(signal.SIGTERM)
        seen["root"] = pathlib.Path(os.environ["GRADIO_TEMP_DIR"]).parent
        seen["config"] = config
        assert seen["root"].is_dir()
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(10)  # the handler raises KeyboardInterrupt first
        raise AssertionError("SIGTERM did not stop the server")

    monkeypatch.setattr(app_command, "launch", serve)
    before = signal.getsignal(signal.SIGTERM)
    code = app.cli(
        ["uegan app", "--port=0", f"--model=random={generator_path}"]
    )
    assert code == 0
    assert seen["handler"] is app_command._interrupt
    assert signal.getsignal(signal.SIGTERM) is before  # restored
    assert seen["config"].port == 0
    assert seen["root"].parent == tmp_path / "parent"
    assert not seen["root"].exists()  # uploads and results deleted
    assert f"styles: random ({generator_path})" in capsys.readouterr().out


@pytest.mark.parametrize(
    "stop",
    [
        "SIGINT",
        # In-process above; the real process again with --run-slow.
        pytest.param("SIGTERM", marks=pytest.mark.slow),
    ],
)
def test_command_serves_and_stops_on_ctrl_c(generator_path, tmp_path, stop):
    import signal

    import httpx

    port = free_port()
    env = {
        **os.environ,
        "UEGAN_HOME": str(tmp_path / "home"),
        "TMPDIR": str(tmp_path),
    }
    env.pop("GRADIO_TEMP_DIR", None)
    (tmp_path / "in").mkdir()
    src = photo(tmp_path / "in", size=(48, 32))
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "uegan_tf.app",
            f"--port={port}",
            f"--model=random={generator_path}",
        ],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stdout.read()
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/", timeout=5)
                break
            except httpx.TransportError:
                assert time.monotonic() < deadline, "the app did not start"
                time.sleep(0.5)
        assert page.status_code == 200
        # One request: its upload and result land in the server's folders.
        client = Client(
            f"http://127.0.0.1:{port}/",
            verbose=False,
            download_files=str(tmp_path / "downloads"),
            analytics_enabled=False,
        )
        client.predict(
            handle_file(src),
            "random",
            False,
            False,
            False,
            api_name="/stylize_image",
        )
        (root,) = tmp_path.glob("uegan_app_*")
        kept = [p.name for p in root.rglob("*") if p.is_file()]
        assert "chelsea.png" in kept and "chelsea_random.png" in kept
        assert not (tmp_path / "gradio").exists()  # not the shared cache
        proc.send_signal(getattr(signal, stop))
        output, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, output
    assert f"styles: random ({generator_path})" in output
    # No TensorFlow start-up lines (issue 17).
    assert "cuInit" not in output and "oneDNN" not in output, output
    # Uploads, results and Gradio's copies are all gone.
    assert not list(tmp_path.glob("uegan_app_*"))
    assert not (tmp_path / "gradio").exists()


# -- the page in a real browser ----------------------------------------------


def toasts(page):
    return [
        t.inner_text()
        for t in page.query_selector_all("[data-testid=toast-body]")
    ]


def test_browser_end_to_end(server, tmp_path, artifacts_dir):
    if not CHROMIUM.exists():
        pytest.skip(
            f"{CHROMIUM} is not installed (apt-get install "
            "chromium); .ci/run installs it"
        )
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright is not installed"
    )
    url = server[0]
    src = photo(tmp_path, size=(150, 100))
    fake = tmp_path / "notes.png"
    fake.write_text("this is not a picture\n")
    big = tmp_path / "big.png"
    big.write_bytes(os.urandom(MAX_FILE_SIZE + 1024))
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS
        )
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 1000})
            requests = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(url, wait_until="domcontentloaded")
            upload = "#photo input[type=file]"
            page.wait_for_selector(upload, state="attached", timeout=60_000)

            # An example photo loads with one click.
            page.get_by_text("Example photos").scroll_into_view_if_needed()
            page.locator("img[src*='chelsea.jpg']").first.click()
            page.wait_for_selector(
                "#photo img[src*='chelsea.jpg']", timeout=30_000
            )

            # A real photo: convert, wait for the download link.
            page.set_input_files(upload, str(src))
            page.click("#convert-image")
            link = page.wait_for_selector(
                "#download-image a[href]", timeout=120_000
            )
            page.wait_for_selector("#compare img", timeout=30_000)
            page.screenshot(
                path=str(artifacts_dir / "app_e2e.png"), full_page=True
            )
            with urllib.request.urlopen(
                link.get_attribute("href"), timeout=30
            ) as response:
                result = np.asarray(Image.open(response).convert("RGB"))
            rgb = read(src)
            assert result.shape == rgb.shape
            assert np.abs(result.astype(int) - rgb).mean() > 5
            assert "150x100" in page.inner_text("#image-status")

            # A text file named .png: the reason, as a message.
            page.set_input_files(upload, str(fake))
            page.click("#convert-image")
            page.wait_for_function(
                "() => document.body.innerText.includes('not an image')",
                timeout=60_000,
            )
            assert any(
                "notes.png: not an image (unrecognised format)" in t
                for t in toasts(page)
            )

            # An upload over the limit never leaves the browser.
            page.reload(wait_until="domcontentloaded")
            page.wait_for_selector(upload, state="attached", timeout=60_000)
            page.set_input_files(upload, str(big))
            page.wait_for_function(
                "() => document.body.innerText.includes('maximum allowed')",
                timeout=30_000,
            )
            assert any("big.png" in t for t in toasts(page))
        finally:
            browser.close()
    # Everything came from the app itself: no fonts or scripts from the web.
    assert all(
        u.startswith(url) or u.startswith(("data:", "blob:")) for u in requests
    ), [u for u in requests if not u.startswith(url)][:5]
