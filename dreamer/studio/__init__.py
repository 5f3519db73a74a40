"""The studio: `python -m dreamer studio`, the still dreamer in a web page (Gradio).

`cache.py`: the models it offers and the opened ones (an LRU within a memory budget; as
many dreams at once as `--workers`);
`dreaming.py`: a dream as its command line, in a worker thread, stoppable; `jobs.py`: zoom
and video jobs as their commands make them; `app.py`: the page.
`ray_dreams.py`: dreams on Ray workers (`--ray`); `tabs/status.py`: the serving line.
"""
