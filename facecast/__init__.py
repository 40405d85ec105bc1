"""facecast: one portrait photo + motion or speech -> a talking-face video, in real time on a CPU.

Stages (one module each): `rig` (face rig from one photo), `motion` (the per-frame motion type),
`blendshapes` (expression as 3D mesh deformation), `render` (rig + motion -> frame, with `eyes`
and `mouth`), `audio` + `acoustics` + `generator` (speech -> motion, with `controls`), `video`
(encoding), `pipeline` (the end-to-end job, `render`), `cli` (the command line).
"""
from .controls import Controls, ControlTrack
from .errors import FacecastError
from .generator import MotionGenerator, generate_motion
from .motion import BLENDSHAPE_NAMES, MotionFrame, MotionSequence
from .render import FullFramePaster, Renderer, render_frame
from .pipeline import Animator, RenderResult, render
from .rig import FaceRig, build_rig

__all__ = ["Animator", "Controls", "ControlTrack", "MotionGenerator", "RenderResult", "generate_motion", "render",
           "FacecastError", "BLENDSHAPE_NAMES", "MotionFrame", "MotionSequence", "Renderer", "render_frame",
           "FullFramePaster", "FaceRig", "build_rig"]
__version__ = "0.1.0"
