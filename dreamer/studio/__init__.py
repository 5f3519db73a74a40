"""The studio: `python -m dreamer studio`, dreamzoo in a web page (Gradio).

`app.py`: the page, one module per tab in `tabs/`, and the server; `context.py`: what the
tabs share (the models, the work folder, Stop flags, messages, the worker-thread events);
`cache.py`: the models it offers and the opened ones (an LRU within a memory budget; as many
dreams at once as `--workers`); `dreaming.py`: a dream as its command line, in a worker
thread, stoppable; `gallery.py`: the layer gallery, cached; `jobs.py`: zoom and video jobs
as their commands make them; `zoo.py`: converting a zoo model; `ray_dreams.py`: dreams on
Ray workers (`--ray`).
"""
