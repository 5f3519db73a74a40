"""The layer gallery, on the Layers & classes tab: one small dream of the uploaded image per
layer, or per channel of the layer chosen on the Dream tab; cells appear as they finish,
Stop ends it, and the same gallery asked again comes from the studio's work folder."""

from converters.errors import DreamzooError
from converters.numbers import Bounds
from dreamer.cli import gallery as gallery_command
from dreamer.plan import numbers

# Modules, not names: dreamer.studio.gallery imports dreamer.cli, which imports this tab.
from dreamer.studio import gallery
from dreamer.studio.context import Studio, message_of
from dreamer.studio.tabs import dream as dream_tab  # a module: see tabs/history.py

PER_LAYER, PER_CHANNEL = "one per layer", "one per channel of the Dream tab's layer"
# The page's starting values: the gallery command's short dreams, on small cells.
DEFAULTS = {"count": 8, "channels": "0-7", "iterations": gallery_command.ITERATIONS,
            "rate": gallery_command.RATE, "octaves": 2, "size": 128, "seed": 0}


def settings_of(kind, layer, channels, count, iterations, rate, octaves, size, seed
                ) -> "gallery.GallerySettings":
    """The page's values, refused with a message when one is missing."""
    per_channel = kind == PER_CHANNEL
    values = {"cells": kind, "iterations": iterations, "rate": rate, "octaves": octaves,
              "cell size": size, "seed": seed,
              **({"layer": layer, "channels": channels} if per_channel else {"layers": count})}
    missing = [name for name, value in values.items() if value in (None, "")]
    if missing:
        raise ValueError(f"choose or type a value for {missing[0]}")
    # Only what the cells depend on, so that the cache finds the same gallery.
    return gallery.GallerySettings(layer if per_channel else None,
                                   channels if per_channel else "",
                                   0 if per_channel else int(count), int(iterations),
                                   float(rate), int(octaves), int(size), int(seed))


def add(studio: Studio, dream: "dream_tab.DreamTab") -> None:
    gr = studio.gr

    def show(upload, model, layer, kind, channels, count, iterations, rate, octaves, size,
             seed, request: gr.Request):
        """Stream the gallery: (cells, sheet, status) as each cell finishes."""
        skip = gr.skip()
        try:
            upload = studio.checked_upload(upload)
            if not model:
                raise ValueError("choose a model on the Dream tab")
            settings = settings_of(kind, layer, channels, count, iterations, rate, octaves,
                                   size, seed)
        except (DreamzooError, ValueError) as e:
            yield skip, skip, message_of(e)
            return
        key = f"{request.session_hash} gallery"  # not the Dream tab's Stop
        with studio.stop_flag(key) as stop:
            shown: list[tuple[str, str]] = []
            yield [], None, "dreaming the gallery…"
            try:
                for event in gallery.gallery_events(studio.cache, model, upload, settings,
                                                    studio.folder, stop):
                    if event[0] == "cached":
                        cells = [(str(png), label) for label, png in event[1]]
                        yield cells, str(event[2]), f"{len(cells)} cells, from the cache"
                    elif event[0] == "cell":
                        shown.append((str(event[2]), event[1]))
                        yield shown, skip, f"cell {len(shown)} of {event[3]}: {event[1]}"
                    elif event[0] == "done":
                        yield skip, str(event[1]), f"done: {len(shown)} cells"
                    else:
                        yield skip, skip, message_of(event[1])
            except (DreamzooError, ValueError) as e:  # the model could not be opened
                yield skip, skip, message_of(e)

    def halt(request: gr.Request) -> None:
        studio.halt(f"{request.session_hash} gallery")

    def number(label: str, name: str, bounds: Bounds):
        return gr.Number(DEFAULTS[name], label=label, minimum=bounds.low, maximum=bounds.high,
                         precision=0 if bounds.integer else None, elem_id=f"gallery-{name}")

    gr.Markdown("### Layer gallery\nOne small dream of the uploaded image per layer (or per "
                "channel of a layer), to see what each does before choosing; the same "
                "gallery asked again is shown from the studio's cache.")
    with gr.Row():
        kind = gr.Radio([PER_LAYER, PER_CHANNEL], value=PER_LAYER, label="cells",
                        elem_id="gallery-kind")
        count = number("layers (spread through the net)", "count",
                       Bounds(1, gallery.MAX_CELLS, integer=True))
        channels = gr.Textbox(DEFAULTS["channels"], label="channels (0-3,7)",
                              elem_id="gallery-channels")
    with gr.Row():
        iterations = number("iterations per octave", "iterations", numbers.ITERATIONS)
        rate = number("rate", "rate", numbers.RATE)
        octaves = number("octaves", "octaves", numbers.OCTAVES)
        size = number("cell size (longer side)", "size", numbers.CELL_SIZE)
        seed = number("seed", "seed", numbers.SEED)
    with gr.Row():
        start = gr.Button("Dream the gallery", variant="primary", elem_id="gallery-start")
        stop = gr.Button("Stop", variant="stop", elem_id="gallery-stop")
    status = gr.Markdown(elem_id="gallery-status")
    cells = gr.Gallery(label="gallery", columns=4, object_fit="contain", elem_id="gallery")
    sheet = gr.File(label="the labelled sheet (PNG)", interactive=False,
                    elem_id="gallery-sheet")
    start.click(show, [dream.upload, dream.model, dream.layer, kind, channels, count,
                       iterations, rate, octaves, size, seed], [cells, sheet, status],
                trigger_mode="always_last")
    stop.click(halt, None, None)
