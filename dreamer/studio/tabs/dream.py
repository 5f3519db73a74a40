"""The Dream tab: upload (or the sample photo), model, layer or class, the numbers, preset,
objective and guide image; each octave's result as it finishes with a progress bar, Stop,
the PNG to download and the same dream's command."""

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from converters.errors import DreamzooError
from converters.numbers import Bounds
from dreamer.plan import numbers
from dreamer.plan.objectives import RULES
from dreamer.plan.presets import PRESET_NAMES, PRESETS

# Modules, not names: dreaming imports dreamer.cli, which imports this tab.
from dreamer.studio import dreaming, explore
from dreamer.studio.cache import default_layer, layer_choices
from dreamer.studio.context import Stopped, Studio, message_of
from models import sample

# The page's starting values: the still dreamer's defaults (an empty field leaves the
# option to the dreamer's default).
DEFAULTS = {"iterations": 10, "rate": 0.01, "octaves": 4, "seed": 0}
# The number fields (text: an empty one is no option), as the command line names them.
NUMBERS = {"iterations": ("ITERATIONS", numbers.ITERATIONS), "rate": ("RATE", numbers.RATE),
           "octaves": ("--octaves", numbers.OCTAVES),
           "octave_scale": ("--octave-scale", numbers.OCTAVE_SCALE),
           "jitter": ("--jitter", numbers.JITTER), "channel": ("--channel", numbers.CHANNEL),
           "max_side": ("--max-side", Bounds(1, integer=True))}
NO_MODELS = ("no converted models yet: convert one (`make convert MODEL=googlenet`) and "
             "start the studio again")
SAMPLE = "astronaut.png"  # scikit-image's photograph, as `make demo` dreams on
SAMPLE_NOTE = (f"{SAMPLE}: scikit-image's sample photo; `python -m models.sample {SAMPLE}` "
               "writes it (or download it above)")
NO_CLASS = ("none: dream the layer", "")
PROGRESS_SECONDS = 1.0  # the progress bar is redrawn at most this often
# The dream's inputs, in the order of the handlers' arguments and of a history entry.
FIELDS = ("upload", "guide", "model", "layer", "class_", "preset", "objective", "parameter",
          "iterations", "rate", "octaves", "octave_scale", "jitter", "channel", "seed",
          "max_side")


@dataclass(frozen=True)
class DreamTab:
    """The components other tabs read: the uploaded image and the chosen model; `fields`:
    the dream's inputs (`FIELDS`), `history`: this session's results (a list of entries
    {"png", "command", "values"}), `dreamt`: the Dream button's event."""

    upload: Any
    model: Any
    layer: Any
    fields: list
    history: Any
    dreamt: Any


def objective_of(name: str | None, parameter: str | None) -> str:
    """--objective's text: NAME, or NAME:VALUE when a parameter is given."""
    name = name or "l2"
    parameter = (parameter or "").strip()
    return f"{name}:{parameter}" if parameter else name


def number_of(name: str, text) -> int | float | None:
    """The number field `name`'s value, checked as the command line checks it (None:
    empty)."""
    text = "" if text is None else str(text).strip()
    option, bounds = NUMBERS[name]
    return bounds.parse(text, option) if text else None


def check_names(upload: Path, guide: Path | None) -> None:
    """Refuse two different images of one name: the command names both by their names."""
    if guide is not None and guide.name == upload.name \
            and guide.read_bytes() != upload.read_bytes():
        raise ValueError(f"the image and the guide image are two files named {upload.name}: "
                         "rename one, so that the command can name both")


def settings_of(model, layer, iterations, rate, octaves, seed) -> "dreaming.Settings":
    """The model, layer and numbers, refused with a message when one is missing (the
    Zoom & video tab's settings)."""
    values = {"model": model, "layer": layer, "iterations": iterations, "rate": rate,
              "octaves": octaves, "seed": seed}
    missing = [name for name, value in values.items() if value in (None, "")]
    if missing:
        raise ValueError(f"choose or type a value for {missing[0]}")
    return dreaming.Settings(model, layer, int(iterations), float(rate), int(octaves), int(seed))


def page_settings(model, layer, class_, preset, objective, parameter, iterations, rate,
                  octaves, octave_scale, jitter, channel, seed, max_side,
                  guide: Path | None = None) -> "dreaming.Settings":
    """The page's values, refused with a message when a needed one is missing; empty
    fields leave the option to the dreamer's default."""
    if not model:
        raise ValueError("choose a model")
    if not layer and not class_:
        raise ValueError("choose a layer (or a class)")
    return dreaming.Settings(
        model, None if class_ else layer, number_of("iterations", iterations),
        number_of("rate", rate), number_of("octaves", octaves),
        0 if seed is None else int(seed), preset or None, class_ or None,
        objective_of(objective, parameter), None if guide is None else guide.name,
        number_of("octave_scale", octave_scale), number_of("jitter", jitter),
        number_of("channel", channel), number_of("max_side", max_side))


def add(studio: Studio) -> DreamTab:
    gr, cache = studio.gr, studio.cache
    names = cache.names()

    def dream(upload, guide, model, layer, class_, preset, objective, parameter, iterations,
              rate, octaves, octave_scale, jitter, channel, seed, max_side, history: list,
              request: gr.Request):
        skip = gr.skip()
        values = [upload, guide, model, layer, class_, preset, objective, parameter,
                  iterations, rate, octaves, octave_scale, jitter, channel, seed, max_side]
        try:
            upload = studio.checked_upload(upload)
            guide = studio.checked_upload(guide, "image for the guide") if guide else None
            check_names(upload, guide)
            settings = page_settings(*values[2:], guide=guide)
            output = f"{upload.stem}_dream.png"
            command = dreaming.command_text(dreaming.command_line(upload.name, settings),
                                           output, studio.models_folder)
        except (DreamzooError, ValueError) as e:
            gr.Warning(message_of(e))
            yield skip, None, skip, message_of(e), "", skip
            return
        with studio.stop_flag(request.session_hash) as stop:
            yield None, None, command, "dreaming…", "", skip
            started = shown = time.monotonic()
            for event in dreaming.dream_events(cache, upload, settings, studio.folder, stop,
                                               guide):
                now = time.monotonic()
                if event[0] == "step" and (now - shown >= PROGRESS_SECONDS
                                           or event[1] == event[2]):
                    shown = now
                    yield skip, skip, skip, skip, \
                        dreaming.progress_html(event[1], event[2], now - started), skip
                elif event[0] == "octave":
                    yield event[2], skip, skip, \
                        f"dreaming… octave {event[1] + 1} finished", skip, skip
                elif event[0] == "done":
                    entry = {"png": str(event[1]), "command": command, "values": list(values)}
                    yield skip, str(event[1]), command, f"done: {output}", skip, \
                        [*history, entry]
                elif event[0] == "error":
                    message = message_of(event[1])
                    if not isinstance(event[1], Stopped):
                        gr.Warning(message)
                    yield skip, None, command, message, skip, skip

    def halt(request: gr.Request) -> None:
        studio.halt(request.session_hash)

    def number(label: str, name: str):
        """A number field (text: it may be empty), starting at the dreamer's default."""
        start = DEFAULTS.get(name)
        return gr.Textbox("" if start is None else str(start), label=label, elem_id=name,
                          max_lines=1, placeholder="default")

    def sample():
        """The sample photo as the upload (written once in the studio's folder)."""
        try:
            path = sample_photo(studio.folder)
        except ImportError:
            gr.Warning("the sample photo needs scikit-image: pip install scikit-image")
            return gr.skip(), ""
        return str(path), SAMPLE_NOTE

    with gr.Row():
        with gr.Column():
            upload = gr.File(label="image (PNG, JPEG, ...)", file_types=["image"],
                             type="filepath", elem_id="upload")
            with gr.Row():
                sample_button = gr.Button("Use the sample photo", size="sm", elem_id="sample")
                sample_note = gr.Markdown(elem_id="sample-note")
            model = gr.Dropdown(names, value=names[0] if names else None, label="model",
                                elem_id="model")
            layer = gr.Dropdown([], label="layer  ·  type  ·  output  ·  smallest input",
                                filterable=True, elem_id="layer")
            class_ = gr.Dropdown([NO_CLASS], value="", filterable=True, elem_id="class",
                                 label="class (dreamed instead of the layer; type to search)")
            with gr.Row():
                iterations = number("iterations per octave", "iterations")
                rate = number("rate", "rate")
                octaves = number("octaves", "octaves")
                seed = gr.Number(DEFAULTS["seed"], label="seed", minimum=numbers.SEED.low,
                                 maximum=numbers.SEED.high, precision=0, elem_id="seed")
            with gr.Accordion("more settings (empty: the dreamer's default)", open=True):
                with gr.Row():
                    preset = gr.Dropdown([("none", ""), *((p, p) for p in PRESET_NAMES)],
                                         value="", label="preset", elem_id="preset")
                    objective = gr.Dropdown([(f"{n}: {rule.help}", n) for n, rule in RULES.items()],
                                            value="l2", label="objective", elem_id="objective")
                    parameter = gr.Textbox(label="objective's value (topk:F)", elem_id="parameter",
                                           max_lines=1, placeholder="e.g. 0.05")
                with gr.Row():
                    octave_scale = number("octave scale", "octave_scale")
                    jitter = number("jitter (pixels)", "jitter")
                    channel = number("channel", "channel")
                    max_side = number("max side (pixels)", "max_side")
                guide = gr.File(label="guide image (dream towards its features)",
                                file_types=["image"], type="filepath", elem_id="guide")
            with gr.Row():
                start = gr.Button("Dream", variant="primary", elem_id="dream")
                stop = gr.Button("Stop", variant="stop", elem_id="stop")
        with gr.Column():
            preview = gr.Image(label="result", type="numpy", format="png", interactive=False,
                               elem_id="preview")
            progress = gr.HTML(elem_id="progress")
            status = gr.Markdown(None if names else NO_MODELS, elem_id="status")
            download = gr.File(label="PNG (with its settings)", interactive=False,
                               elem_id="download")
            command = gr.Textbox(label="the same dream on the command line", interactive=False,
                                 elem_id="command")
    history = gr.State([])
    fields = [upload, guide, model, layer, class_, preset, objective, parameter, iterations,
              rate, octaves, octave_scale, jitter, channel, seed, max_side]
    dreamt = start.click(dream, [*fields, history],
                         [preview, download, command, status, progress, history],
                         trigger_mode="always_last",  # a click while one ends: run next
                         # Gradio's waiting and queue position on the result alone: its
                         # animation on every output costs the browser a core's share.
                         show_progress="minimal", show_progress_on=[preview])
    # No `cancels=`: a cancelled event may never report its end to the page, which then
    # ignores the next Dream; the dream ends itself at its next step and says "stopped".
    stop.click(halt, None, None)
    sample_button.click(sample, None, [upload, sample_note])
    preset.input(preset_numbers, preset, [iterations, rate, octaves])
    model.change(lambda name, chosen: classes_of(studio, name, chosen), [model, class_], class_)
    return DreamTab(upload, model, layer, fields, history, dreamt)


def sample_photo(folder: Path) -> Path:
    """scikit-image's astronaut as `python -m models.sample` writes it, made once in
    `folder`; ImportError without scikit-image."""
    import skimage.data  # noqa: F401  # optional (a dev dependency): only the sample needs it

    path = folder / "sample" / SAMPLE
    if not path.exists():
        path.parent.mkdir(exist_ok=True)
        if sample.main([str(path)]) != 0:
            raise ValueError(f"could not write the sample photo {SAMPLE}")
    return path


def preset_numbers(name: str | None) -> tuple:
    """The preset's own iterations, rate and octaves for the fields (empty where its loop
    has its own schedule)."""
    preset = PRESETS[name or None]
    if preset.iterations is None:
        return "", "", "" if preset.octaves is None else str(preset.octaves)
    return str(preset.iterations), str(preset.rate), \
        "" if preset.octaves is None else str(preset.octaves)


def classes_of(studio: Studio, model: str | None, chosen: str | None = None):
    """The class dropdown's update for `model`: its class names (by index), keeping the
    chosen class where the model has it."""
    gr = studio.gr
    try:
        labels = explore.labels_of(studio.cache, model) if model else None
    except (DreamzooError, ValueError) as e:
        gr.Warning(message_of(e))
        labels = None
    choices = [NO_CLASS]
    if labels is not None:
        choices += [(f"{i}  ·  {', '.join(names)}", str(i)) for i, names in enumerate(labels.names)]
    kept = chosen if chosen in {value for _, value in choices} else ""
    return gr.update(choices=choices, value=kept)


def layers_of(studio: Studio, model: str | None, chosen: str | None = None):
    """The layer dropdown's update and the layer table of `model` (its default layer
    chosen, or `chosen` where the model has it)."""
    gr = studio.gr
    empty = gr.update(choices=[], value=None), []
    if not model:
        return empty
    try:
        network = studio.cache.get(model).network
    except (DreamzooError, ValueError) as e:
        gr.Warning(message_of(e))
        return empty
    layer = chosen if chosen in network.layer_index else default_layer(network)
    return (gr.update(choices=layer_choices(network), value=layer),
            explore.layer_table(network))


def restored(studio: Studio, entry: dict) -> list:
    """The fields' values of a history entry (the layer and class lists of its model)."""
    values = dict(zip(FIELDS, entry["values"]))
    values["layer"] = layers_of(studio, values["model"], values["layer"])[0]
    values["class_"] = classes_of(studio, values["model"], values["class_"])
    return [values[name] for name in FIELDS]
