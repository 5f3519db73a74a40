"""The Dream tab: upload, model, layer and numbers; each octave's result as it finishes,
Stop, the PNG to download and the same dream's command."""

import threading
from dataclasses import dataclass
from typing import Any

from converters.errors import DreamzooError
from converters.numbers import Bounds
from dreamer.plan import numbers

# Modules, not names: dreaming imports dreamer.cli, which imports this tab.
from dreamer.studio import dreaming, explore
from dreamer.studio.cache import default_layer, layer_choices
from dreamer.studio.context import Stopped, Studio, message_of

# The page's starting values: the still dreamer's defaults.
DEFAULTS = {"iterations": 10, "rate": 0.01, "octaves": 4, "seed": 0}
NO_MODELS = ("no converted models yet: convert one (`make convert MODEL=googlenet`) and "
             "start the studio again")


@dataclass(frozen=True)
class DreamTab:
    """The components other tabs read: the uploaded image and the chosen model."""

    upload: Any
    model: Any
    layer: Any


def settings_of(model, layer, iterations, rate, octaves, seed) -> "dreaming.Settings":
    """The page's values, refused with a message when one is missing."""
    values = {"model": model, "layer": layer, "iterations": iterations, "rate": rate,
              "octaves": octaves, "seed": seed}
    missing = [name for name, value in values.items() if value in (None, "")]
    if missing:
        raise ValueError(f"choose or type a value for {missing[0]}")
    return dreaming.Settings(model, layer, int(iterations), float(rate), int(octaves), int(seed))


def add(studio: Studio) -> DreamTab:
    gr, cache = studio.gr, studio.cache
    names = cache.names()

    def dream(upload, model, layer, iterations, rate, octaves, seed, request: gr.Request):
        skip = gr.skip()
        try:
            upload = studio.checked_upload(upload)
            settings = settings_of(model, layer, iterations, rate, octaves, seed)
        except (DreamzooError, ValueError) as e:
            gr.Warning(str(e))
            yield skip, None, skip, f"error: {e}"
            return
        output = f"{upload.stem}_dream.png"
        command = dreaming.command_text(dreaming.command_line(upload.name, settings), output,
                                       studio.models_folder)
        stop = studio.stops[request.session_hash] = threading.Event()
        yield None, None, command, "dreaming…"
        try:
            for event in dreaming.dream_events(cache, upload, settings, studio.folder, stop):
                if event[0] == "octave":
                    yield event[2], skip, command, \
                        f"octave {event[1] + 1} of {settings.octaves} done"
                elif event[0] == "done":
                    yield skip, str(event[1]), command, f"done: {output}"
                else:
                    message = message_of(event[1])
                    if not isinstance(event[1], Stopped):
                        gr.Warning(message)
                    yield skip, None, command, message
        finally:
            if studio.stops.get(request.session_hash) is stop:
                del studio.stops[request.session_hash]

    def halt(request: gr.Request) -> None:
        stop = studio.stops.get(request.session_hash)
        if stop is not None:
            stop.set()

    def number(label: str, name: str, bounds: Bounds):
        """A number field within `bounds`, starting at the dreamer's default."""
        return gr.Number(DEFAULTS[name], label=label, minimum=bounds.low, maximum=bounds.high,
                         precision=0 if bounds.integer else None, elem_id=name)

    with gr.Row():
        with gr.Column():
            upload = gr.File(label="image (PNG, JPEG, ...)", file_types=["image"],
                             type="filepath", elem_id="upload")
            model = gr.Dropdown(names, value=names[0] if names else None, label="model",
                                elem_id="model")
            layer = gr.Dropdown([], label="layer  ·  type  ·  output  ·  smallest input",
                                filterable=True, elem_id="layer")
            with gr.Row():
                iterations = number("iterations per octave", "iterations", numbers.ITERATIONS)
                rate = number("rate", "rate", numbers.RATE)
                octaves = number("octaves", "octaves", numbers.OCTAVES)
                seed = number("seed", "seed", numbers.SEED)
            with gr.Row():
                start = gr.Button("Dream", variant="primary", elem_id="dream")
                stop = gr.Button("Stop", variant="stop", elem_id="stop")
        with gr.Column():
            preview = gr.Image(label="result", type="numpy", format="png", interactive=False,
                               elem_id="preview")
            status = gr.Markdown(None if names else NO_MODELS, elem_id="status")
            download = gr.File(label="PNG (with its settings)", interactive=False,
                               elem_id="download")
            command = gr.Textbox(label="the same dream on the command line", interactive=False,
                                 elem_id="command")
    start.click(dream, [upload, model, layer, iterations, rate, octaves, seed],
                [preview, download, command, status],
                trigger_mode="always_last")  # a click while one ends: run next
    # No `cancels=`: a cancelled event may never report its end to the page, which then
    # ignores the next Dream; the dream ends itself at its next step and says "stopped".
    stop.click(halt, None, None)
    return DreamTab(upload, model, layer)


def layers_of(studio: Studio, model: str | None):
    """The layer dropdown's update and the layer table of `model`."""
    gr = studio.gr
    empty = gr.update(choices=[], value=None), []
    if not model:
        return empty
    try:
        network = studio.cache.get(model).network
    except (DreamzooError, ValueError) as e:
        gr.Warning(str(e))
        return empty
    return (gr.update(choices=layer_choices(network), value=default_layer(network)),
            explore.layer_table(network))
