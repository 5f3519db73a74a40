"""The studio's web page (Gradio Blocks): the still dreamer, with each octave's result
shown as it finishes, a Stop button, the PNG to download and the equivalent command.

Gradio is optional (`dreamzoo[studio]`): imported here inside functions only. No
`from __future__ import annotations`: Gradio reads the `gr.Request` hints at run time."""

import os
import shutil
import sys
import tempfile
import threading
import traceback
from pathlib import Path

from converters.bounded import read_bounded
from converters.errors import DreamzooError, UsageError
from converters.images import ImageError
from converters.numbers import Bounds
from dreamer.plan import numbers
from dreamer.studio import dreaming, explore  # a module: it imports dreamer.cli, which imports us
from dreamer.studio.cache import ModelCache, default_layer, layer_choices

# The page's starting values: the still dreamer's defaults.
DEFAULTS = {"iterations": 10, "rate": 0.01, "octaves": 4, "seed": 0}
# Uploads over this many bytes are refused (pixels: load_rgb's own bound, as the CLI's);
# the environment variable below overrides it when the studio starts.
MAX_UPLOAD_BYTES = 50_000_000
MAX_UPLOAD_VARIABLE = "DREAMZOO_STUDIO_MAX_UPLOAD"
NO_MODELS = ("no converted models yet: convert one (`make convert MODEL=googlenet`) and "
             "start the studio again")


def import_gradio():
    """The gradio module, or a UsageError saying how to install it."""
    try:
        import gradio  # optional: gradio (dreamzoo[studio])
    except ImportError:
        raise UsageError("the studio needs Gradio: pip install 'dreamzoo[studio]' "
                         "(`make setup` installs it)") from None
    return gradio


def max_upload_bytes() -> int:
    """The upload bound: $DREAMZOO_STUDIO_MAX_UPLOAD bytes if set, else MAX_UPLOAD_BYTES."""
    text = os.environ.get(MAX_UPLOAD_VARIABLE, "")
    if not text:
        return MAX_UPLOAD_BYTES
    if not text.isdigit() or int(text) < 1:
        raise UsageError(f"{MAX_UPLOAD_VARIABLE}={text!r}: give a number of bytes, at least 1")
    return int(text)


def checked_upload(upload: str | None, max_bytes: int) -> Path:
    """The uploaded file, refused (as the CLI refuses an image file) over `max_bytes`."""
    if not upload:
        raise ValueError("upload an image first")
    read_bounded(upload, max_bytes, "image", ImageError)
    return Path(upload)


def settings_of(model, layer, iterations, rate, octaves, seed) -> "dreaming.Settings":
    """The page's values, refused with a message when one is missing."""
    values = {"model": model, "layer": layer, "iterations": iterations, "rate": rate,
              "octaves": octaves, "seed": seed}
    missing = [name for name, value in values.items() if value in (None, "")]
    if missing:
        raise ValueError(f"choose or type a value for {missing[0]}")
    return dreaming.Settings(model, layer, int(iterations), float(rate), int(octaves), int(seed))


def message_of(error: BaseException) -> str:
    """One line for the page: our errors' text; anything else by its type (its traceback
    goes to the server's log)."""
    if isinstance(error, dreaming.Stopped):
        return "stopped"
    if isinstance(error, (DreamzooError, ValueError)):
        return f"error: {error}"
    traceback.print_exception(error, file=sys.stderr)
    return f"error: the dream failed ({type(error).__name__}); see the studio's log"


def build(cache: ModelCache, folder: Path, models_folder: Path | None,
          max_upload: int = MAX_UPLOAD_BYTES):
    """The studio's page: dreams on `cache`'s models, PNGs written in `folder`;
    `models_folder`: the folder the studio was started with (shown in the command);
    uploads over `max_upload` bytes are refused."""
    gr = import_gradio()
    stops: dict[str, threading.Event] = {}
    names = cache.names()

    def layers_of(model: str | None):
        """The layer dropdown's choices and the layer table of `model`."""
        empty = gr.update(choices=[], value=None), []
        if not model:
            return empty
        try:
            network = cache.get(model).network
        except (DreamzooError, ValueError) as e:
            gr.Warning(str(e))
            return empty
        return (gr.update(choices=layer_choices(network), value=default_layer(network)),
                explore.layer_table(network))

    def classes_of(model: str | None, query: str | None):
        """The classes whose names hold `query`, and a line saying how many."""
        try:
            if not model:
                raise ValueError("choose a model on the Dream tab")
            rows = explore.class_table(cache, model, query or "")
        except (DreamzooError, ValueError) as e:
            return [], f"error: {e}"
        return rows, f"{len(rows)} classes"

    def classify(upload, model: str | None):
        """The uploaded image's top classes, and a line saying what was classified."""
        try:
            image = checked_upload(upload, max_upload)
            if not model:
                raise ValueError("choose a model on the Dream tab")
            rows = explore.top_table(cache, model, image)
        except Exception as e:  # shown in the page, never a traceback
            return [], message_of(e)
        return rows, f"top {len(rows)} classes of {image.name}"

    def dream(upload, model, layer, iterations, rate, octaves, seed, request: gr.Request):
        skip = gr.skip()
        try:
            upload = checked_upload(upload, max_upload)
            settings = settings_of(model, layer, iterations, rate, octaves, seed)
        except (DreamzooError, ValueError) as e:
            gr.Warning(str(e))
            yield skip, None, skip, f"error: {e}"
            return
        output = f"{upload.stem}_dream.png"
        command = dreaming.command_text(dreaming.command_line(upload.name, settings), output,
                                       models_folder)
        stop = stops[request.session_hash] = threading.Event()
        yield None, None, command, "dreaming…"
        try:
            for event in dreaming.dream_events(cache, upload, settings, folder, stop):
                if event[0] == "octave":
                    yield event[2], skip, command, \
                        f"octave {event[1] + 1} of {settings.octaves} done"
                elif event[0] == "done":
                    yield skip, str(event[1]), command, f"done: {output}"
                else:
                    message = message_of(event[1])
                    if not isinstance(event[1], dreaming.Stopped):
                        gr.Warning(message)
                    yield skip, None, command, message
        finally:
            if stops.get(request.session_hash) is stop:
                del stops[request.session_hash]

    def number(label: str, name: str, bounds: Bounds):
        """A number field within `bounds`, starting at the dreamer's default."""
        return gr.Number(DEFAULTS[name], label=label, minimum=bounds.low, maximum=bounds.high,
                         precision=0 if bounds.integer else None, elem_id=name)

    def halt(request: gr.Request) -> None:
        stop = stops.get(request.session_hash)
        if stop is not None:
            stop.set()

    with gr.Blocks(title="dreamzoo studio", analytics_enabled=False) as page:
        gr.Markdown("## dreamzoo studio: DeepDream on the classic Caffe and Torch7 nets")
        with gr.Tab("Dream"):
            with gr.Row():
                with gr.Column():
                    upload = gr.File(label="image (PNG, JPEG, ...)", file_types=["image"],
                                     type="filepath", elem_id="upload")
                    model = gr.Dropdown(names, value=names[0] if names else None, label="model",
                                        elem_id="model")
                    layer = gr.Dropdown([], label="layer  ·  type  ·  output  ·  smallest input",
                                        filterable=True, elem_id="layer")
                    with gr.Row():
                        iterations = number("iterations per octave", "iterations",
                                            numbers.ITERATIONS)
                        rate = number("rate", "rate", numbers.RATE)
                        octaves = number("octaves", "octaves", numbers.OCTAVES)
                        seed = number("seed", "seed", numbers.SEED)
                    with gr.Row():
                        start = gr.Button("Dream", variant="primary", elem_id="dream")
                        stop = gr.Button("Stop", variant="stop", elem_id="stop")
                with gr.Column():
                    preview = gr.Image(label="result", type="numpy", format="png",
                                       interactive=False, elem_id="preview")
                    status = gr.Markdown(None if names else NO_MODELS, elem_id="status")
                    download = gr.File(label="PNG (with its settings)", interactive=False,
                                       elem_id="download")
                    command = gr.Textbox(label="the same dream on the command line",
                                         interactive=False, elem_id="command")
        with gr.Tab("Layers & classes"):
            gr.Markdown("The model chosen on the Dream tab: its layers, its class names, "
                        "and the top classes of the uploaded image.")
            layer_table = gr.Dataframe(headers=explore.LAYER_HEADERS, interactive=False,
                                       label="layers", elem_id="layer-table")
            with gr.Row():
                query = gr.Textbox(label="search the class names", elem_id="class-query")
                search = gr.Button("Search", elem_id="class-search")
            class_status = gr.Markdown(elem_id="class-status")
            class_table = gr.Dataframe(headers=explore.CLASS_HEADERS, interactive=False,
                                       label="classes", elem_id="class-table")
            classify_button = gr.Button("Classify the uploaded image", elem_id="classify")
            top_status = gr.Markdown(elem_id="top-status")
            top_table = gr.Dataframe(headers=explore.TOP_HEADERS, interactive=False,
                                     label=f"top {explore.TOP} classes", elem_id="top-table")
        page.load(layers_of, model, [layer, layer_table])
        model.change(layers_of, model, [layer, layer_table])
        search.click(classes_of, [model, query], [class_table, class_status])
        query.submit(classes_of, [model, query], [class_table, class_status])
        classify_button.click(classify, [upload, model], [top_table, top_status])
        start.click(dream, [upload, model, layer, iterations, rate, octaves, seed],
                    [preview, download, command, status],
                    trigger_mode="always_last")  # a click while one ends: run next
        # No `cancels=`: a cancelled event may never report its end to the page, which then
        # ignores the next Dream; the dream ends itself at its next step and says "stopped".
        stop.click(halt, None, None)
    return page



def serve(root: Path, models_folder: Path | None, host: str, port: int) -> None:
    """Serve the studio on host:port until interrupted, its PNGs in a temporary folder of
    its own (removed when it stops)."""
    import_gradio()
    folder = Path(tempfile.mkdtemp(prefix="dreamzoo-studio-"))
    try:
        page = build(ModelCache(root), folder, models_folder, max_upload_bytes())
        page.queue(default_concurrency_limit=1)
        page.launch(server_name=host, server_port=port, show_error=False)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
