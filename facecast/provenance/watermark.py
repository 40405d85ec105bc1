"""The invisible watermark: a faint, tiled noise pattern added to the luma of every frame, that
says "made by facecast" with a payload (format version, facecast version, a random id per video).

Why our own and not a library: `invisible-watermark` (DWT-DCT, the library the issue suggests)
was measured on a 512² frame (see the README's Provenance section): 37 dB PSNR, 25-50 ms per
frame, it needs torch, and after a 10 % crop or a 50 % downscale about half of its 64 bits come
out wrong (chance): its bits sit at fixed positions of a fixed block grid, which a crop or a
rescale moves. This mark is built for exactly those attacks:

- **Tiled**: one `TILE` x `TILE` (128 px) pattern repeated over the frame. A crop only shifts the
  tiling (a circular shift of the folded tile), and a frame-rate change keeps every frame's mark,
  since every frame carries the same one.
- **Band-limited** to wavelengths of 6-18 px (`BAND`): coarse enough to outlive H.264 at CRF 30
  and a 50 % downscale, fine enough not to read as shading.
- **Shift-keyed payload**: the band's frequencies are dealt out among a sync pattern
  (`SYNC_SHARE` of them) and `N_SYMBOLS` payload patterns, so no pattern's correlation sees
  another. Each payload pattern is circularly shifted by one 14-bit symbol (128 x 128 shifts). The
  detector finds the sync's shift, then each symbol as the shift of its pattern relative to the
  sync, so it needs no alignment: the crop's offset drops out. 5 symbols = 70 bits: 52 of
  payload, 18 of check.
- **Scale search** (`search_period`): a rescaled frame has a tile period of 128 x s pixels. The
  detector resamples the frame so that a candidate period becomes the tile, sums all tiles into
  one (`fold`) and correlates it with the sync; log-spaced candidates over `PERIOD_RANGE`, then a
  finer search around the best few. (A comb over the power spectrum was tried first: the mark is
  too faint for a non-coherent statistic to find its period.)
- **Perceptual strength** (`strength_map`): the amplitude follows the local texture of the first
  frame of each size (every frame of a video shows the same portrait): full on skin grain, hair
  and fabric, fading to nothing on flat areas. The frame's RMS change is `TARGET_RMS` levels
  (PSNR about 43 dB).
- **Evidence over frames**: the detector averages the whitened frames of a window (`residual`),
  so the mark, the same in each frame, adds up while coding noise and motion average out.

The patterns come from a fixed public seed: anyone can verify a video (this is a label, not a
secret), and nobody needs a key to do so.

Embedding costs one precomputed pattern per (video, frame size) and two saturating cv2
additions per frame (`Watermark.apply`).
"""
from __future__ import annotations

import hashlib
import math
import re
import secrets
import threading
from dataclasses import dataclass, field

import cv2
import numpy as np

FORMAT_VERSION = 1
TILE = 128                       # tile period in pixels, at the rendered size
BAND = (7.0, 21.0)               # the patterns' spatial frequencies, in cycles per tile (wavelengths 6-18 px)
N_SYMBOLS = 5
SYMBOL_BITS = 14                 # log2(TILE * TILE): one circular 2D shift
DATA_BITS = 52                   # 4 format + 16 facecast version + 32 id
SYNC_SHARE = 0.6                 # the sync pattern's share of the band (and of the mark's energy)
CHECK_BITS = N_SYMBOLS * SYMBOL_BITS - DATA_BITS
PATTERN_SEED = 0x46434D31        # "FCM1": public, so anyone can verify
TARGET_RMS = 1.8                 # the mark's RMS in 8-bit levels over a frame (PSNR ~ 43 dB)
FLAT_LEVELS = 1.5                # local detail (RMS, 8-bit levels) at which the strength is half its full value


# ---- payload -------------------------------------------------------------------------------------
def _version_numbers(version: str) -> tuple[int, int, int]:
    m = re.match(r"(\d+)\.(\d+)(?:\.(\d+))?", version or "")
    if not m:
        return 0, 0, 0
    major, minor, patch = (int(g or 0) for g in m.groups())
    return min(major, 15), min(minor, 63), min(patch, 63)


def _check_value(data: int) -> int:
    digest = hashlib.blake2s(data.to_bytes(7, "big"), digest_size=4, person=b"fcmark").digest()
    return int.from_bytes(digest, "big") >> (32 - CHECK_BITS)


@dataclass(frozen=True)
class Payload:
    """What a mark carries: the mark's format version, the facecast version that made the video
    (major.minor.patch, each clamped to 4/6/6 bits) and a random 32-bit id per video (8 hex)."""

    video_id: str
    facecast_version: str
    format_version: int = FORMAT_VERSION

    @classmethod
    def new(cls, video_id: str | None = None) -> "Payload":
        """This facecast version's payload with `video_id` (8 hex digits; default: a random one)."""
        from .. import __version__
        major, minor, patch = _version_numbers(__version__)
        return cls(video_id or secrets.token_hex(4), f"{major}.{minor}.{patch}")

    def to_symbols(self) -> list[int]:
        major, minor, patch = _version_numbers(self.facecast_version)
        data = (((self.format_version & 15) << 48) | (major << 44) | (minor << 38) | (patch << 32)
                | int(self.video_id, 16))
        word = (data << CHECK_BITS) | _check_value(data)
        mask = (1 << SYMBOL_BITS) - 1
        return [(word >> (SYMBOL_BITS * (N_SYMBOLS - 1 - i))) & mask for i in range(N_SYMBOLS)]

    @classmethod
    def from_symbols(cls, symbols: list[int]) -> "Payload | None":
        """The payload, or None when the check bits do not match (a wrong read, or no mark)."""
        word = 0
        for s in symbols:
            word = (word << SYMBOL_BITS) | int(s)
        data, check = word >> CHECK_BITS, word & ((1 << CHECK_BITS) - 1)
        if _check_value(data) != check:
            return None
        return cls(f"{data & 0xFFFFFFFF:08x}", f"{(data >> 44) & 15}.{(data >> 38) & 63}.{(data >> 32) & 63}",
                   (data >> 48) & 15)

    def to_dict(self) -> dict:
        return {"format_version": self.format_version, "facecast_version": self.facecast_version,
                "video_id": self.video_id}


# ---- patterns ------------------------------------------------------------------------------------
def _band_bins() -> np.ndarray:
    """The tile's frequency bins (ky, kx) inside `BAND`, one of each conjugate pair."""
    k = np.arange(-int(BAND[1]), int(BAND[1]) + 1)
    ky, kx = np.meshgrid(k, k, indexing="ij")
    r = np.hypot(kx, ky)
    keep = (r >= BAND[0]) & (r <= BAND[1]) & ((kx > 0) | ((kx == 0) & (ky > 0)))
    return np.stack([ky[keep], kx[keep]], 1)


def _make_patterns() -> np.ndarray:
    """(1 + N_SYMBOLS, TILE, TILE) float32: the sync pattern, then one per symbol.

    The band's frequency bins are dealt out among the patterns (the sync gets `SYNC_SHARE` of
    them, the symbols the rest), each bin with unit magnitude and a random phase. Patterns on
    disjoint bins are orthogonal at every relative shift, so no pattern's correlation picks up
    another's (the sync does not see the payload, nor one symbol another). Each pattern is then
    scaled so that its RMS is proportional to its share of bins."""
    rng = np.random.default_rng(PATTERN_SEED)
    bins = _band_bins()
    bins = bins[rng.permutation(len(bins))]
    n_sync = int(round(SYNC_SHARE * len(bins)))
    groups = [bins[:n_sync]] + [bins[n_sync + i::N_SYMBOLS] for i in range(N_SYMBOLS)]
    out = []
    for g in groups:
        spec = np.zeros((TILE, TILE), np.complex128)
        phase = np.exp(2j * np.pi * rng.random(len(g)))
        spec[g[:, 0] % TILE, g[:, 1] % TILE] = phase
        spec[-g[:, 0] % TILE, -g[:, 1] % TILE] = np.conj(phase)
        p = np.real(np.fft.ifft2(spec))
        out.append(p * np.sqrt(len(g) / len(bins)) / np.sqrt(np.mean(p ** 2)))
    return np.asarray(out, np.float32)


PATTERNS = _make_patterns()
_PATTERN_SPECTRA = np.conj(np.fft.fft2(PATTERNS))
_PATTERN_SUPPORT = np.abs(_PATTERN_SPECTRA) > 1e-9 * np.abs(_PATTERN_SPECTRA).max()


def _shift(symbol: int) -> tuple[int, int]:
    return divmod(int(symbol), TILE)


def tile_for(payload: Payload) -> np.ndarray:
    """The TILE x TILE mark of `payload`, unit RMS (float32)."""
    t = PATTERNS[0].astype(np.float64)
    for p, sym in zip(PATTERNS[1:], payload.to_symbols()):
        t = t + np.roll(p, _shift(sym), axis=(0, 1))
    return (t / np.sqrt(np.mean(t ** 2))).astype(np.float32)


def strength_map(frame: np.ndarray) -> np.ndarray:
    """Per-pixel amplitude (float32, mean 1) from the frame's local texture: a / (a + FLAT_LEVELS),
    a being the local RMS of the luma's detail. Full strength wherever there is texture (skin
    grain, hair, fabric), fading to nothing on flat areas (a plain backdrop, a smooth gradient),
    where any pattern would show. Measured: a strength proportional to the texture (more on
    strong texture) halves the detection score after H.264 at CRF 30; a uniform one is visible on
    a plain background when zoomed."""
    y = luma(frame)
    detail = y - cv2.GaussianBlur(y, (0, 0), 2.0)
    act = np.sqrt(cv2.GaussianBlur(detail * detail, (0, 0), 4.0))
    amp = act / (act + FLAT_LEVELS)
    return (amp / (float(np.mean(amp)) + 1e-6)).astype(np.float32)


def luma(frame: np.ndarray) -> np.ndarray:
    """Luma (BT.601, as H.264's yuv420p) of an RGB uint8 frame or a gray one, float32."""
    if frame.ndim == 2:
        return frame.astype(np.float32)
    return cv2.cvtColor(np.ascontiguousarray(frame[:, :, :3]), cv2.COLOR_RGB2GRAY).astype(np.float32)


# ---- embedding -----------------------------------------------------------------------------------
@dataclass
class Watermark:
    """The mark of one video: its payload and, per frame size, the precomputed change.

    `apply(frame)` returns a marked copy of an RGB uint8 frame. The change is computed once per
    frame size from the first frame of that size (its texture sets the strength; see
    `strength_map`), and then added to every frame with two saturating uint8 operations. The same
    gray change goes to R, G and B: luma only, colours untouched.
    """

    payload: Payload = field(default_factory=Payload.new)
    rms: float = TARGET_RMS

    def __post_init__(self):
        self._tile = tile_for(self.payload)
        self._deltas: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        self._lock = threading.Lock()

    @property
    def video_id(self) -> str:
        return self.payload.video_id

    def _delta(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h, w = frame.shape[:2]
        d = self._deltas.get((h, w))
        if d is None:
            with self._lock:
                d = self._deltas.get((h, w))
                if d is None:
                    d = self._deltas[(h, w)] = self._build(frame)
        return d

    def _build(self, frame: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        h, w = frame.shape[:2]
        reps = (-(-h // TILE), -(-w // TILE))
        pattern = np.tile(self._tile, reps)[:h, :w]
        amp = strength_map(frame)
        delta = pattern * amp
        delta *= self.rms / max(float(np.sqrt(np.mean(delta ** 2))), 1e-6)
        # a fixed dither instead of plain rounding, so sub-level amplitudes are kept on average
        dither = np.random.default_rng(PATTERN_SEED + 1).random((h, w), dtype=np.float32)
        q = np.floor(delta + dither).astype(np.int16)
        pos = np.clip(q, 0, 255).astype(np.uint8)
        neg = np.clip(-q, 0, 255).astype(np.uint8)
        return cv2.merge([pos, pos, pos]), cv2.merge([neg, neg, neg])

    def apply(self, frame: np.ndarray) -> np.ndarray:
        """A marked copy of `frame` ((H, W, 3) uint8 RGB)."""
        pos, neg = self._delta(frame)
        out = cv2.add(frame, pos)
        return cv2.subtract(out, neg, dst=out)


# ---- detection -----------------------------------------------------------------------------------
PERIOD_RANGE = (0.35 * TILE, 2.0 * TILE)  # the tile periods searched: downscaled to 35 % .. upscaled 2x
COARSE_STEP = 0.008                       # relative step of the period search (the peak is ~1 % wide)
REFINE = np.linspace(-0.004, 0.004, 9)    # then around the best candidates
N_CANDIDATES = 4                          # coarse candidates refined
MAX_SIDE = 1024                           # of larger frames, the middle MAX_SIDE x MAX_SIDE is searched
MIN_SIDE = 96                             # frames smaller than this are not searched
SYNC_Z_WITH_PAYLOAD = 5.0                 # sync z-score enough when the payload's check bits match
SYNC_Z_ALONE = 7.0                        # sync z-score enough by itself (payload unreadable)


def residual(frame: np.ndarray) -> np.ndarray:
    """The whitened detail of a frame's luma where the mark lives: high-passed, divided by its local
    RMS (so strong edges do not drown the rest), clipped. float32, the frame's size."""
    y = luma(frame)
    hp = y - cv2.GaussianBlur(y, (0, 0), 1.5)
    rms = np.sqrt(cv2.GaussianBlur(hp * hp, (0, 0), 1.0))
    r = hp / (rms + 1.0)
    return np.clip(r, -3.0, 3.0, out=r)




def _spectra(n: int) -> np.ndarray:
    """The conjugate spectra of the patterns on an n x n tile (n <= TILE; the band fits any n > 48)."""
    if n == TILE:
        return _PATTERN_SPECTRA
    k = np.r_[0:n // 2, TILE - n // 2:TILE]
    return _PATTERN_SPECTRA[:, k][:, :, k] * (n / TILE) ** 2


_SPECTRA = {TILE: _PATTERN_SPECTRA, TILE // 2: _spectra(TILE // 2)}


def fold(r: np.ndarray, period: float, n: int = TILE) -> np.ndarray:
    """Resample `r` so that a tile of `period` pixels becomes n pixels, and sum all its tiles into
    one (n, n) tile (a crop only shifts the tiling: the sum is the same, circularly shifted)."""
    f = n / period
    x = cv2.resize(r, None, fx=f, fy=f, interpolation=cv2.INTER_AREA if f < 1 else cv2.INTER_LINEAR)
    h, w = x.shape
    ph, pw = -(-h // n) * n, -(-w // n) * n
    x = np.pad(x, ((0, ph - h), (0, pw - w)))
    return x.reshape(ph // n, n, pw // n, n).sum(axis=(0, 2))


def _correlations(tile: np.ndarray, which: slice = slice(None)) -> np.ndarray:
    """z-scores of the circular correlation of `tile` with each pattern (or those in `which`):
    (k, n, n), each divided by its RMS over all shifts (a null correlation is ~N(0, 1) per shift)."""
    spectra = _SPECTRA[tile.shape[0]][which]
    c = np.real(np.fft.ifft2(np.fft.fft2(tile)[None] * spectra))
    return c / (c.std(axis=(1, 2), keepdims=True) + 1e-12)


def _sync_score(r: np.ndarray, period: float) -> float:
    n = TILE if period >= 0.75 * TILE else TILE // 2
    return float(_correlations(fold(r, period, n), slice(0, 1))[0].max())


def search_period(r: np.ndarray) -> tuple[float, int]:
    """The tile period (in pixels of `r`) whose fold correlates best with the sync pattern, and how
    many periods were tried: a coarse log-spaced search over `PERIOD_RANGE`, then a finer one
    around the best `N_CANDIDATES`."""
    coarse = np.exp(np.arange(math.log(PERIOD_RANGE[0]), math.log(PERIOD_RANGE[1]), COARSE_STEP))
    scores = np.array([_sync_score(r, p) for p in coarse])
    picked: list[float] = []
    for i in np.argsort(scores)[::-1]:
        if all(abs(coarse[i] / q - 1) > 0.02 for q in picked):
            picked.append(float(coarse[i]))
        if len(picked) == N_CANDIDATES:
            break
    fine = [p * (1 + d) for p in picked for d in REFINE]
    best = max(fine, key=lambda p: _sync_score(r, p))
    return best, len(coarse) + len(fine)


@dataclass
class Detection:
    """What the detector read: found or not, a confidence in [0, 1] (1 - the chance that an
    unmarked video scores this high), the sync's z-score, the payload (None when unreadable), the
    tile period found (64 = the rendered size) and how many frames were read."""

    found: bool
    confidence: float
    score: float
    payload: Payload | None
    period: float | None
    frames: int

    @property
    def scale(self) -> float | None:
        return None if self.period is None else self.period / TILE

    def to_dict(self) -> dict:
        return {"found": self.found, "confidence": round(self.confidence, 6), "score": round(self.score, 2),
                "payload": self.payload.to_dict() if self.payload else None,
                "scale": None if self.period is None else round(self.period / TILE, 4), "frames": self.frames}


def _false_alarm(z: float, tries: int) -> float:
    """The chance that the best of `tries` null z-scores reaches `z` (Gaussian tail, union bound)."""
    return min(1.0, tries * 0.5 * math.erfc(z / math.sqrt(2)))


def detect_residual(r: np.ndarray, frames: int = 1) -> Detection:
    """Look for the mark in an (averaged) residual; see `residual`."""
    h, w = r.shape
    if min(h, w) < MIN_SIDE:
        return Detection(False, 0.0, 0.0, None, None, frames)
    # a crop keeps the tile period (a resize would not, and would lose the mark of a big full-frame
    # video): search the middle of a large frame
    y0, x0 = max(0, (h - MAX_SIDE) // 2), max(0, (w - MAX_SIDE) // 2)
    work = r[y0:y0 + MAX_SIDE, x0:x0 + MAX_SIDE]
    period, tries = search_period(work)
    z = _correlations(fold(work, period))
    peak = float(z[0].max())
    sy, sx = np.unravel_index(int(np.argmax(z[0])), z[0].shape)
    symbols = []
    for zi in z[1:]:
        py, px = np.unravel_index(int(np.argmax(zi)), zi.shape)
        symbols.append(((py - sy) % TILE) * TILE + (px - sx) % TILE)
    payload = Payload.from_symbols(symbols)
    p_sync = _false_alarm(peak, tries * TILE * TILE)
    if payload is not None and peak >= SYNC_Z_WITH_PAYLOAD:
        return Detection(True, 1.0 - p_sync * 2.0 ** -CHECK_BITS, peak, payload, period, frames)
    if peak >= SYNC_Z_ALONE:
        return Detection(True, 1.0 - p_sync, peak, None, period, frames)
    return Detection(False, 0.0, peak, None, None, frames)


class Detector:
    """Accumulate frames (RGB or gray uint8, one size), then `result()`; `detect(frames)` in one go."""

    def __init__(self):
        self.sum: np.ndarray | None = None
        self.frames = 0
        self.last: np.ndarray | None = None       # the residual of the frame added last

    def add(self, frame: np.ndarray) -> None:
        r = residual(frame)
        if self.sum is None or self.sum.shape != r.shape:
            self.sum, self.frames = np.zeros_like(r), 0
        self.sum += r
        self.frames += 1
        self.last = r

    def result(self) -> Detection:
        if self.sum is None:
            return Detection(False, 0.0, 0.0, None, None, 0)
        return detect_residual(self.sum / self.frames, self.frames)


def detect(frames) -> Detection:
    """Look for the mark in one frame or an iterable of frames of one size."""
    d = Detector()
    if isinstance(frames, np.ndarray) and frames.ndim in (2, 3) and (frames.ndim == 2 or frames.shape[2] in (3, 4)):
        frames = [frames]
    for f in frames:
        d.add(f)
    return d.result()
