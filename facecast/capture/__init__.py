"""Motion capture: footage of a face -> facecast motion (the video half of driving a portrait).

A stage of its own, between `face/` (tracking, head pose, the expression fit it reuses) and
`motion/` (the `MotionSequence` it produces); `pipeline.Animator.drive` plays its output on a
portrait. Imports go one way: capture -> face, motion, audio; nothing below imports capture.

- `capture.core`: stream a video with PyAV frame by frame, track the face, measure per frame
  head pose, absolute blendshape weights (the rig's own `fit_expression`), gaze and blinks; fill
  frames without a face; smooth (`Capture`, `capture`, `events`).
- `capture.retarget`: captured frames -> motion for another portrait (`--relative`, `--absolute`).
"""
from ..footage import VideoInfo, video_info
from .core import Capture, CaptureReport, capture, events
from .retarget import Retargeter

__all__ = ["Capture", "CaptureReport", "Retargeter", "VideoInfo", "capture", "events", "video_info"]
