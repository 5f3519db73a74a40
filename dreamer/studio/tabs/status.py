"""The serving line, always in view: the models held and their memory within the budget,
how many times a model was opened, the workers busy, and the dreams waiting in the queue."""

from dreamer.loops.memory import size_text
from dreamer.studio.context import Studio

# The concurrency id of the page's dreams: one queue, `workers` of them running at once.
QUEUE = "dream"
REFRESH_S = 0.5
RAY_NOTE = " · on Ray workers: no octave previews, the final image only"


def waiting(page) -> int:
    """The dreams waiting in the page's queue (Gradio's own, read as its queue status
    route reads it; 0 before the first dream)."""
    queue = getattr(page, "_queue", None)
    dreams = getattr(queue, "event_queue_per_concurrency_id", {}).get(QUEUE)
    return 0 if dreams is None else len(dreams.queue)


def line(studio: Studio, page) -> str:
    """The serving line's text."""
    cache = studio.cache
    held = ", ".join(cache.held()) or "none"
    slots = cache.dreaming
    ray = RAY_NOTE if getattr(cache, "ray", None) else ""
    return (f"models held: {held} · memory: {size_text(cache.used())} of "
            f"{size_text(cache.max_bytes)} · models opened: {cache.opened} · workers: "
            f"{slots.busy()} of {slots.count} busy · dreams waiting: {waiting(page)}{ray}")


def add(studio: Studio, page) -> None:
    """The line, refreshed every REFRESH_S seconds (outside the dreams' queue)."""
    gr = studio.gr
    shown = gr.Markdown(line(studio, page), elem_id="serving")
    gr.Timer(REFRESH_S).tick(lambda: line(studio, page), None, shown, queue=False,
                             show_progress="hidden")
