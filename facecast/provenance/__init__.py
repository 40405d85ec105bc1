"""Provenance: every facecast video says that it is synthetic.

- `watermark`: an invisible mark in every frame's pixels (format version, facecast version, a
  random id per video) that survives re-encoding, downscaling, cropping and frame-rate changes;
  `Animator.frame` adds it to every frame of every path.
- `metadata`: container tags (synthetic, made by facecast) and an optional signed C2PA manifest.
- `verify`: the check behind `facecast verify` and `POST /api/verify`.
"""
from .watermark import Detection, Detector, Payload, Watermark, detect

__all__ = ["Watermark", "Payload", "Detection", "Detector", "detect"]
