"""Motion, the latent the rest speaks: `types.MotionFrame` / `MotionSequence` (head pose, ARKit
blendshapes, gaze; JSON and CSV), `controls` (emotion, gaze, head distance, ...), the streaming
audio -> motion `generator` (built from `articulation`, `prosody`, `head`, `eyes`, `expression`)
and hand-made `presets`.
"""
