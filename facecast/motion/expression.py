"""Expression on top of articulation: brows that lift with emphasis, and the emotion controls.

Emotions (happy, sad, angry, surprised, blended) add their blendshapes; `eyeLook*` mirror the gaze
for exporters (the renderer uses the gaze angles). Weights are absolute (0 = a neutral face), so
`expression_scale` scales the emotions too: 0 gives a neutral face whatever the photo shows.
"""
from __future__ import annotations

import numpy as np

from .types import BLENDSHAPE_INDEX as BI


def add_expression(shapes: np.ndarray, emotion, emphasis: float, expression_scale: float) -> None:
    """Add brow emphasis and the emotion's shapes to `shapes` (52,) float64, in place.
    emotion: (4,) intensities of happy, sad, angry, surprised."""
    es = expression_scale
    h, s_, a_, su = (float(v) * es for v in emotion)
    shapes[BI["browInnerUp"]] += 0.45 * emphasis * es + 0.7 * s_ + 0.6 * su
    shapes[BI["browOuterUpLeft"]] += 0.3 * emphasis * es + 0.8 * su
    shapes[BI["browOuterUpRight"]] += 0.3 * emphasis * es + 0.8 * su
    for side in ("Left", "Right"):
        shapes[BI[f"mouthSmile{side}"]] += 0.75 * h
        shapes[BI[f"cheekSquint{side}"]] += 0.5 * h
        shapes[BI[f"eyeSquint{side}"]] += 0.25 * h + 0.3 * a_
        shapes[BI[f"mouthFrown{side}"]] += 0.65 * s_
        shapes[BI[f"browDown{side}"]] += 0.8 * a_
        shapes[BI[f"noseSneer{side}"]] += 0.3 * a_
        shapes[BI[f"mouthPress{side}"]] += 0.25 * a_ + 0.15 * s_
        shapes[BI[f"eyeWide{side}"]] += 0.6 * su
    shapes[BI["jawOpen"]] += 0.12 * su


def mirror_gaze(shapes: np.ndarray, gaze: np.ndarray) -> None:
    """Set the eight `eyeLook*` weights of `shapes` (52,) from gaze (2,) yaw, pitch degrees."""
    gy, gp = gaze
    shapes[BI["eyeLookOutLeft"]] = shapes[BI["eyeLookInRight"]] = max(0.0, gy) / 30.0
    shapes[BI["eyeLookInLeft"]] = shapes[BI["eyeLookOutRight"]] = max(0.0, -gy) / 30.0
    shapes[BI["eyeLookUpLeft"]] = shapes[BI["eyeLookUpRight"]] = max(0.0, gp) / 25.0
    shapes[BI["eyeLookDownLeft"]] = shapes[BI["eyeLookDownRight"]] = max(0.0, -gp) / 25.0
