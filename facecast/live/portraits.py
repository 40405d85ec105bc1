"""The portraits a server animates: the samples, the default one and uploads, each rigged once on
one thread that owns the face tracker (`PortraitStore`), then shared read-only by live sessions."""
import asyncio
import collections
import concurrent.futures
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import FacecastError

MAX_UPLOADED_PORTRAITS = 8          # kept in memory, oldest dropped first


@dataclass
class Portrait:
    """A portrait the server can animate: an id, a display name and (once built) its Animator."""

    id: str
    name: str
    source: Any                      # a path, an array, or a callable returning an array
    builtin: bool = False
    animator: Any = None
    error: str | None = None
    thumbnail: bytes | None = None
    mouth_box: tuple[int, int, int, int] | None = None
    notices: list[str] = field(default_factory=list)
    created: float = field(default_factory=time.time)

    def info(self) -> dict:
        return {"image_id": self.id, "name": self.name, "builtin": self.builtin,
                "ready": self.animator is not None, "error": self.error,
                "thumbnail": f"/api/portrait/{self.id}.jpg", "notices": self.notices}


def sample_portraits() -> list[tuple[str, str, Any]]:
    def hopper():
        import matplotlib.cbook
        return matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)

    def astronaut():
        import skimage.data
        return skimage.data.astronaut()
    return [("hopper", "Grace Hopper (sample)", hopper), ("astronaut", "Eileen Collins (sample)", astronaut)]


class PortraitStore:
    """Rigs built once per portrait, on one thread that owns the face tracker; shared read-only by sessions
    (`Renderer.render` keeps no per-call state)."""

    def __init__(self, size: int = 512):
        self.size = size
        self._items: "collections.OrderedDict[str, Portrait]" = collections.OrderedDict()
        self._lock = threading.Lock()
        self._pool = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="facecast-rig")
        self._tracker = None
        self._building: dict[str, concurrent.futures.Future] = {}

    def add(self, p: Portrait) -> Portrait:
        with self._lock:
            self._items[p.id] = p
            uploads = [k for k, v in self._items.items() if not v.builtin]
            for k in uploads[:max(0, len(uploads) - MAX_UPLOADED_PORTRAITS)]:
                del self._items[k]
        return p

    def remove(self, pid: str) -> None:
        with self._lock:
            self._items.pop(pid, None)

    def put_first(self, pid: str) -> None:
        """List this portrait first."""
        with self._lock:
            self._items.move_to_end(pid, last=False)

    def list(self) -> list[Portrait]:
        with self._lock:
            return list(self._items.values())

    def find(self, pid: str) -> Portrait | None:
        with self._lock:
            return self._items.get(pid)

    def _build(self, p: Portrait) -> Portrait:
        """On the rig thread: build the rig, renderer, thumbnail and mouth box."""
        if p.animator is not None or p.error is not None:
            return p
        from ..face.rig import build_rig
        from ..face.tracking import FaceTracker
        from ..pipeline import Animator
        try:
            src = p.source() if callable(p.source) else p.source
            if self._tracker is None:
                self._tracker = FaceTracker()
            rig = build_rig(src, size=self.size, tracker=self._tracker)
            return self.finish(p, Animator(src, rig=rig))
        except FacecastError as e:
            p.error = str(e)
        except Exception as e:  # noqa: BLE001 - an unusable image must not take the server down
            p.error = f"this image cannot be animated ({type(e).__name__}: {e})"
        return p

    @staticmethod
    def finish(p: Portrait, anim) -> Portrait:
        """Thumbnail, mouth box and a warm renderer for a portrait whose rig is built."""
        import cv2
        rig = anim.rig
        anim.frame(_neutral())          # warm up (first call builds lazy tables)
        ok, jpg = cv2.imencode(".jpg", cv2.cvtColor(rig.image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85])
        p.thumbnail = jpg.tobytes() if ok else None
        ys, xs = np.nonzero(rig.masks["lips"] > 127)
        if len(xs):
            pad = int(0.15 * (xs.max() - xs.min()))
            x0, y0 = max(0, xs.min() - pad), max(0, ys.min() - pad)
            x1, y1 = min(rig.size, xs.max() + pad + 1), min(rig.size, ys.max() + 2 * pad + 1)
            p.mouth_box = (int(x0), int(y0), int(x1 - x0), int(y1 - y0))
        p.notices = list(rig.notices)
        p.animator = anim
        return p

    def build(self, p: Portrait) -> concurrent.futures.Future:
        with self._lock:
            f = self._building.get(p.id)
            if f is None or (f.done() and p.animator is None and p.error is None):
                f = self._pool.submit(self._build, p)
                self._building[p.id] = f
            return f

    async def ready(self, p: Portrait) -> Portrait:
        return await asyncio.wrap_future(self.build(p))

    def rig_for_render(self, image_path: str):
        """A fresh rig for the render API (on the rig thread)."""
        from ..face.rig import build_rig
        from ..face.tracking import FaceTracker

        def run():
            if self._tracker is None:
                self._tracker = FaceTracker()
            return build_rig(image_path, size=self.size, tracker=self._tracker)
        return self._pool.submit(run)

    def close(self) -> None:
        def shut():
            if self._tracker is not None:
                self._tracker.close()
                self._tracker = None
        try:
            self._pool.submit(shut).result(timeout=5)
        except Exception:  # noqa: BLE001 - closing anyway
            pass
        self._pool.shutdown(wait=False, cancel_futures=True)


def _neutral():
    from ..motion.types import MotionFrame
    return MotionFrame(rotation=[0.5, 0, 0])
