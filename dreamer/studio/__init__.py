"""The studio: `python -m dreamer studio`, the still dreamer in a web page (Gradio).

`cache.py`: the models it offers and the opened ones (an LRU; one dream at a time);
`dreaming.py`: a dream as its command line, in a worker thread, stoppable; `jobs.py`: zoom
and video jobs as their commands make them; `app.py`: the page.
"""
