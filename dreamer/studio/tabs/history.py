"""The History tab: this browser session's dreams (thumbnail and command); a click on one
puts its settings back in the Dream tab's fields."""

from dreamer.studio.context import Studio

# A module, not names: dreaming imports dreamer.cli, whose studio imports the tabs.
from dreamer.studio.tabs import dream as dream_tab


def gallery_of(history: list) -> list[tuple[str, str]]:
    """(PNG, command) per dream of the session, the first first."""
    return [(entry["png"], entry["command"]) for entry in history]


def add(studio: Studio, dream: "dream_tab.DreamTab"):
    """The tab; its gallery follows each dream."""
    gr = studio.gr

    def restore(history: list, selected: gr.SelectData):
        entry = history[selected.index]
        note = f"settings of dream {selected.index + 1} restored: {entry['command']}"
        return [*dream_tab.restored(studio, entry), note]

    gr.Markdown("The dreams of this page, the first first: click one to put its settings "
                "back on the Dream tab.")
    gallery = gr.Gallery(label="this session's dreams", columns=4, height="auto",
                         allow_preview=False, elem_id="history")
    note = gr.Markdown(elem_id="history-status")
    dream.dreamt.then(gallery_of, dream.history, gallery)
    gallery.select(restore, dream.history, [*dream.fields, note])
    return gallery
