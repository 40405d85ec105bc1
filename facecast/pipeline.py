"""End to end: one portrait + one speech track -> a talking-face video; or frames streamed live.

`render(image, audio, output, **controls)` is the one-call case. `Animator` builds the rig once
and then renders many audios (`Animator.render`) or streams frames from audio chunks
(`Animator.stream`). Long audio is decoded, analysed, rendered and encoded chunk by chunk, so
memory stays flat for hour-long files, and the audio track is muxed in step with the frames.
"""
from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from .audio.io import iter_audio, load_audio_info
from .errors import FacecastError
from .face.rig import FaceRig, build_rig
from .motion.controls import Controls, ControlTrack, range_message
from .motion.generator import (
    DEFAULT_LOOKAHEAD_S,
    SAMPLE_RATE,
    MotionGenerator,
    concat_motion,
)
from .motion.presets import FPS_RANGE
from .motion.types import MotionFrame, MotionSequence
from .outputs import check_motion_path
from .provenance.metadata import container_tags
from .provenance.watermark import Watermark
from .rendering.renderer import FullFramePaster, Renderer
from .video import VideoWriter, check_output_path

MUX_RATE = 48000
CHUNK_S = 0.2
GLIDE_S = 0.3                  # controls changed mid-stream cross-fade over this long
MUX_AHEAD_S = 0.5             # the audio track is kept this far ahead of the frames


@dataclass
class RenderResult:
    """What `render` made: output path, frame count, clip length, frame rate, wall time."""

    output: Path
    frames: int
    duration_s: float
    fps: float
    wall_s: float
    motion: MotionSequence | None = None
    video_id: str | None = None       # the id in the video's watermark (None: unmarked)


class FrameStream:
    """Audio chunks in, (MotionFrame, RGB frame) pairs out; see `Animator.stream`.

    `push` / `flush` generate and render every frame. A real-time consumer that may skip frames
    (the live server) uses `push_motion` / `flush_motion` and renders the frames it keeps with
    `frame`. `set_controls` changes the controls mid-stream with a short glide. Every frame
    carries the stream's own watermark (`mark`, a new video id per stream), unless the animator
    was made with `watermark=False`.
    """

    def __init__(self, animator: "Animator", generator: MotionGenerator, mark: Watermark | None = None):
        self.animator = animator
        self.generator = generator
        self.mark = mark
        self.frames_out = 0           # motion frames generated so far

    def _frames(self, motion: MotionSequence) -> list[tuple[MotionFrame, np.ndarray]]:
        return [(m, self.animator.frame(m, self.mark)) for m in motion]

    def push_motion(self, samples: np.ndarray) -> MotionSequence:
        """16 kHz mono float32 audio in; the motion frames that became ready out."""
        motion = self.generator.push(samples)
        self.frames_out += len(motion)
        return motion

    def flush_motion(self) -> MotionSequence:
        """End of audio: the remaining motion frames."""
        motion = self.generator.flush()
        self.frames_out += len(motion)
        return motion

    def frame(self, m: MotionFrame) -> np.ndarray:
        """Render one motion frame: (H, W, 3) uint8 RGB."""
        return self.animator.frame(m, self.mark)

    def push(self, samples: np.ndarray) -> list[tuple[MotionFrame, np.ndarray]]:
        """16 kHz mono float32 audio in; the frames that became ready out."""
        return self._frames(self.push_motion(samples))

    def flush(self) -> list[tuple[MotionFrame, np.ndarray]]:
        return self._frames(self.flush_motion())

    def set_controls(self, controls: Controls, glide_s: float = GLIDE_S) -> None:
        """From the next frame on, glide from the current controls to `controls` over `glide_s`;
        the seed stays that of the start, so head motion and blinks go on without a jump."""
        t = self.frames_out / self.generator.fps
        track = self.generator.track
        cur = track.at(t)
        new = controls.with_seed(track.seed)
        self.generator.track = ControlTrack(new, [(t, cur.with_seed(track.seed)), (t + glide_s, new)])


class Animator:
    """One portrait, ready to animate: build once, render many audios or stream frames.

    image: path or array; size: crop size 256-1024; face: which face (0 = largest);
    full_frame: paste the animated crop back into the whole photo.
    watermark: mark every frame as made by facecast (`facecast.provenance`); each render, animate
    and stream gets a new random video id. Only the CLI's `--no-watermark` turns it off.
    """

    def __init__(self, image, size: int = 512, face: int = 0, full_frame: bool = False, rig: FaceRig | None = None,
                 watermark: bool = True):
        self.source = image
        self.rig = rig or build_rig(image, size=size, face_index=face)
        self.renderer = Renderer(self.rig)
        self.paster = FullFramePaster(self.rig) if full_frame else None
        self.watermark = watermark
        self.mark = self.new_mark()           # for frames asked for one by one (`frame`)

    def new_mark(self) -> Watermark | None:
        """A watermark with a new random video id (None when this animator does not mark)."""
        return Watermark() if self.watermark else None

    @property
    def frame_size(self) -> tuple[int, int]:
        """(width, height) of output frames."""
        if self.paster:
            return self.paster.shape[1], self.paster.shape[0]
        return self.rig.size, self.rig.size

    def frame(self, m: MotionFrame, mark: Watermark | None = None) -> np.ndarray:
        """Render one motion frame, watermarked with `mark` (default: this animator's own mark).
        Every frame of every path (render, animate, stream, live, HTTP) is made here."""
        f = self.renderer.render(m)
        f = self.paster.paste(f) if self.paster else f
        mark = mark or self.mark
        return mark.apply(f) if mark is not None else f

    def stream(self, controls: Controls | ControlTrack | None = None, fps: float = 25.0,
               mark: Watermark | None = None, **kw) -> FrameStream:
        """A live stream: push 16 kHz audio chunks, get (MotionFrame, frame) pairs as they are ready.
        mark: the stream's watermark (default: a new one, with a new video id)."""
        return FrameStream(self, MotionGenerator(fps, controls, **kw), mark or self.new_mark())

    def render(self, audio, output: str | os.PathLike, fps: float = 25.0,
               controls: Controls | ControlTrack | None = None, save_motion: str | os.PathLike | None = None,
               progress: Callable[[int, int], None] | None = None, lookahead_s: float = DEFAULT_LOOKAHEAD_S,
               mark: Watermark | None = None, **writer_kw) -> RenderResult:
        """Render `audio` (a file path, or 16 kHz mono float32 samples) to `output`.

        output: .mp4 (H.264 + AAC), .webm (VP9 + Opus), .mov, .mkv, or a folder for PNG frames.
        save_motion: also write the motion (.json or .csv). progress(done, total) is called per
        frame; an exception raised by it aborts the render and leaves no file. lookahead_s: the
        generator's look-ahead (the live mode uses a shorter one). mark: the video's watermark
        (default: a new one, with a new video id). writer_kw go to `VideoWriter` (e.g. `sign`).
        """
        if not FPS_RANGE[0] <= fps <= FPS_RANGE[1]:
            raise FacecastError(range_message("fps", *FPS_RANGE, fps))
        out = check_output_path(output, [self.source, audio])  # arrays are skipped
        check_motion_path(save_motion)
        if isinstance(audio, np.ndarray):
            x = np.asarray(audio, np.float32).reshape(-1)
            if x.size == 0:
                raise FacecastError("the audio is empty")
            duration = len(x) / SAMPLE_RATE
            step = int(CHUNK_S * SAMPLE_RATE)
            analysis = (x[i:i + step] for i in range(0, len(x), step))
            mux, mux_rate = iter([x]), SAMPLE_RATE
        else:
            duration = load_audio_info(audio).duration_s
            analysis = iter_audio(audio, SAMPLE_RATE)
            mux, mux_rate = iter_audio(audio, MUX_RATE), MUX_RATE
        gen = MotionGenerator(fps, controls, lookahead_s=lookahead_s)
        keep = [] if save_motion is not None else None

        def motion_chunks():
            for chunk in analysis:
                yield gen.push(chunk)
            yield gen.flush()

        res = self._write(out, fps, motion_chunks(), max(1, int(round(duration * fps))), mux, mux_rate,
                          progress, keep, writer_kw, mark)
        if save_motion is not None:
            res.motion.save(save_motion)
        return res

    def animate(self, motion: MotionSequence, output: str | os.PathLike, audio=None,
                progress: Callable[[int, int], None] | None = None, mark: Watermark | None = None,
                **writer_kw) -> RenderResult:
        """Render a given motion (a motion file, a preset, a capture) to `output` at its frame
        rate, with `audio` (a file path; optional) muxed, trimmed or padded to the motion's length."""
        if len(motion) == 0:
            raise FacecastError("the motion has no frames")
        out = check_output_path(output, [self.source, audio])
        if audio is not None:
            load_audio_info(audio)  # fail early on bad audio
        mux = iter_audio(audio, MUX_RATE) if audio is not None else None
        return self._write(out, motion.fps, iter([motion]), len(motion), mux, MUX_RATE if mux else None,
                           progress, None, writer_kw, mark)

    def drive(self, video, output: str | os.PathLike, mode: str = "relative", audio=None, face: int = 0,
              motion_scale: float = 1.0, expression_scale: float = 1.0, gaze: tuple[float, float] | None = None,
              max_gap_s: float | None = None, progress: Callable[[int, int], None] | None = None,
              mark: Watermark | None = None, report: list | None = None,
              save_motion: str | os.PathLike | None = None, **writer_kw) -> RenderResult:
        """Make the portrait perform `video` (`facecast.capture`): captured frame by frame and
        rendered as it goes, in constant memory, at the video's frame rate, with the video's audio
        muxed (`audio`, a file path, replaces it). mode: "relative" (the driver's changes from its
        first frame on the portrait's own expression and pose) or "absolute" (the driver's
        weights as they are); see `capture.retarget`. face: which face of the video (0 = largest).
        report: a list that receives the `CaptureReport` (gaps filled, faces) before the first frame.
        save_motion: also write the portrait's motion (.json or .csv; held in memory until the end,
        60 floats a frame)."""
        from .capture.core import MAX_GAP_S, Capture
        from .capture.retarget import Retargeter
        retarget = Retargeter(self.rig.expression.weights, mode, motion_scale, expression_scale, gaze)
        cap = Capture(video, face=face, max_gap_s=MAX_GAP_S if max_gap_s is None else max_gap_s)
        out = check_output_path(output, [self.source, video, audio])
        check_motion_path(save_motion)
        sound = video if audio is None else audio
        load_audio_info(sound)  # fail early: no audio track, bad audio
        if report is not None:
            report.append(cap.report)
        fps = cap.info.fps

        def motion_chunks(n: int = 8):
            buf: list[MotionFrame] = []
            for m in cap:
                buf.append(retarget(m))
                if len(buf) == n:
                    yield MotionSequence.from_frames(buf, fps)
                    buf = []
            if buf:
                yield MotionSequence.from_frames(buf, fps)

        res = self._write(out, fps, motion_chunks(), cap.info.frames, iter_audio(sound, MUX_RATE), MUX_RATE,
                          progress, [] if save_motion is not None else None, writer_kw, mark)
        if save_motion is not None:
            res.motion.save(save_motion)
        return res

    def _write(self, out: Path, fps: float, motion_chunks, total: int, mux, mux_rate: int | None,
               progress, keep: list | None, writer_kw: dict, mark: Watermark | None = None) -> RenderResult:
        """Render motion chunks to `out`, muxing audio chunks from `mux` (at `mux_rate`) in step,
        `MUX_AHEAD_S` ahead of the frames; the track is trimmed or padded to the video's length.
        Every frame carries `mark` (a new one by default) and the container says it is synthetic."""
        t0 = time.perf_counter()
        muxed = 0
        mark = mark or self.new_mark()
        payload = mark.payload if mark else None
        writer_kw = {"metadata": container_tags(payload), "sign_payload": payload, **writer_kw}
        with VideoWriter(out, fps, self.frame_size, audio_rate=mux_rate, **writer_kw) as vw:

            def feed(upto_s: float) -> None:
                """Mux audio until `upto_s`, never past the video's expected end."""
                nonlocal muxed
                need = int(round(min(upto_s, total / fps) * mux_rate))
                while muxed < need:
                    chunk = next(mux, None)
                    if chunk is None:
                        return
                    chunk = chunk[:int(round(total / fps * mux_rate)) - muxed]
                    vw.write_audio(chunk)
                    muxed += len(chunk)

            for motion in motion_chunks:
                if keep is not None and len(motion):
                    keep.append(motion)
                for m in motion:
                    vw.write(self.frame(m, mark))
                    if mux is not None:
                        feed(vw.frames_written / fps + MUX_AHEAD_S)
                    if progress:
                        progress(vw.frames_written, max(total, vw.frames_written))
            frames = vw.frames_written
            if mux is not None:
                total = max(total, frames)
                feed(frames / fps)  # the rest; the writer pads or trims it to the video's length
        motion = concat_motion(keep, fps) if keep is not None else None
        return RenderResult(out, frames, frames / fps, fps, time.perf_counter() - t0, motion,
                            mark.video_id if mark else None)


def render(image, audio, output: str | os.PathLike, *, size: int = 512, face: int = 0, fps: float = 25.0,
           full_frame: bool = False, save_motion: str | os.PathLike | None = None,
           controls: Controls | ControlTrack | str | os.PathLike | None = None, **control_values) -> RenderResult:
    """One call: portrait + speech -> video. Control keywords are those of `Controls`
    (emotion='happy:0.7', gaze=(10, 0), head_distance, head_offset, motion_scale,
    expression_scale, blink_rate, seed); `controls` may also be a controls JSON file."""
    base = Controls(**control_values)
    if isinstance(controls, (str, os.PathLike)):
        controls = ControlTrack.load(controls, base)
    elif controls is None:
        controls = base
    return Animator(image, size=size, face=face, full_frame=full_frame).render(
        audio, output, fps=fps, controls=controls, save_motion=save_motion)
