"""The studio's web page (Gradio Blocks): the still dreamer, with each octave's result
shown as it finishes, a Stop button, the PNG to download and the equivalent command.

Gradio is optional (`dreamzoo[studio]`): imported here inside functions only. No
`from __future__ import annotations`: Gradio reads the `gr.Request` hints at run time."""

import shutil
import sys
import tempfile
import threading
import traceback
from pathlib import Path

from converters.errors import DreamzooError, UsageError
from converters.numbers import Bounds
from dreamer.plan import numbers
from dreamer.studio import dreaming  # a module: it imports dreamer.cli, which imports us
from dreamer.studio.cache import ModelCache, default_layer, layer_choices

# The page's starting values: the still dreamer's defaults.
DEFAULTS = {"iterations": 10, "rate": 0.01, "octaves": 4, "seed": 0}
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


def build(cache: ModelCache, folder: Path, models_folder: Path | None):
    """The still page: dreams on `cache`'s models, PNGs written in `folder`;
    `models_folder`: the folder the studio was started with (shown in the command)."""
    gr = import_gradio()
    stops: dict[str, threading.Event] = {}
    names = cache.names()

    def layers_of(model: str | None):
        if not model:
            return gr.update(choices=[], value=None)
        try:
            network = cache.get(model).network
        except (DreamzooError, ValueError) as e:
            gr.Warning(str(e))
            return gr.update(choices=[], value=None)
        return gr.update(choices=layer_choices(network), value=default_layer(network))

    def dream(upload, model, layer, iterations, rate, octaves, seed, request: gr.Request):
        skip = gr.skip()
        try:
            if not upload:
                raise ValueError("upload an image first")
            settings = settings_of(model, layer, iterations, rate, octaves, seed)
        except ValueError as e:
            gr.Warning(str(e))
            yield skip, None, skip, f"error: {e}"
            return
        upload = Path(upload)
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
        page.load(layers_of, model, layer)
        model.change(layers_of, model, layer)
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
        page = build(ModelCache(root), folder, models_folder)
        page.queue(default_concurrency_limit=1)
        page.launch(server_name=host, server_port=port, show_error=False)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
