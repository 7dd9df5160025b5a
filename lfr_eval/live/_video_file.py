"""A video file played in a loop, in real time, as the Live page's video source.

aiortc's ``MediaPlayer(..., loop=True)`` seeks back to the start at the end of the file but keeps
its pacing clock: from the second pass on, every frame is "late", so frames are delivered as fast
as they can be decoded (thousands per second), the pipeline and the WebRTC encoder are flooded
and the stream broke off soon after the first pass. :class:`LoopingVideoTrack` paces every frame
against its own running frame count and gives the frames continuous timestamps across passes, so
the footage plays at its frame rate for as long as the page runs. The file is read from memory:
nothing is copied to disk.
"""

from __future__ import annotations

import asyncio
import fractions
import io
import time
from collections.abc import Callable, Iterator

import av
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

#: RTP video clock, ticks per second.
VIDEO_CLOCK_RATE = 90_000
#: Frame rate assumed when the file does not state one.
DEFAULT_FPS = 25.0


def video_fps(data: bytes) -> float:
    """The frame rate a video file states (``DEFAULT_FPS`` when it states none)."""
    with av.open(io.BytesIO(data)) as container:
        rate = container.streams.video[0].average_rate or container.streams.video[0].base_rate
    return float(rate) if rate else DEFAULT_FPS


class LoopingVideoTrack(MediaStreamTrack):
    """The video stream of a file held in memory, played in real time, in a loop.

    Parameters
    ----------
    data : bytes
        The file's content (any container and codec FFmpeg reads).
    loop : bool
        Start again at the end (default); otherwise the track ends.
    fps : float, optional
        Playback rate; default the file's own.
    clock : callable
        Monotonic clock in seconds (tests).

    Raises
    ------
    av.FFmpegError, IndexError
        Not a video file (no video stream).
    """

    kind = "video"

    def __init__(
        self,
        data: bytes,
        *,
        loop: bool = True,
        fps: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__()
        self._data = data
        self._repeat = loop
        self.fps = float(fps) if fps else video_fps(data)
        self._clock = clock
        self._frames = self._decode()
        self._start: float | None = None
        self._count = 0
        #: completed passes through the file
        self.passes = 0

    def _decode(self) -> Iterator[av.VideoFrame]:
        while True:
            with av.open(io.BytesIO(self._data)) as container:
                yield from container.decode(video=0)
            self.passes += 1
            if not self._repeat:
                return

    def _next_frame(self) -> av.VideoFrame | None:
        return next(self._frames, None)

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        # decoding can take a few ms for large frames: off the event loop
        frame = await asyncio.get_running_loop().run_in_executor(None, self._next_frame)
        if frame is None:
            self.stop()
            raise MediaStreamError
        if self._start is None:
            self._start = self._clock()
        due = self._start + self._count / self.fps
        wait = due - self._clock()
        if wait > 0:
            await asyncio.sleep(wait)
        elif wait < -1.0:
            # fell more than a second behind (a busy machine): skip ahead rather than rush
            self._start = self._clock() - self._count / self.fps
        frame.pts = round(self._count * VIDEO_CLOCK_RATE / self.fps)
        frame.time_base = fractions.Fraction(1, VIDEO_CLOCK_RATE)
        self._count += 1
        return frame


class VideoFilePlayer:
    """What streamlit-webrtc's ``player_factory`` returns: a looping video track, no audio."""

    def __init__(self, data: bytes, *, loop: bool = True) -> None:
        self.video: LoopingVideoTrack | None = LoopingVideoTrack(data, loop=loop)
        self.audio: MediaStreamTrack | None = None
