"""The serving line, always in view: the models held and their memory within the budget,
how many times a model was opened, the workers busy, and the work waiting in the queue
(one queue: each event runs at most `workers` at once, the others wait, their position
shown by Gradio)."""

from dreamer.loops.memory import size_text
from dreamer.studio.context import Studio

REFRESH_S = 1.0
RAY_NOTE = " · on Ray workers: no octave previews, the final image only"


def waiting(page) -> int:
    """The events waiting in the page's queue (Gradio's own, counted as its queue status
    route counts them): dreams and other work waiting for a worker."""
    queue = getattr(page, "_queue", None)
    return 0 if queue is None else len(queue)


def line(studio: Studio, page) -> str:
    """The serving line's text."""
    cache = studio.cache
    held = ", ".join(cache.held()) or "none"
    slots = cache.dreaming
    ray = RAY_NOTE if getattr(cache, "ray", None) else ""
    return (f"models held: {held} · memory: {size_text(cache.used())} of "
            f"{size_text(cache.max_bytes)} · models opened: {cache.opened} · workers: "
            f"{slots.busy()} of {slots.count} busy · waiting: {waiting(page)}{ray}")


def add(studio: Studio, page) -> None:
    """The line, refreshed every REFRESH_S seconds (outside the dreams' queue)."""
    gr = studio.gr
    text = line(studio, page)
    shown = gr.Markdown(text, elem_id="serving")
    last = gr.State(text)

    def refreshed(before: str):
        """The line and its state when it changed; else nothing is sent to the page."""
        now = line(studio, page)
        return (gr.skip(), gr.skip()) if now == before else (now, now)

    gr.Timer(REFRESH_S).tick(refreshed, last, [shown, last], queue=False,
                             show_progress="hidden")
