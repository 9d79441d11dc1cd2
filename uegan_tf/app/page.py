"""The web app's page: the Gradio layout around `StylizeService`.

Only this module imports Gradio; the request logic is in `service.py`.
"""

import os

from uegan_tf.app.service import AppConfig
from uegan_tf.app.service import InputError
from uegan_tf.app.service import StylizeService
from uegan_tf.app.service import format_size
from uegan_tf.app.service import registry_styles
from uegan_tf.image_io import EXAMPLES_DIR


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
