"""facecast: one portrait photo + motion or speech -> a talking-face video, in real time on a CPU.

Stages (one module each): `rig` (face rig from one photo), `motion` (the per-frame motion type),
`blendshapes` (expression as 3D mesh deformation), `render` (rig + motion -> frame, with `eyes`
and `mouth`), `video` (encoding), `cli` (the command line).
"""
from .errors import FacecastError
from .motion import BLENDSHAPE_NAMES, MotionFrame, MotionSequence
from .render import FullFramePaster, Renderer, render_frame
from .rig import FaceRig, build_rig

__all__ = ["FacecastError", "BLENDSHAPE_NAMES", "MotionFrame", "MotionSequence", "Renderer", "render_frame",
           "FullFramePaster", "FaceRig", "build_rig"]
__version__ = "0.1.0"
