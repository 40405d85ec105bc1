"""Rendering: rig + motion frame -> RGB frame. `renderer.Renderer` deforms the mesh
(`blendshapes`), warps the photo densely, then draws the eyes (`eyes`) and the mouth interior
(`mouth`). `renderer.FullFramePaster` puts a frame back into the whole photo.
"""
