"""Video in and out with PyAV (whose wheels bundle FFmpeg with H.264 and AAC), and GIFs
with PIL. Decoding yields each frame's index, time stamp and RGB; encoding writes H.264
yuv420p MP4 with the source's frame times and, re-encoded as AAC, the source's sound over
the same span. Every output is written to a hidden temporary as its frames come (none is held
whole in memory) and renamed when complete.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
from PIL import GifImagePlugin, Image

from converters.atomic import OutputError, replacing
from converters.ownership import marker
from converters.spec import ConversionError

AUDIO_FRAME = 1024  # samples per AAC frame


class VideoError(ConversionError):
    """A video that cannot be read or written; the message is one line."""


@dataclass(frozen=True)
class Frame:
    index: int  # among the source's decoded frames, from 0
    pts: int  # in the stream's time base, from the first frame's
    rgb: np.ndarray  # H×W×3 uint8


@dataclass(frozen=True)
class VideoInfo:
    width: int
    height: int
    rate: Fraction  # average frames per second
    time_base: Fraction
    frames: int  # as the container declares it; 0 when it does not say
    audio: bool
    origin: Fraction  # the first frame's time, in seconds on the file's clock


def _fail(path: Path, e: Exception) -> VideoError:
    if isinstance(e, FileNotFoundError):
        return VideoError(f"{path}: no such file")
    reason = str(e).splitlines()[0] if str(e) else type(e).__name__
    return VideoError(f"{path}: cannot read the video ({reason})")


def probe(path: str | Path) -> VideoInfo:
    """The video's size, rate and streams; refuses a file with no decodable frame."""
    import av  # optional: heavy, loaded only by zoom and video

    path = Path(path)
    try:
        with av.open(str(path)) as container:
            if not container.streams.video:
                raise VideoError(f"{path}: has no video stream")
            if container.format.name == "image2" or container.format.name.endswith("_pipe"):
                raise VideoError(f"{path}: a still image, not a video; to animate a still, "
                                 "use `python -m dreamer zoom`")
            stream = container.streams.video[0]
            first = next(container.decode(stream), None)
            if first is None:
                raise VideoError(f"{path}: the video has no frames")
            rate = stream.average_rate or stream.guessed_rate or Fraction(25)
            return VideoInfo(first.width, first.height, Fraction(rate),
                             Fraction(stream.time_base), stream.frames,
                             bool(container.streams.audio),
                             Fraction(first.pts or 0) * Fraction(stream.time_base))
    except av.EOFError:  # some demuxers (Matroska) say so when there is no frame to read
        raise VideoError(f"{path}: the video has no frames (the file ends before one)") from None
    except (av.FFmpegError, OSError) as e:
        raise _fail(path, e) from None


def read_frames(path: str | Path, first: int = 0, rgb: bool = True) -> Iterator[Frame]:
    """The frames from index `first` on, as decoded (frames before it are skipped without
    converting them to RGB); `rgb` False: time stamps only (an empty `rgb`)."""
    import av  # optional: heavy, loaded only by zoom and video

    path = Path(path)
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.thread_type = "AUTO"
            start = None
            for index, frame in enumerate(container.decode(stream)):
                pts = frame.pts if frame.pts is not None else index
                start = pts if start is None else start
                if index >= first:
                    pixels = frame.to_ndarray(format="rgb24") if rgb else np.empty(0)
                    yield Frame(index, pts - start, pixels)
    except (av.FFmpegError, OSError) as e:
        raise _fail(path, e) from None


def even(size: int) -> int:
    """yuv420p halves the colour planes: an odd width or height gains one pixel."""
    return size + size % 2


def pad_even(rgb: np.ndarray) -> np.ndarray:
    """`rgb` with its last row and/or column repeated to make both sides even."""
    h, w = rgb.shape[:2]
    return np.pad(rgb, ((0, even(h) - h), (0, even(w) - w), (0, 0)), mode="edge")


@dataclass(frozen=True)
class Sound:
    """The source's audio to carry: from `start` (seconds on the source's timeline, the
    first video frame at 0) for `duration` seconds."""

    path: Path
    origin: Fraction  # the source's first video frame, in seconds on the file's clock
    start: Fraction
    duration: Fraction


def write_mp4(out: Path, frames: Iterable[np.ndarray], rate: Fraction,
              times: tuple[list[int], Fraction] | None = None, sound: Sound | None = None) -> None:
    """H.264 yuv420p MP4 of uint8 RGB `frames` at `rate` frames per second, or at the time
    stamps `times` = (pts, time base); with `sound`, an AAC track cut from its source."""
    import av  # optional: heavy, loaded only by zoom and video

    try:
        _write_mp4(out, frames, rate, times, sound)
    except av.FFmpegError as e:  # the temporary is gone; an OSError is an OutputError already
        raise OutputError(f"cannot write {out}: {str(e).splitlines()[0]}") from None


def _write_mp4(out: Path, frames: Iterable[np.ndarray], rate: Fraction,
               times: tuple[list[int], Fraction] | None, sound: Sound | None) -> None:
    import av  # optional: heavy, loaded only by zoom and video

    with replacing(out) as file, av.open(file, "w", format="mp4") as container:
        container.metadata["comment"] = marker()  # ours to replace (converters/ownership.py)
        video = container.add_stream("libx264", rate=rate)
        video.pix_fmt = "yuv420p"
        # The same frames give the same bytes: x264's CPU-specific code paths (AVX-512
        # here) made the output vary from run to run, even on one thread.
        video.options = {"x264-params": "cpu-independent=1"}
        # Frames are stamped in this time base, the encoder's. The muxer picks the stream's
        # own when it writes the header (MP4: at least 10000 ticks a second), and PyAV
        # rescales each packet to it; a frame stamped in the stream's time base would be
        # rescaled from the muxer's ticks as if they were ours.
        time_base = times[1] if times else 1 / rate
        video.time_base = video.codec_context.time_base = time_base
        audio = _add_audio(container, sound) if sound else None
        for k, rgb in enumerate(frames):
            rgb = pad_even(rgb)
            if k == 0:
                video.height, video.width = rgb.shape[:2]
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(rgb), format="rgb24")
            frame.pts = times[0][k] if times else k
            frame.time_base = time_base
            container.mux(video.encode(frame))
        container.mux(video.encode())
        if audio is not None:
            _copy_audio(container, audio, sound)


def _add_audio(container, sound: Sound):
    import av  # optional: heavy, loaded only by zoom and video

    try:
        with av.open(str(sound.path)) as source:
            if not source.streams.audio:
                return None
            src = source.streams.audio[0]
            rate, layout = src.codec_context.sample_rate, src.codec_context.layout.name
    except (av.FFmpegError, OSError) as e:
        raise _fail(sound.path, e) from None
    stream = container.add_stream("aac", rate=rate)
    stream.layout = layout
    return stream


def _copy_audio(container, stream, sound: Sound) -> None:
    """Decode the source's audio, keep [start, start + duration) and encode it as AAC."""
    import av  # optional: heavy, loaded only by zoom and video

    rate = stream.codec_context.sample_rate
    first, last = round(sound.start * rate), round((sound.start + sound.duration) * rate)
    to_float = av.AudioResampler("fltp", stream.layout, rate)
    to_aac = av.AudioResampler("fltp", stream.layout, rate, frame_size=AUDIO_FRAME)
    at = kept = None  # the next sample's place on the video's timeline; samples kept
    try:
        with av.open(str(sound.path)) as source:
            src = source.streams.audio[0]
            for frame in source.decode(src):
                if at is None:  # where the sound starts, relative to the first video frame
                    at = round(((frame.pts or 0) * src.time_base - sound.origin) * rate)
                    kept = 0
                for piece in to_float.resample(frame):
                    lo, hi = max(first, at), min(last, at + piece.samples)
                    if lo < hi:
                        part = _audio_frame(piece.to_ndarray()[:, lo - at:hi - at], stream,
                                            kept)
                        kept += hi - lo
                        for out in to_aac.resample(part):
                            container.mux(stream.encode(out))
                    at += piece.samples
    except (av.FFmpegError, OSError) as e:
        raise _fail(sound.path, e) from None
    for out in to_aac.resample(None):
        container.mux(stream.encode(out))
    container.mux(stream.encode(None))


def _audio_frame(samples: np.ndarray, stream, pts: int):
    import av  # optional: heavy, loaded only by zoom and video

    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(samples), format="fltp",
                                       layout=stream.layout.name)
    frame.sample_rate = stream.codec_context.sample_rate
    frame.pts, frame.time_base = pts, Fraction(1, frame.sample_rate)
    return frame


GIF_FPS = (0.01, 50)  # a frame's delay is 1 to 65535 hundredths of a second; viewers show
# delays under 0.02 s slower than asked


def check_gif_rate(fps: float) -> None:
    """Refuse, before any work, a frame rate a GIF cannot show."""
    low, high = GIF_FPS
    if not low <= fps <= high:
        raise ValueError(f"--fps {fps:g}: a GIF shows {low:g} to {high:g} frames a second "
                         "(its frame delays are in hundredths of a second)")


def write_gif(out: Path, frames: Iterable[np.ndarray], rate: Fraction) -> None:
    """An endlessly looping GIF at `rate` frames per second, each frame with its own
    palette (PIL's adaptive one), written as it comes: one frame in memory at a time."""
    check_gif_rate(float(rate))
    with replacing(out) as file:
        count = 0
        for count, rgb in enumerate(frames, 1):
            image = Image.fromarray(rgb).convert("P", palette=Image.Palette.ADAPTIVE)
            if count == 1:  # the first frame's palette is the global one
                header = {"loop": 0, "comment": marker()}  # the comment: ours to replace
                file.writelines(GifImagePlugin.getheader(image, info=header)[0])
            # delays rounded so that frame k starts at k / rate, to the hundredth
            delay = round(count * 100 / rate) - round((count - 1) * 100 / rate)
            file.writelines(GifImagePlugin.getdata(image, include_color_table=count > 1,
                                                   duration=10 * delay))
        if count == 0:
            raise OutputError(f"cannot write {out}: no frames")
        file.write(b";")  # the GIF trailer
