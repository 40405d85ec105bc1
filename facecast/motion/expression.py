"""Expression on top of articulation: brows that lift with emphasis, and the emotion controls.

Each emotion is a documented combination of FACS action units (Ekman & Friesen's prototypes), and
each action unit a combination of ARKit blendshapes (`ACTION_UNITS`):

| emotion   | action units                                                    |
|-----------|-----------------------------------------------------------------|
| happy     | AU6 cheek raiser + AU12 lip-corner puller                       |
| sad       | AU1 inner-brow raiser + AU4 brow lowerer (light) + AU15 lip-corner depressor (+ AU17) |
| angry     | AU4 brow lowerer + AU5 upper-lid raiser + AU7 lid tightener + AU23/24 lip tightener/presser |
| surprised | AU1 + AU2 outer-brow raiser + AU5 + AU26 jaw drop               |
| disgusted | AU9 nose wrinkler + AU10 upper-lip raiser (+ AU4, AU15, AU17)   |
| fearful   | AU1 + AU2 + AU4 + AU5 + AU20 lip stretcher (+ AU26)             |
| contempt  | AU14 dimpler, one side (the subject's left)                     |

Emotions blend by adding their shapes (clipped to 0..1 by the generator), on top of speech: the
mouth shapes they use add to the visemes'. `eyeLook*` mirror the gaze for exporters (the renderer
uses the gaze angles). Weights are absolute (0 = a neutral face), so `expression_scale` scales the
emotions too: 0 gives a neutral face whatever the photo shows.
"""
from __future__ import annotations

import numpy as np

from .controls import EMOTIONS
from .types import BLENDSHAPE_INDEX as BI

#: FACS action unit -> ARKit blendshape weights at the unit's full intensity. "_L"/"_R" suffixes
#: are spelled out; a name without a side that has Left/Right forms means both sides.
ACTION_UNITS: dict[str, dict[str, float]] = {
    "AU1": {"browInnerUp": 1.0},                                  # inner-brow raiser
    "AU2": {"browOuterUp": 1.0},                                  # outer-brow raiser
    "AU4": {"browDown": 1.0},                                     # brow lowerer: down and together
    "AU5": {"eyeWide": 1.0},                                      # upper-lid raiser
    "AU6": {"cheekSquint": 1.0, "eyeSquint": 0.6},                 # cheek raiser, lower lid pushed up
    "AU7": {"eyeSquint": 0.6},                                    # lid tightener
    "AU9": {"noseSneer": 1.0, "browDown": 0.3},                   # nose wrinkler (pulls brows down)
    "AU10": {"mouthUpperUp": 1.0},                                # upper-lip raiser
    "AU12": {"mouthSmile": 1.0},                                  # lip-corner puller
    "AU14L": {"mouthDimpleLeft": 1.0, "mouthSmileLeft": 0.3, "mouthPressLeft": 0.3},  # dimpler, one side
    "AU15": {"mouthFrown": 1.0},                                  # lip-corner depressor
    "AU17": {"mouthShrugLower": 1.0},                             # chin raiser
    "AU20": {"mouthStretch": 1.0},                                # lip stretcher
    "AU23": {"mouthPucker": 0.15, "mouthRollUpper": 0.2, "mouthRollLower": 0.2},  # lip tightener
    "AU24": {"mouthPress": 1.0},                                  # lip presser
    "AU26": {"jawOpen": 1.0},                                     # jaw drop
}

#: emotion -> action-unit intensities at emotion intensity 1
EMOTION_AUS: dict[str, dict[str, float]] = {
    "happy": {"AU6": 1.0, "AU12": 1.0},
    "sad": {"AU1": 1.0, "AU4": 0.2, "AU15": 1.0, "AU17": 0.3},
    "angry": {"AU4": 1.0, "AU5": 0.35, "AU7": 0.6, "AU23": 1.0, "AU24": 0.6},
    "surprised": {"AU1": 0.8, "AU2": 1.0, "AU5": 1.0, "AU26": 0.5},
    "disgusted": {"AU9": 1.0, "AU10": 0.7, "AU4": 0.4, "AU15": 0.5, "AU17": 0.3},
    "fearful": {"AU1": 1.0, "AU2": 0.6, "AU4": 0.35, "AU5": 1.0, "AU20": 1.0, "AU26": 0.1},
    "contempt": {"AU14L": 1.0},
}


def _names(name: str) -> list[str]:
    return [name + "Left", name + "Right"] if name + "Left" in BI else [name]


def _emotion_matrix() -> np.ndarray:
    """(len(EMOTIONS) - 1, 52): blendshape weights of each emotion at intensity 1."""
    from .types import NUM_BLENDSHAPES
    m = np.zeros((len(EMOTIONS) - 1, NUM_BLENDSHAPES))
    for i, emo in enumerate(EMOTIONS[1:]):
        for au, a in EMOTION_AUS[emo].items():
            for shape, w in ACTION_UNITS[au].items():
                for n in _names(shape):
                    m[i, BI[n]] += a * w
    return m


EMOTION_SHAPES = _emotion_matrix()


#: how much brows, eyes and smile follow the voice (see `voice_drive`); 0 turns it off
VOICE_EXPRESSION = 1.0


def voice_drive(prosody) -> tuple[float, float]:
    """(arousal, pitch) in -1..1 from the voice so far, 0 in pauses: arousal is how much louder
    the voice is than its running level (fast against slow loudness, as accents are found; 0.05
    above it reads 0, 0.3 above reads 1), pitch how far F0 is above the speaker's running mean
    (0.3 octave = 1). Both are read from the sound alone: how the voice is produced, not what the
    speaker feels."""
    talk = float(np.clip(prosody.talk, 0.0, 1.0))
    arousal = float(np.clip((prosody.loud_fast - prosody.loud_slow - 0.05) / 0.25, -1.0, 1.0)) * talk
    pitch = float(np.clip(prosody.f0_dev / 0.3, -1.0, 1.0)) * talk
    return arousal, pitch


def add_expression(shapes: np.ndarray, emotion, emphasis: float, expression_scale: float,
                   voice=None) -> None:
    """Add brow emphasis, the voice-driven expression and the emotion's shapes to `shapes` (52,)
    float64, in place. emotion: intensities in the order of EMOTIONS[1:] (four, the older form,
    are read too); voice: a `Prosody` (None: no voice-driven expression).

    Following the voice, as speakers' faces do: brows rise with emphasis (accents) and with the
    pitch rising above the speaker's mean, eyes open a little and the smile grows (more so when
    the emotion is happy) with loudness above the running level. Small amounts: the emotion
    controls and keyframes set the face; the voice modulates it."""
    es = expression_scale
    e = np.zeros(len(EMOTION_SHAPES))
    v = np.asarray(emotion, np.float64).reshape(-1)
    e[:len(v)] = v
    shapes += es * (e @ EMOTION_SHAPES)
    brow = 0.45 * emphasis
    outer = 0.3 * emphasis
    if voice is not None and VOICE_EXPRESSION > 0:
        arousal, pitch = voice_drive(voice)
        up, loud = max(pitch, 0.0), max(arousal, 0.0)
        g = VOICE_EXPRESSION * es
        brow += VOICE_EXPRESSION * (0.2 * up + 0.1 * loud)
        outer += VOICE_EXPRESSION * (0.15 * up + 0.1 * loud)
        for side in ("Left", "Right"):
            shapes[BI[f"eyeWide{side}"]] += g * (0.1 * loud + 0.05 * up)
            shapes[BI[f"mouthSmile{side}"]] += g * (0.05 + 0.3 * e[0]) * loud
    shapes[BI["browInnerUp"]] += brow * es
    shapes[BI["browOuterUpLeft"]] += outer * es
    shapes[BI["browOuterUpRight"]] += outer * es


def mirror_gaze(shapes: np.ndarray, gaze: np.ndarray) -> None:
    """Set the eight `eyeLook*` weights of `shapes` (52,) from gaze (2,) yaw, pitch degrees."""
    gy, gp = gaze
    shapes[BI["eyeLookOutLeft"]] = shapes[BI["eyeLookInRight"]] = max(0.0, gy) / 30.0
    shapes[BI["eyeLookInLeft"]] = shapes[BI["eyeLookOutRight"]] = max(0.0, -gy) / 30.0
    shapes[BI["eyeLookUpLeft"]] = shapes[BI["eyeLookUpRight"]] = max(0.0, gp) / 25.0
    shapes[BI["eyeLookDownLeft"]] = shapes[BI["eyeLookDownRight"]] = max(0.0, -gp) / 25.0
