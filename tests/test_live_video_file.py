"""The video-file source plays in real time and keeps going after the end of the file."""

from __future__ import annotations

import asyncio
import io
import time

import av
import numpy as np

from lfr_eval.live._video_file import VIDEO_CLOCK_RATE, LoopingVideoTrack, VideoFilePlayer


def _video(frames: int = 10, fps: int = 10) -> bytes:
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="mp4") as container:
        stream = container.add_stream("mpeg4", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        for i in range(frames):
            image = np.full((120, 160, 3), 20 * i, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return buffer.getvalue()


def test_file_loops_in_real_time_with_continuous_timestamps() -> None:
    data = _video(frames=10, fps=10)
    track = LoopingVideoTrack(data)
    assert track.fps == 10

    async def play(n: int) -> tuple[list[int], list[float], list[int]]:
        pts, arrived, level = [], [], []
        for _ in range(n):
            frame = await track.recv()
            pts.append(frame.pts)
            arrived.append(time.monotonic())
            level.append(int(frame.to_ndarray(format="rgb24")[60, 80, 0]))
        return pts, arrived, level

    start = time.monotonic()
    pts, arrived, level = asyncio.run(play(25))  # two and a half passes of a 1 s file
    assert track.passes == 2 and track.readyState == "live"
    # timestamps run on across the passes, one frame period apart
    assert np.all(np.diff(pts) == VIDEO_CLOCK_RATE // 10)
    # paced at the file's rate from the second pass on too (never early; no flood)
    assert all(t >= start + k / 10 - 0.02 for k, t in enumerate(arrived))
    # the content starts again: third pass shows the first frames again
    assert abs(level[20] - level[0]) <= 8 and level[9] > level[0] + 100
    track.stop()


def test_without_loop_the_track_ends() -> None:
    player = VideoFilePlayer(_video(frames=3), loop=False)
    assert player.audio is None

    async def drain() -> int:
        n = 0
        try:
            while True:
                await player.video.recv()
                n += 1
        except Exception as exc:  # noqa: BLE001
            assert type(exc).__name__ == "MediaStreamError"
        return n

    assert asyncio.run(drain()) == 3
