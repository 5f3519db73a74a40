"""The Zoo tab: the zoo's models, converted or not, and converting one (from the mirror the
studio was started with, else downloaded) with a progress bar; the converted model then
appears in the Dream tab's model list."""

from converters.errors import DreamzooError
from dreamer.studio import zoo
from dreamer.studio.context import Studio, message_of
from dreamer.studio.tabs import dream as dream_tab  # a module: see tabs/history.py
from models.convert import CONVERSION_STEPS


def add(studio: Studio, dream: "dream_tab.DreamTab") -> None:
    gr, root = studio.gr, studio.cache.root

    def choices() -> dict:
        names = zoo.convertible(root)
        return gr.update(choices=names, value=names[0] if names else None)

    tracked = gr.Progress(track_tqdm=True)  # Gradio reads the default: a download's tqdm

    def convert(name: str | None, progress=tracked):
        """Convert `name`: (the Dream tab's models, the zoo table, the choices, a line)."""
        skip = gr.skip()
        source = f"the mirror {studio.mirror}" if studio.mirror else "its download URLs"

        def on_step(index: int) -> None:
            progress((index, len(CONVERSION_STEPS)), unit="steps",
                     desc=f"converting {name} from {source}: {CONVERSION_STEPS[index]}")

        try:
            converted = zoo.convert(name, root, studio.mirror, on_step)
        except (DreamzooError, ValueError) as e:
            return skip, skip, skip, message_of(e)
        names = studio.cache.names()
        notes = "".join(f"\n\nwarning: {text}" for text in converted.warnings)
        return (gr.update(choices=names, value=converted.name),
                zoo.zoo_rows(root, studio.mirror), choices(),
                f"{converted.name}: converted, {len(converted.network.layer_names)} layers; "
                f"chosen on the Dream tab{notes}")

    where = f"from the mirror `{studio.mirror}`" if studio.mirror else \
        "downloaded from the zoo's URLs (`--from MIRROR` or $DREAMZOO_MIRROR: a local folder)"
    gr.Markdown(f"The zoo's models. Converting one ({where}) makes it a choice on the Dream "
                "tab, as `python -m models NAME` does.")
    table = gr.Dataframe(zoo.zoo_rows(root, studio.mirror), headers=zoo.ZOO_HEADERS,
                         interactive=False, label="the zoo", elem_id="zoo-table")
    names = zoo.convertible(root)
    with gr.Row():
        model = gr.Dropdown(names, value=names[0] if names else None,
                            label="a model not converted yet", elem_id="zoo-model")
        start = gr.Button("Convert", variant="primary", elem_id="zoo-convert")
    status = gr.Markdown(elem_id="zoo-status")
    start.click(convert, model, [dream.model, table, model, status])
