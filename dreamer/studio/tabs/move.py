"""The Zoom & video tab: Google's endless zoom of the Dream tab's image (each frame shown
as it finishes, then the GIF and the MP4), and video jobs (uploaded, run in the studio's
work folder whatever the page does, resumable, listed for every page of the studio).

Both dream on the Dream tab's model and layer; their numbers are their own (the zoom's
and the video command's defaults differ from a still's)."""

import html
from pathlib import Path
from typing import Any

from converters.errors import DreamzooError
from converters.numbers import Bounds
from dreamer.motion.video import BLEND
from dreamer.motion.video import ITERATIONS as VIDEO_ITERATIONS
from dreamer.motion.video import OCTAVES as VIDEO_OCTAVES
from dreamer.motion.video import RATE as VIDEO_RATE
from dreamer.plan import numbers

# Modules, not names: dreaming and jobs import dreamer.cli, which imports this tab.
from dreamer.studio import dreaming, jobs
from dreamer.studio.context import Stopped, Studio, message_of, threaded
from dreamer.studio.tabs import dream

# The page's starting values: the zoom and video commands' defaults (the zoom's iterations,
# rate and octaves are a still's: the Dream tab's, set in `add`), a few frames, and pictures
# of at most 512 pixels a side (a page's work should end in minutes).
ZOOM_DEFAULTS = {"zoom_frames": 12, "zoom_zoom": 1.05, "zoom_rotate": 0.0, "zoom_fps": 24.0,
                 "zoom_seed": 0, "zoom_max_side": 512}
VIDEO_DEFAULTS = {"video_iterations": VIDEO_ITERATIONS, "video_rate": VIDEO_RATE,
                  "video_octaves": VIDEO_OCTAVES, "video_blend": BLEND, "video_seed": 0,
                  "video_max_side": 512}
JOB_HEADERS = ["job", "video", "frames", "state"]
MAX_SIDE = Bounds(1, 100_000, integer=True)
TICK_SECONDS = 1.0


def given(value, name: str) -> float:
    """A field's number, refused with a message when it is empty."""
    if value in (None, ""):
        raise ValueError(f"type a value for {name}")
    return value


def max_side_of(value) -> int | None:
    """--max-side from its field: empty is none."""
    return None if value in (None, "") else int(value)


def progress_html(done: int, total: int, text: str) -> str:
    """A progress bar and a line of text (escaped)."""
    return (f'<progress value="{done}" max="{max(total, 1)}"></progress> '
            f"{html.escape(text)}")


def add(studio: Studio, dream_tab: "dream.DreamTab") -> None:
    gr = studio.gr
    work = jobs.Jobs(studio.cache, studio.folder)

    defaults = {**ZOOM_DEFAULTS, **VIDEO_DEFAULTS,
                **{f"zoom_{name}": dream.DEFAULTS[name] for name in ("iterations", "rate",
                                                                      "octaves")}}

    def number(label: str, name: str, bounds: Bounds):
        """A number field within `bounds`, starting at its default."""
        return gr.Number(defaults[name], label=label, minimum=bounds.low, maximum=bounds.high,
                         precision=0 if bounds.integer else None, elem_id=name)

    def zoom(upload, model, layer, frames, factor, rotate, fps, iterations, rate, octaves,
             seed, max_side, request: gr.Request):
        skip = gr.skip()
        try:
            upload = studio.checked_upload(upload)
            settings = dream.settings_of(model, layer, iterations, rate, octaves, seed)
            motion = jobs.ZoomMotion(int(given(frames, "frames")), float(given(factor, "zoom")),
                                     float(given(rotate, "rotation")), float(given(fps, "fps")),
                                     max_side_of(max_side))
        except (DreamzooError, ValueError) as e:
            gr.Warning(message_of(e))
            yield skip, skip, skip, skip, message_of(e)
            return
        argv, output = jobs.zoom_argv(upload.name, settings, motion), f"{upload.stem}_zoom.gif"
        command = "\n".join(dreaming.command_text(argv, name, studio.models_folder)
                            for name in (output, f"{upload.stem}_zoom.mp4"))
        key = f"{request.session_hash}/zoom"
        with studio.stop_flag(key) as stop:
            yield None, None, None, command, progress_html(0, motion.frames, "zooming…")
            events = threaded(lambda put: jobs.zoom_files(
                studio.cache, upload, argv, output, studio.folder, stop, put), stop, "studio-zoom")
            for event in events:
                if event[0] == "frame":
                    _, k, count, rgb = event
                    yield rgb, skip, skip, skip, progress_html(k, count, f"frame {k} of {count}")
                elif event[0] == "done":
                    gif, mp4 = event[1]
                    yield skip, str(gif), str(mp4), skip, progress_html(
                        motion.frames, motion.frames, f"done: {motion.frames} frames")
                else:
                    message = message_of(event[1])
                    if not isinstance(event[1], Stopped):
                        gr.Warning(message)
                    yield skip, skip, skip, skip, html.escape(message)

    def halt_zoom(request: gr.Request) -> None:
        studio.halt(f"{request.session_hash}/zoom")

    def start_video(upload, model, layer, iterations, rate, octaves, seed, blend, max_side):
        try:
            if not upload:
                raise ValueError("upload a video first")
            upload = studio.checked_upload(upload, "video")
            settings = dream.settings_of(model, layer, iterations, rate, octaves, seed)
            job_id = work.submit(upload, settings, float(given(blend, "blend")),
                                 max_side_of(max_side))
        except Exception as e:  # a bad upload is a line in the page, never a traceback
            message = message_of(e)
            if upload:  # named as the browser named it, not by the server's path
                message = message.replace(str(upload), Path(upload).name)
            gr.Warning(message)
            return *shown(None, None), message
        return *shown(job_id, None), f"job {job_id} queued"

    def act(action, job_id, last):
        """Stop or resume the chosen job, then the list as it stands."""
        try:
            action(job_id)
        except ValueError as e:
            return *shown(job_id, last), message_of(e)
        return *shown(job_id, last), ""

    def shown(chosen: str | None, last: Any):
        """The jobs' table, the job list with `chosen` (else the newest) chosen, its
        progress, command and MP4, what the page shows, and the timer: ticking while a
        job is queued or running. `last`: the (job, state) the page shows (its command and
        MP4 are sent again only when that changes)."""
        rows = work.rows()
        if chosen not in [row.id for row in rows]:
            chosen = rows[0].id if rows else None
        table = [[row.id, row.name, f"{row.progress.done} of {row.progress.total}",
                  row.progress.state] for row in rows]
        choices = gr.update(choices=[(f"{row.name} · {row.id}", row.id) for row in rows],
                            value=chosen)
        ticking = gr.Timer(active=any(row.progress.state in jobs.ACTIVE for row in rows))
        if chosen is None:
            return table, choices, "", None, None, None, ticking
        progress = work.progress(chosen)
        status = progress_html(progress.done, progress.total,
                               f"job {chosen}: frame {progress.done} of {progress.total}, "
                               f"{progress.state}")
        now = (chosen, progress.state)
        if now == last:
            return table, choices, status, gr.skip(), gr.skip(), now, ticking
        record = work.record(chosen)
        command = dreaming.command_text(record["argv"], record["output"], studio.models_folder)
        mp4 = work.output(chosen)
        return table, choices, status, command, str(mp4) if mp4 else None, now, ticking

    with gr.Row():
        with gr.Column():
            gr.Markdown("### Zoom\nThe image, model and layer of the Dream tab; each frame is "
                        "dreamed from the previous one zoomed and rotated.")
            with gr.Row():
                frames = number("frames", "zoom_frames", numbers.FRAMES)
                factor = number("zoom per frame", "zoom_zoom", numbers.ZOOM)
                rotate = number("degrees per frame", "zoom_rotate", numbers.ROTATE)
                fps = number("frames per second", "zoom_fps", numbers.FPS)
            with gr.Row():
                zoom_numbers = [
                    number("iterations per octave", "zoom_iterations", numbers.ITERATIONS),
                    number("rate", "zoom_rate", numbers.RATE),
                    number("octaves", "zoom_octaves", numbers.OCTAVES),
                    number("seed", "zoom_seed", numbers.SEED),
                    number("max side", "zoom_max_side", MAX_SIDE)]
            with gr.Row():
                zoom_start = gr.Button("Zoom", variant="primary", elem_id="zoom_start")
                zoom_stop = gr.Button("Stop", variant="stop", elem_id="zoom_stop")
        with gr.Column():
            frame = gr.Image(label="the latest frame", type="numpy", format="png",
                             interactive=False, elem_id="zoom_frame")
            zoom_status = gr.HTML(elem_id="zoom_status")
            with gr.Row():
                gif = gr.File(label="GIF", interactive=False, elem_id="zoom_gif")
                mp4 = gr.File(label="MP4", interactive=False, elem_id="zoom_mp4")
            zoom_command = gr.Textbox(label="the same zoom on the command line",
                                      interactive=False, elem_id="zoom_command")
    zoom_start.click(zoom, [dream_tab.upload, dream_tab.model, dream_tab.layer, frames, factor,
                            rotate, fps, *zoom_numbers],
                     [frame, gif, mp4, zoom_command, zoom_status], trigger_mode="always_last")
    zoom_stop.click(halt_zoom, None, None)

    with gr.Row():
        with gr.Column():
            gr.Markdown("### Video\nA job in the studio's work folder, on the Dream tab's "
                        "model and layer: it goes on when the page is closed, and a stopped "
                        "job resumes from its frames.")
            video = gr.File(label="video (MP4)", file_types=[".mp4"], type="filepath",
                            elem_id="video_upload")
            with gr.Row():
                video_numbers = [
                    number("iterations", "video_iterations", numbers.ITERATIONS),
                    number("rate", "video_rate", numbers.RATE),
                    number("octaves", "video_octaves", numbers.OCTAVES),
                    number("seed", "video_seed", numbers.SEED),
                    number("blend", "video_blend", numbers.BLEND),
                    number("max side", "video_max_side", MAX_SIDE)]
            video_start = gr.Button("Start the video job", variant="primary",
                                    elem_id="video_start")
            video_message = gr.Markdown(elem_id="video_message")
        with gr.Column():
            table = gr.Dataframe(headers=JOB_HEADERS, interactive=False, label="jobs",
                                 elem_id="video_jobs")
            # The server checks the id it gets (Jobs.folder_of), whatever the browser sends.
            chosen = gr.Dropdown([], label="job", allow_custom_value=True, elem_id="video_job")
            with gr.Row():
                video_stop = gr.Button("Stop the job", variant="stop", elem_id="video_stop")
                video_resume = gr.Button("Resume the job", elem_id="video_resume")
                refresh = gr.Button("Refresh", elem_id="video_refresh")
            video_status = gr.HTML(elem_id="video_status")
            download = gr.File(label="MP4", interactive=False, elem_id="video_download")
            video_command = gr.Textbox(label="the same video on the command line (in the "
                                       "job's folder, it resumes the job's frames)",
                                       interactive=False, elem_id="video_command")
    last = gr.State(None)
    timer = gr.Timer(TICK_SECONDS)  # lists the jobs when the page opens, then while one runs
    views = [table, chosen, video_status, video_command, download, last, timer]
    video_start.click(start_video, [video, dream_tab.model, dream_tab.layer, *video_numbers],
                      [*views, video_message])
    video_stop.click(lambda job, seen: act(work.stop, job, seen), [chosen, last],
                     [*views, video_message])
    video_resume.click(lambda job, seen: act(work.resume, job, seen), [chosen, last],
                       [*views, video_message])
    for event in (chosen.input, refresh.click, timer.tick):
        event(shown, [chosen, last], views, show_progress="hidden")
