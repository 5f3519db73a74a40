"""The Layers & classes tab: the chosen model's layer table, its class names by search,
and the uploaded image's top classes."""

from __future__ import annotations

from converters.errors import DreamzooError
from dreamer.studio import explore
from dreamer.studio.context import Studio, message_of
from dreamer.studio.tabs import dream as dream_tab  # a module: see tabs/history.py
from dreamer.studio.tabs import gallery


def add(studio: Studio, dream: dream_tab.DreamTab):
    """The tab; returns its layer table (filled when the model changes)."""
    gr, cache = studio.gr, studio.cache

    def classes_of(model: str | None, query: str | None):
        """The classes whose names hold `query`, and a line saying how many."""
        try:
            if not model:
                raise ValueError("choose a model on the Dream tab")
            rows = explore.class_table(cache, model, query or "")
        except (DreamzooError, ValueError) as e:
            return [], message_of(e)
        return rows, f"{len(rows)} classes"

    def classify(upload, model: str | None):
        """The uploaded image's top classes, and a line saying what was classified."""
        try:
            image = studio.checked_upload(upload)
            if not model:
                raise ValueError("choose a model on the Dream tab")
            rows = explore.top_table(cache, model, image)
        except Exception as e:  # shown in the page, never a traceback
            return [], message_of(e)
        return rows, f"top {len(rows)} classes of {image.name}"

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
    search.click(classes_of, [dream.model, query], [class_table, class_status])
    query.submit(classes_of, [dream.model, query], [class_table, class_status])
    classify_button.click(classify, [dream.upload, dream.model], [top_table, top_status])
    gallery.add(studio, dream)
    return layer_table
