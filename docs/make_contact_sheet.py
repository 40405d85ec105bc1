"""Render the README's pictures: the contact sheet (poses, smile, open mouth, blink and gaze on two
real photos) and a strip of frames from a real render of `facecast demo`.

    facecast demo -o demo.mp4 && python docs/make_contact_sheet.py
        ->   docs/contact_sheet.png, docs/render_strip.png
"""
from pathlib import Path

import cv2
import matplotlib.cbook
import numpy as np
import skimage.data

from facecast.face.rig import build_rig
from facecast.motion.types import MotionFrame
from facecast.rendering.renderer import Renderer

CASES = [("rest (weights 0)", MotionFrame()), ("yaw +20", MotionFrame(rotation=[0, 20, 0])),
         ("pitch +15", MotionFrame(rotation=[15, 0, 0])), ("roll -15", MotionFrame(rotation=[0, 0, -15])),
         ("smile", MotionFrame(blendshapes={"mouthSmileLeft": 1, "mouthSmileRight": 1, "cheekSquintLeft": 0.5,
                                            "cheekSquintRight": 0.5})),
         ("jawOpen 0.6", MotionFrame(blendshapes={"jawOpen": 0.6})),
         ("blink", MotionFrame(blendshapes={"eyeBlinkLeft": 1, "eyeBlinkRight": 1})),
         ("gaze right+up", MotionFrame(gaze=[25, 10]))]


def main():
    photos = [matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False), skimage.data.astronaut()]
    rows = []
    for p in photos:
        r = Renderer(build_rig(p, 384))
        tiles = []
        for label, m in CASES:
            f = r.render(m)
            cv2.putText(f, label, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (0, 0, 0), 4, cv2.LINE_AA)
            cv2.putText(f, label, (8, 24), cv2.FONT_HERSHEY_SIMPLEX, 0.7, (255, 255, 255), 2, cv2.LINE_AA)
            tiles.append(f)
        rows.append(np.concatenate(tiles, 1))
    sheet = np.concatenate(rows, 0)
    sheet = cv2.resize(sheet, None, fx=0.6, fy=0.6, interpolation=cv2.INTER_AREA)
    out = Path(__file__).with_name("contact_sheet.png")
    cv2.imwrite(str(out), sheet[:, :, ::-1])
    print(out)




def render_strip(video: str = "demo.mp4", every: int = 6, count: int = 8) -> Path:
    """A strip of frames from a real render (`facecast demo`) -> docs/render_strip.png."""
    import av
    with av.open(video) as c:
        frames = [f.to_ndarray(format="rgb24") for i, f in enumerate(c.decode(video=0)) if i % every == 0]
    tiles = [cv2.resize(f, (256, 256), interpolation=cv2.INTER_AREA) for f in frames[2:2 + count]]
    out = Path(__file__).with_name("render_strip.png")
    cv2.imwrite(str(out), np.concatenate(tiles, 1)[:, :, ::-1])
    return out


if __name__ == "__main__":
    main()
    if Path("demo.mp4").exists():
        print(render_strip("demo.mp4"))
