"""Faces that are not photographs: a face emoji rendered large from Debian's fonts-noto-color-emoji."""
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from facecast.face.rig import build_rig
from facecast.motion.types import MotionFrame
from facecast.rendering.renderer import Renderer

EMOJI_FONT = Path("/usr/share/fonts/truetype/noto/NotoColorEmoji.ttf")  # installed by .ci/run


def emoji_image(char: str) -> np.ndarray:
    assert EMOJI_FONT.exists(), "install Debian's fonts-noto-color-emoji (.ci/run does)"
    font = ImageFont.truetype(str(EMOJI_FONT), 109)  # the bitmap font's native size
    im = Image.new("RGB", (408, 408), (255, 255, 255))
    ImageDraw.Draw(im).text((136, 136), char, font=font, embedded_color=True)
    return np.asarray(im.resize((600, 600), Image.LANCZOS))


def test_emoji_face_animates(tracker):
    rig = build_rig(emoji_image("\U0001F642"), 256, tracker=tracker)
    r = Renderer(rig)
    still = r.render(MotionFrame(blendshapes=rig.expression.weights))  # the photo's own expression
    assert np.array_equal(still, rig.image)
    opened = r.render(MotionFrame(blendshapes={"jawOpen": 0.8}))
    turned = r.render(MotionFrame(rotation=[0, 15, 0]))
    y0, y1 = int(rig.landmarks[13, 1]) - 10, int(rig.landmarks[152, 1])
    x0, x1 = int(rig.landmarks[61, 0]) - 5, int(rig.landmarks[291, 0]) + 5
    assert np.abs(opened[y0:y1, x0:x1].astype(int) - still[y0:y1, x0:x1]).mean() > 5
    assert np.abs(turned.astype(int) - still).mean() > 2
