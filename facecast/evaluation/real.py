"""Evaluation against real video: how close does facecast come to a real speaker?

For each real talking clip (a video with its own speech track): the first frame is the portrait,
it is rendered with the clip's own audio through `facecast.pipeline.Animator` (default controls,
the same path as `facecast render`), and both videos, the real one and the rendered one, are
re-tracked frame by frame with the face mesh (one `FaceTracker`, reused). The two sets of tracks
are then compared (`compare_tracks`, pure numbers). `facecast eval real` (`evaluation.cli`) is
the command line; it works on anyone's footage: one person facing the camera, speaking.

Definitions (frame i shows time i / fps; the rendered video has the real clip's frame rate and is
cut to the shorter of the two; frames where no face is found are filled by interpolation and
counted in `frames_lost_*`):

- Reference face: the landmarks tracked on the real clip's first frame (the portrait). Each
  frame's head pose is `headpose.relative_pose` of its rigid points against it; since that is
  a similarity fit, the rendered crop (a scaled copy of the portrait) and the real frame share
  the same reference. IOD (inter-ocular distance) is the outer eye-corner distance, as in
  `topology.lip_gap`.
- Lip gap g_i: `topology.lip_gap` (inner-lip gap in IODs), the project's one lip-gap measure.
- Mouth-opening correlation: Pearson r of the rendered g with the real g at lag 0 (`corr_lag0`);
  and the peak over shifts within +-`LAG_SEARCH_S` (`corr_best`), with the shift itself
  (`best_lag_ms`, refined by a parabola; `metrics.estimate_lag`). Sign: best_lag_ms > 0 means
  the rendered mouth moves *after* the real mouth (facecast lags), < 0 that it moves before it.
- Lips closed: the share of frames with g < `CLOSED_GAP` (0.04 IOD), per video; `closed_ratio`
  = facecast / real (NaN when the real lips never close).
- Lips closed while voiced: the same share over the frames whose audio is voiced (the clip's own
  speech track, `acoustics.analyze` voicing above `VOICED_MIN` at the frame's time):
  `closed_voiced_real`, `closed_voiced_facecast`. Real speakers' lips part on most voiced frames;
  a mouth that seals through murmurs and valleys reads far above the real share. Reported, not
  checked.
- Opening speed: the mean of |g_{i+1} - g_i| x fps (IODs per second), per video; the ratio says
  how much faster (> 1, "flappy") or slower the rendered mouth moves.
- Head pose std: the pose track is first low-passed exactly as `metrics.head_delta` does (a
  Gaussian of sigma `metrics.HEAD_SMOOTH_S`, 120 ms, which removes most of the face mesh's
  frame-to-frame pose jitter); then the standard deviation of each angle over the clip, combined
  as the root mean square over pitch, yaw and roll (degrees).
- Head motion: `metrics.head_delta` (the same smoothing, then the mean norm of the frame-to-frame
  change, degrees per frame).
- Blink rate: `metrics.count_blinks` on the mean eye opening of both eyes, per minute of clip.
- Mouth shape: each frame's 40 lip landmarks (outer and inner contour) are mapped into the
  reference face's frame by the similarity that fits the frame's rigid points onto the
  reference's (this removes head pose, position and size); `mouth_shape` is the mean over frames
  and points of the 2D distance between the real and the rendered lip points, in IODs.
  `mouth_shape_still` is the same distance for a face that never moves its mouth (the real lips
  against the reference's own): a rendered mouth that moves like the real one scores below it.
- Head motion against a still render (optional, `still_baseline=True`): the clip is rendered a
  second time with `motion_scale=0`; `still_ratio` = head motion of the default render / that
  of the still one. The still render's reading is the tracker's noise floor on that clip.
- Mouth interior (issue 10): `INTERIOR_MEASURES`, read by a probe with the signature of
  `InteriorProbe` (frame, landmarks -> {measure: value} or None); `evaluate_real_clip` uses
  `interior.interior_probe` unless given another (`probe=False`: none, the columns read None).
  The mean over open-mouth frames (g >= `OPEN_GAP`) is reported for both videos and as a ratio:
  interior lightness (L* inside the inner-lip outline / the cheeks'), teeth share, edge contrast
  (L* gradient on the outline) and lower-lip thickness (IODs). They are reported, not checked.

Targets (`TARGETS`, facecast / real unless noted) are those of issue 12; `RealClipReport.checks`
checks a clip, and `median_report` gives the median of every figure over clips, which is what
`facecast eval real --check` checks.
"""
from __future__ import annotations

import math
import os
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np

from ..audio.acoustics import HOP_S, VOICED_MIN, analyze
from ..audio.io import load_audio
from ..errors import FacecastError
from ..face import topology as topo
from ..face.headpose import relative_pose, rigid_align
from ..face.tracking import FaceTracker
from ..footage import VideoInfo, iter_frames, video_info
from .metrics import (
    HEAD_SMOOTH_S,
    CheckedReport,
    count_blinks,
    estimate_lag,
    head_delta,
)
from .retrack import eye_openness

#: video id carried by the watermark of every evaluation render
EVALUATION_VIDEO_ID = "e7a1e7a1"

CLOSED_GAP = 0.04            # lips closed: inner-lip gap below this many IODs (issue 12)
OPEN_GAP = 0.1               # mouth open (for the interior measures): gap at least this many IODs
                             # (real speakers pass 0.15 in only a few frames a clip)
LAG_SEARCH_S = 0.2           # best-lag search range +-
MIN_CLIP_S = 2.0             # shortest clip compared: a correlation over a lag search of
                             # +-LAG_SEARCH_S, an opening speed and a blink rate need seconds of
                             # talking (the GRID corpus' 3 s sentences are the shortest real clips)
MOUTH_POINTS = np.array(topo.LIPS_OUTER + topo.LIPS_INNER)
#: Measures of the mouth interior (issue 10), reserved here: open-mouth frames, facecast / real.
INTERIOR_MEASURES = ("interior_lightness", "teeth_share", "edge_contrast", "lower_lip_thickness")
#: probe(frame RGB uint8, landmarks (478, 3) pixels) -> {name in INTERIOR_MEASURES: value} or None
InteriorProbe = Callable[[np.ndarray, np.ndarray], "dict[str, float] | None"]

#: Targets of issue 12: name -> (low, high), None = unbounded; best_lag_ms is checked as given.
TARGETS: dict[str, tuple[float | None, float | None]] = {
    "head_std_ratio": (0.75, 1.4),
    "head_motion_ratio": (0.75, 1.4),
    "opening_speed_ratio": (0.7, 1.3),
    "best_lag_ms": (-40.0, 40.0),
    "corr_best": (0.5, None),
    "closed_ratio": (0.6, None),
    "blink_rate_facecast": (15.0, 30.0),
    "still_ratio": (1.5, None),
}


# ---- tracks ------------------------------------------------------------------------------------
@dataclass
class FaceTracks:
    """Per-frame measurements of one video, relative to a reference face (NaN-free after filling).

    gap (T,) lip gap in IODs; eye (T,) mean eye opening; pose (T, 3) pitch, yaw, roll degrees
    against the reference; mouth (T, 40, 2) lip points in the reference's frame, in IODs;
    lost: frames where no face was found (filled by interpolation).
    """

    fps: float
    gap: np.ndarray
    eye: np.ndarray
    pose: np.ndarray
    mouth: np.ndarray
    lost: int = 0
    interior: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.gap)


def _iod(lm: np.ndarray) -> float:
    return float(np.linalg.norm(lm[topo.LEFT_EYE_CORNERS[0], :2] - lm[topo.RIGHT_EYE_CORNERS[0], :2]))


def face_tracks(landmarks: list[np.ndarray | None], reference: np.ndarray, fps: float,
                interior: list[dict | None] | None = None) -> FaceTracks:
    """Tracks from per-frame landmarks ((478, 3) pixels, or None where no face was found) against
    the `reference` landmarks (the portrait). Raises FacecastError when no frame has a face."""
    T = len(landmarks)
    gap = np.full(T, np.nan)
    eye = np.full(T, np.nan)
    pose = np.full((T, 3), np.nan)
    mouth = np.full((T, len(MOUTH_POINTS), 2), np.nan)
    ref = np.asarray(reference, np.float64)
    ref_iod = _iod(ref)
    rigid = topo.RIGID_POINTS
    for i, lm in enumerate(landmarks):
        if lm is None:
            continue
        lm = np.asarray(lm, np.float64)
        gap[i] = topo.lip_gap(lm)
        eye[i] = float(np.mean(eye_openness(lm)))
        pose[i] = relative_pose(ref, lm)[0]
        r, s, t = rigid_align(lm[rigid], ref[rigid])          # frame -> reference frame
        mouth[i] = ((s * lm[MOUTH_POINTS] @ r.T + t)[:, :2]) / ref_iod
    ok = np.isfinite(gap)
    if not ok.any():
        raise FacecastError("no face was found in any frame")
    out = FaceTracks(float(fps), _fill(gap, ok), _fill(eye, ok), _fill(pose, ok), _fill(mouth, ok),
                     int((~ok).sum()))
    if interior is not None:
        out.interior = _interior_means(interior, out.gap)
    return out


def _fill(v: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """Fill the rows where `ok` is False by linear interpolation along the first axis."""
    if ok.all():
        return v
    flat = v.reshape(len(v), -1).copy()
    i = np.arange(len(v))
    for c in range(flat.shape[1]):
        flat[~ok, c] = np.interp(i[~ok], i[ok], flat[ok, c])
    return flat.reshape(v.shape)


def _interior_means(values: list[dict | None], gap: np.ndarray) -> dict[str, float]:
    out = {}
    for name in INTERIOR_MEASURES:
        v = [d[name] for d, g in zip(values, gap) if d and g >= OPEN_GAP and d.get(name) is not None]
        out[name] = float(np.mean(v)) if v else math.nan
    return out


# ---- the report ----------------------------------------------------------------------------------
@dataclass
class RealClipReport(CheckedReport):
    """facecast against one real clip (or the median over clips, `median_report`); see the module
    docstring for the definitions. `*_ratio` = facecast / real. NaN: not measured."""

    name: str = ""
    fps: float = math.nan
    frames: int = 0
    duration_s: float = math.nan
    frames_lost_real: int = 0
    frames_lost_facecast: int = 0
    corr_lag0: float = math.nan
    corr_best: float = math.nan
    best_lag_ms: float = math.nan
    closed_real: float = math.nan
    closed_facecast: float = math.nan
    closed_ratio: float = math.nan
    closed_voiced_real: float = math.nan
    closed_voiced_facecast: float = math.nan
    opening_speed_real: float = math.nan
    opening_speed_facecast: float = math.nan
    opening_speed_ratio: float = math.nan
    head_std_real: float = math.nan
    head_std_facecast: float = math.nan
    head_std_ratio: float = math.nan
    head_motion_real: float = math.nan
    head_motion_facecast: float = math.nan
    head_motion_ratio: float = math.nan
    head_motion_still: float = math.nan
    still_ratio: float = math.nan
    blink_rate_real: float = math.nan
    blink_rate_facecast: float = math.nan
    mouth_shape: float = math.nan
    mouth_shape_still: float = math.nan
    interior: dict = field(default_factory=lambda: {k: {"real": None, "facecast": None, "ratio": None}
                                                    for k in INTERIOR_MEASURES})
    seconds: dict = field(default_factory=dict)
    tracks: dict = field(default_factory=dict, repr=False)

    targets = TARGETS                      # checked by `CheckedReport.checks`
    target_text = staticmethod(lambda name: target_text(name))


def target_text(name: str) -> str:
    """'0.75-1.4', '>= 0.5', '|lag| <= 40'."""
    lo, hi = TARGETS[name]
    if name == "best_lag_ms":
        return f"|lag| <= {hi:g}"
    return f">= {lo:g}" if hi is None else f"{lo:g}-{hi:g}"


def _ratio(a: float, b: float) -> float:
    return a / b if math.isfinite(a) and math.isfinite(b) and b > 1e-12 else math.nan


def head_std(pose: np.ndarray, fps: float, smooth_s: float = HEAD_SMOOTH_S) -> float:
    """Root mean square over the three angles of their standard deviation over the clip, after the
    Gaussian low-pass of `metrics.head_delta` (degrees)."""
    p = np.asarray(pose, np.float64).reshape(-1, 3)
    if len(p) < 2:
        return math.nan
    if smooth_s > 0:
        from scipy.ndimage import gaussian_filter1d
        p = gaussian_filter1d(p, smooth_s * fps, axis=0, mode="nearest")
    return float(np.sqrt(np.mean(p.var(axis=0))))


def opening_speed(gap: np.ndarray, fps: float) -> float:
    """Mean |frame-to-frame change| of the lip gap, in IODs per second."""
    g = np.asarray(gap, np.float64)
    return float(np.mean(np.abs(np.diff(g))) * fps) if len(g) > 1 else math.nan


def _check_length(frames: int, fps: float, name: str) -> None:
    """FacecastError unless `frames` at `fps` last at least `MIN_CLIP_S`."""
    if frames < MIN_CLIP_S * fps:
        raise FacecastError(f"{name or 'the clip'} is too short to compare: {frames / fps:.2f} s; "
                            f"it needs at least {MIN_CLIP_S:g} s of talking")


def compare_tracks(real: FaceTracks, fake: FaceTracks, still: FaceTracks | None = None,
                   name: str = "", voiced: np.ndarray | None = None) -> RealClipReport:
    """Score rendered tracks against real ones (both at real.fps; cut to the shorter). voiced:
    (T,) bool, the frames whose audio is voiced (`voiced_frames`), for the closed-while-voiced
    shares; None: not measured."""
    fps = real.fps
    T = min(len(real), len(fake))
    _check_length(T, fps, name)
    rg, fg = real.gap[:T], fake.gap[:T]
    rep = RealClipReport(name=name, fps=fps, frames=T, duration_s=T / fps,
                         frames_lost_real=real.lost, frames_lost_facecast=fake.lost)
    if rg.std() > 1e-9 and fg.std() > 1e-9:
        rep.corr_lag0 = float(np.corrcoef(rg, fg)[0, 1])
    rep.best_lag_ms, rep.corr_best = estimate_lag(fg, rg, fps, LAG_SEARCH_S)
    rep.closed_real = float(np.mean(rg < CLOSED_GAP))
    rep.closed_facecast = float(np.mean(fg < CLOSED_GAP))
    rep.closed_ratio = _ratio(rep.closed_facecast, rep.closed_real)
    if voiced is not None:
        v = np.zeros(T, bool)
        v[:min(T, len(voiced))] = np.asarray(voiced, bool)[:T]
        if v.any():
            rep.closed_voiced_real = float(np.mean(rg[v] < CLOSED_GAP))
            rep.closed_voiced_facecast = float(np.mean(fg[v] < CLOSED_GAP))
    rep.opening_speed_real, rep.opening_speed_facecast = opening_speed(rg, fps), opening_speed(fg, fps)
    rep.opening_speed_ratio = _ratio(rep.opening_speed_facecast, rep.opening_speed_real)
    rep.head_std_real, rep.head_std_facecast = head_std(real.pose[:T], fps), head_std(fake.pose[:T], fps)
    rep.head_std_ratio = _ratio(rep.head_std_facecast, rep.head_std_real)
    rep.head_motion_real, rep.head_motion_facecast = head_delta(real.pose[:T], fps), head_delta(fake.pose[:T], fps)
    rep.head_motion_ratio = _ratio(rep.head_motion_facecast, rep.head_motion_real)
    if still is not None:
        Ts = min(T, len(still))
        rep.head_motion_still = head_delta(still.pose[:Ts], fps)
        rep.still_ratio = _ratio(head_delta(fake.pose[:Ts], fps), rep.head_motion_still)
    minutes = T / fps / 60.0
    rep.blink_rate_real = count_blinks(real.eye[:T], fps) / minutes
    rep.blink_rate_facecast = count_blinks(fake.eye[:T], fps) / minutes
    rm, fm = real.mouth[:T], fake.mouth[:T]
    rep.mouth_shape = float(np.mean(np.linalg.norm(rm - fm, axis=2)))
    rep.mouth_shape_still = float(np.mean(np.linalg.norm(rm - rm[:1], axis=2)))
    for k in INTERIOR_MEASURES:
        r, f = real.interior.get(k, math.nan), fake.interior.get(k, math.nan)
        rep.interior[k] = {"real": r, "facecast": f, "ratio": _ratio(f, r)}
    rep.tracks = {"gap_real": rg, "gap_facecast": fg, "pose_real": real.pose[:T], "pose_facecast": fake.pose[:T],
                  "eye_real": real.eye[:T], "eye_facecast": fake.eye[:T]}
    return rep


def median_report(reports: list[RealClipReport], name: str = "median") -> RealClipReport:
    """The median over clips of every figure (NaNs left out); counts and durations are summed."""
    if not reports:
        raise ValueError("no reports")
    out = RealClipReport(name=name, fps=reports[0].fps)
    for f in fields(RealClipReport):
        if f.name in ("name", "fps", "interior", "seconds", "tracks"):
            continue
        vals = [getattr(r, f.name) for r in reports]
        if f.name in ("frames", "duration_s", "frames_lost_real", "frames_lost_facecast"):
            setattr(out, f.name, sum(vals))
        else:
            v = [x for x in vals if x is not None and math.isfinite(x)]
            setattr(out, f.name, float(np.median(v)) if v else math.nan)
    for k in INTERIOR_MEASURES:
        for side in ("real", "facecast", "ratio"):
            v = [r.interior[k][side] for r in reports if r.interior[k][side] is not None
                 and math.isfinite(r.interior[k][side])]
            out.interior[k][side] = float(np.median(v)) if v else None
    secs: dict[str, float] = {}
    for r in reports:
        for k, v in r.seconds.items():
            secs[k] = secs.get(k, 0.0) + v
    out.seconds = secs
    return out


def voiced_frames(audio: np.ndarray, fps: float, n: int) -> np.ndarray:
    """(n,) bool: whether 16 kHz mono `audio` is voiced (`acoustics` voicing above `VOICED_MIN`)
    at each frame's time i / fps (False past the audio's end)."""
    f = analyze(audio)
    idx = np.floor(np.arange(n) / fps / HOP_S).astype(int)
    out = np.zeros(n, bool)
    ok = idx < len(f)
    out[ok] = f.voicing[idx[ok]] > VOICED_MIN
    return out


def evaluation_mark(animator):
    """The watermark of evaluation renders (`eval real` and `eval lipsync`): a fixed video id
    (`EVALUATION_VIDEO_ID`), so that the same code on the same input gives the same figures. The
    mark's pixels differ with the id and the face mesh reads them: with a new random id per render,
    the mouth correlation of `eval real` moved by up to 0.02 between runs."""
    from ..provenance.watermark import Payload, Watermark
    return Watermark(Payload.new(EVALUATION_VIDEO_ID)) if animator.watermark else None


# ---- video in, tracks out --------------------------------------------------------------------------
def track_landmarks(frames, tracker: FaceTracker, probe: InteriorProbe | None = None
                    ) -> tuple[list[np.ndarray | None], list[dict | None] | None, np.ndarray | None]:
    """Track every frame: (landmarks per frame or None, interior probe values or None, frame 0).
    The face nearest to the previous one is followed when there are several."""
    out: list[np.ndarray | None] = []
    interior: list[dict | None] | None = [] if probe is not None else None
    first = None
    prev = None
    for frame in frames:
        if first is None:
            first = frame
        faces = tracker.landmarks(frame)
        lm = None
        if faces:
            c = prev if prev is not None else np.array(frame.shape[1::-1], np.float64) / 2
            if prev is None:
                lm = faces[0].landmarks     # the largest
            else:
                lm = min(faces, key=lambda f: np.linalg.norm(f.landmarks[:, :2].mean(0) - c)).landmarks
            prev = lm[:, :2].mean(0)
        out.append(lm)
        if interior is not None:
            interior.append(probe(frame, lm) if lm is not None else None)
    return out, interior, first


def check_real_clip(path: str | os.PathLike) -> VideoInfo:
    """`path`'s `VideoInfo`, or FacecastError unless it is a readable video with an audio track,
    a usable frame rate and at least `MIN_CLIP_S` long (as the container says; the frames decoded
    are counted again before rendering)."""
    info = video_info(path)
    if not info.has_audio:
        raise FacecastError(f"{info.path} has no audio track; the evaluation renders the clip's first frame "
                            "with the clip's own speech")
    _check_length(info.frames, info.fps, info.path.name)
    return info


def evaluate_real_clip(path: str | os.PathLike, size: int = 512, tracker: FaceTracker | None = None,
                       controls=None, still_baseline: bool = False, probe: InteriorProbe | None | bool = None,
                       save_dir: str | os.PathLike | None = None,
                       on_notice: Callable[[str], None] | None = None) -> RealClipReport:
    """Render a real clip's first frame with the clip's own audio through `Animator` (crop of
    `size` px, at the clip's frame rate, `controls` or the defaults), re-track both videos and
    compare them (`compare_tracks`). still_baseline: also render with motion_scale=0 and report
    the head-motion ratio. save_dir: keep the rendered video(s) there as <clip>.mp4
    (<clip>_still.mp4). tracker: reused when given."""
    from ..motion.controls import Controls
    from ..pipeline import Animator
    from .interior import interior_probe
    if probe is None or probe is True:
        probe = interior_probe
    elif probe is False:
        probe = None
    info = check_real_clip(path)
    p, fps = info.path, info.fps
    own = tracker is None
    if own:
        tracker = FaceTracker(max_faces=1)
    secs: dict[str, float] = {}
    try:
        t0 = time.perf_counter()
        real_lm, real_int, first = track_landmarks(iter_frames(p), tracker, probe)
        secs["track_real"] = time.perf_counter() - t0
        if first is None:
            raise FacecastError(f"{p} has no video frames")
        ref = real_lm[0]
        if ref is None:
            raise FacecastError(f"no face in the first frame of {p}; the first frame is the portrait")
        _check_length(len(real_lm), fps, p.name)     # before anything is rendered
        real = face_tracks(real_lm, ref, fps, real_int)
        animator = Animator(first, size=size)
        for n in animator.rig.notices:
            if on_notice:
                on_notice(n)
        base = controls if controls is not None else Controls()
        runs = [("", base)] + ([("_still", base.model_copy(update={"motion_scale": 0.0}))] if still_baseline else [])
        rendered = {}
        with tempfile.TemporaryDirectory(prefix="facecast-eval-real-") as tmp:
            for suffix, ctl in runs:
                out = Path(save_dir) / f"{p.stem}{suffix}.mp4" if save_dir else Path(tmp) / f"render{suffix}.mp4"
                t0 = time.perf_counter()
                animator.render(p, out, fps=fps, controls=ctl, mark=evaluation_mark(animator))
                secs["render" + suffix] = time.perf_counter() - t0
                t0 = time.perf_counter()
                lm, interior, _ = track_landmarks(iter_frames(out), tracker, probe)
                secs["track" + suffix] = time.perf_counter() - t0
                try:
                    rendered[suffix] = face_tracks(lm, ref, fps, interior)
                except FacecastError:
                    raise FacecastError(f"no face was found in the render of {p.name}") from None
    finally:
        if own:
            tracker.close()
    voiced = voiced_frames(load_audio(p), fps, len(real))
    rep = compare_tracks(real, rendered[""], rendered.get("_still"), name=p.stem, voiced=voiced)
    rep.seconds = secs
    return rep
