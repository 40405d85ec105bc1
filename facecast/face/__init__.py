"""Face rig (appearance) from one image: the face, its 478 3D landmarks, head pose, masks and the
background behind the person. `build_rig` is the entry point; `FaceRig` is what it makes.

Modules: `image_io` (reading any image), `tracking` (MediaPipe's detector, mesh and segmentation),
`topology` (named landmark loops, the lip-gap measure), `headpose` (pose from landmarks), `rig`,
`overlay` (the `facecast analyze` picture).
"""
