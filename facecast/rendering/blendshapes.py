"""The blendshape model lives in `facecast.face.blendshapes` (the rig fits it to the photo, the
renderer deforms with it); re-exported here for code that imported it from the renderer."""
from ..face.blendshapes import JAW_MAX_DEG, BlendshapeBasis, build_deltas  # noqa: F401
