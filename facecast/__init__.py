"""facecast: one portrait photo + one speech track -> a talking-face video, in real time on a CPU.

The public API is what this module exports; everything else is internal. The package is laid
out by pipeline stage, one folder each, and `pipeline.Animator` is the one place they meet:

- `face/`: the face rig (appearance) from one image: image input, tracking, topology, head pose;
- `audio/`: decoding, the causal acoustic analysis, speech synthesis (eSpeak NG);
- `motion/`: the motion type, controls, the audio -> motion generator and presets;
- `rendering/`: rig + motion -> frame (mesh deformation, warp, eyes, mouth interior);
- `evaluation/`: re-tracking rendered frames and the lip-sync evaluation;
- `live/`: the live server (WebSocket streaming, HTTP API, the page);
- `batching/`: many jobs from a manifest, on a local process pool or Ray;
- top level: `pipeline` (Animator), `video` (encoding), `footage` (decoding), `outputs` / `inputs`
  (files), `cli`, `errors`.
"""
from .batching.runner import BatchSummary
from .batching.runner import run_batch as batch
from .errors import FacecastError, FacecastWarning
from .face.rig import FaceRig, build_rig
from .motion.controls import Controls, ControlTrack
from .motion.generator import MotionGenerator, generate_motion
from .motion.types import BLENDSHAPE_NAMES, MotionFrame, MotionSequence
from .pipeline import Animator, FrameStream, RenderResult, render
from .rendering.renderer import Renderer

__all__ = ["Animator", "FrameStream", "RenderResult", "render", "Controls", "ControlTrack", "MotionGenerator",
           "generate_motion", "BLENDSHAPE_NAMES", "MotionFrame", "MotionSequence", "Renderer", "FaceRig",
           "build_rig", "batch", "BatchSummary", "FacecastError", "FacecastWarning"]
__version__ = "0.1.0"
