"""The studio's web page (Gradio Blocks), one tab per module in `dreamer/studio/tabs/`, and
its server.

Gradio is optional (`dreamzoo[studio]`): imported here inside functions only. No
`from __future__ import annotations` in the tabs: Gradio reads the `gr.Request` hints at
run time."""

import os
import shutil
import tempfile
from pathlib import Path

from converters.errors import UsageError
from converters.ownership import check_writable_folder, has_record, write_record
from dreamer.studio.cache import ModelCache
from dreamer.studio.context import Studio
from dreamer.studio.tabs import dream, explore, history, move, status, zoo

# Uploads over this many bytes are refused (pixels: load_rgb's own bound, as the CLI's);
# the environment variable below overrides it when the studio starts.
MAX_UPLOAD_BYTES = 50_000_000
MAX_UPLOAD_VARIABLE = "DREAMZOO_STUDIO_MAX_UPLOAD"
# A name inside the work folder, to check that its parent can be written.
WORK_RECORD_CHILD = "record"


def import_gradio():
    """The gradio module, or a UsageError saying how to install it."""
    try:
        import gradio  # optional: gradio (dreamzoo[studio])
    except ImportError:
        raise UsageError("the studio needs Gradio: pip install 'dreamzoo[studio]' "
                         "(`make setup` installs it)") from None
    return gradio


def max_upload_bytes() -> int:
    """The upload bound: $DREAMZOO_STUDIO_MAX_UPLOAD bytes if set, else MAX_UPLOAD_BYTES."""
    text = os.environ.get(MAX_UPLOAD_VARIABLE, "")
    if not text:
        return MAX_UPLOAD_BYTES
    if not text.isdigit() or int(text) < 1:
        raise UsageError(f"{MAX_UPLOAD_VARIABLE}={text!r}: give a number of bytes, at least 1")
    return int(text)


def build(cache: ModelCache, folder: Path, models_folder: Path | None,
          max_upload: int = MAX_UPLOAD_BYTES, mirror: Path | None = None):
    """The studio's page: dreams on `cache`'s models, outputs written in `folder`;
    `models_folder`: the folder the studio was started with (shown in the command);
    uploads over `max_upload` bytes are refused; `mirror`: where the Zoo tab converts from."""
    gr = import_gradio()
    studio = Studio(gr, cache, folder, models_folder, max_upload, mirror=mirror)
    with gr.Blocks(title="dreamzoo studio", analytics_enabled=False) as page:
        gr.Markdown("## dreamzoo studio: DeepDream on the classic Caffe and Torch7 nets")
        status.add(studio, page)
        with gr.Tab("Dream"):
            dream_tab = dream.add(studio)
        with gr.Tab("Layers & classes"):
            layer_table = explore.add(studio, dream_tab)
        with gr.Tab("Zoom & video"):
            move.add(studio, dream_tab)
        with gr.Tab("Zoo"):
            zoo.add(studio, dream_tab)
        with gr.Tab("History"):
            history.add(studio, dream_tab)
        page.load(lambda model: dream.layers_of(studio, model), dream_tab.model,
                  [dream_tab.layer, layer_table])
        dream_tab.model.change(lambda model, layer: dream.layers_of(studio, model, layer),
                               [dream_tab.model, dream_tab.layer], [dream_tab.layer, layer_table])
        page.load(lambda model: dream.classes_of(studio, model), dream_tab.model,
                  dream_tab.fields[dream.FIELDS.index("class_")])
    return page


def serve(root: Path, models_folder: Path | None, host: str, port: int,
          cache: ModelCache | None = None, mirror: Path | None = None,
          work: Path | None = None) -> None:
    """Serve the studio on host:port until interrupted; `cache`: the models and workers
    (default: one worker, the cache's default budget); `work`: its work folder (PNGs, jobs,
    galleries; checked by `work_folder`), kept afterwards (default: a temporary folder,
    removed when it stops)."""
    import_gradio()
    cache = cache or ModelCache(root)
    folder = work or Path(tempfile.mkdtemp(prefix="dreamzoo-studio-"))
    try:
        page = build(cache, folder, models_folder, max_upload_bytes(), mirror)
        # one queue: each event (a dream, ...) runs as many at once as there are workers
        page.queue(default_concurrency_limit=cache.dreaming.count)
        page.launch(server_name=host, server_port=port, show_error=False)
    finally:
        if work is None:
            shutil.rmtree(folder, ignore_errors=True)


def work_folder(path: Path) -> Path:
    """`--work DIR`: a new or empty folder (then marked as the studio's), or one a studio
    worked in before (its jobs go on); any other folder is refused, untouched."""
    if path.exists() and not path.is_dir():
        raise UsageError(f"--work {path}: not a folder")
    if path.is_dir() and any(path.iterdir()) and not has_record(path):
        raise UsageError(f"--work {path}: a folder the studio did not make (give a new or "
                         "empty one, or one a studio worked in)")
    if not path.is_dir() or not has_record(path):
        check_writable_folder(path / WORK_RECORD_CHILD)
        path.mkdir(parents=True, exist_ok=True)
        write_record(path, kind="studio work folder")
    return path
