"""Acoustics: language-agnostic, streaming per-frame speech features for lip sync.

No speech recogniser: everything comes from the signal. Audio is 16 kHz mono float32; every
HOP_S = 10 ms the analyzer emits one frame of `AcousticFeatures`. Frame t describes the audio
around time (t + 0.5) * hop_s: its 32 ms Hann window is centred on the middle of the interval
[t * hop_s, (t + 1) * hop_s).

Per frame (all (T,) float32):

- energy_db   window RMS in dBFS (-100 for digital silence; a full-scale sine is -3).
- loudness    0..1, energy relative to a running active-speech level (`LOUD_RANGE_DB` below the
              level -> 0, at the level -> 1), so quiet and loud recordings behave the same.
- voicing     0..1, normalised autocorrelation peak (Boersma's window-corrected method),
              zero in silence, damped in frames dominated by high-frequency noise.
- pitch_hz    F0 in Hz when voicing > `VOICED_MIN`, else 0.
- f1_hz, f2_hz  first two formants: peaks of a selective LPC envelope (order `LPC_ORDER` over
              0..`FORMANT_BAND_HZ`, pre-emphasis `PRE_EMPHASIS`), median-of-3 + exponential
              smoothing over voiced vowel-like frames, held through the others (they start at
              a neutral schwa, 500 / 1500 Hz).
- openness    0..1, jaw opening: level near the speech level x F1 height, damped when
              unvoiced, in nasal murmurs, fricatives and closures.
- frontness   0..1 from F2 (/u o/ -> 0, /i/ -> 1), zero in pauses.
- rounding    0..1, low F2 and not-open F1 (/u o/; eSpeak's English /u:/ is fronted, so only
              about 0.4), zero in pauses.
- nasal       0..1, nasal murmur: voiced, energy below 500 Hz above energy over 1 kHz, very
              little energy over 2 kHz, and clearly weaker than the vowels.
- fricative   0..1, share of energy above 3.5 kHz in unvoiced/noisy frames (s, sh, f).
- closure     0..1, a stop closure or gap: energy fell sharply from speech level to far below
              it and has not come back; fades after `CLOSURE_HOLD_S`. Being causal it cannot
              tell a closure from the start of a pause or the end of the utterance, so the
              first ~0.3 s of every silence after speech reads as closure. It does not say
              where the closure is (lips or tongue), so the mouth does not seal the lips on it.
- burst       0..1, abrupt broadband rise right after a closure (a plosive release).
  (closure and burst are reported for analysis; the motion generator does not use them.)
- aperture    0..1, how open the mouth sounds: the level of the 2.5-4 kHz band
              (`APERTURE_BAND_HZ`) against that band's own running level, followed like the
              speech level on confidently voiced frames (`APERTURE_RANGE_DB` below it -> 0, at it
              -> 1). Lips and a raised jaw damp the higher formants (F3, F4), so the energy there
              follows the mouth's opening more closely than loudness or F1 do: the envelope in
              the F2-F3 region is the acoustic measure best correlated with the area of the lip
              opening (Grant & Seitz 2000, JASA 108:1197).
- speech      0..1, voice activity with `HANGOVER_S` hangover (pauses -> 0).

Formant positions are normalised for the speaker with a running mean pitch: a higher voice
implies a shorter vocal tract, so formants are divided by (mean_f0 / `F0_REF_HZ`) **
`FORMANT_SCALE_EXP` (clipped to `FORMANT_SCALE_RANGE`) before the F1/F2 mappings
(`OPEN_F1_HZ`, `FRONT_F2_HZ`, `ROUND_F2_HZ`, `ROUND_F1_HZ`). The mappings are tuned on eSpeak
voices (male and female) in en/es/de/fr/it, not on recorded speech.

Streaming: `AcousticAnalyzer.push(samples)` returns the frames that became complete; frame t
needs samples up to t * hop + hop / 2 + WINDOW / 2 (11 ms past the end of its interval), and
nothing later. All running state (noise floor, speech level, smoothing, VAD hangover) lives in
the analyzer, and the per-frame recursion runs in a fixed order, so any chunking of the same
audio gives bit-identical features. `analyze` = push everything, then `flush`.
"""
from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass

import numpy as np
import scipy.fft

from .io import SAMPLE_RATE, resample

# --- constants (all tuned at 16 kHz; times in seconds, levels in dB) ------------------------
HOP_S = 0.01
WINDOW = 512                 # 32 ms analysis window (samples at 16 kHz)
NFFT = 1024                  # zero-padded FFT: linear autocorrelation up to lag WINDOW
BLOCK_FRAMES = 256           # frames per vectorised batch (keeps arrays in cache)
SILENCE_DB = -100.0          # energy_db floor

F0_MIN_HZ, F0_MAX_HZ = 70.0, 450.0
OCTAVE_COST = 0.03           # per octave below F0_MAX, favours the shortest good lag
VOICED_MIN = 0.5             # voicing above which a frame is voiced (pitch, formant updates)

LPC_ORDER = 12              # over the 0..FORMANT_BAND_HZ band (resolves close F1, F2 of /u o/)
FORMANT_BAND_HZ = 5000.0     # selective LPC: only this band is modelled (F1, F2 need < 3.5 kHz)
PRE_EMPHASIS = 0.97
LPC_LAG_WINDOW_HZ = 60.0     # Gaussian lag window (bandwidth widening, stability)
LPC_WHITE_NOISE = 1e-4       # r0 *= 1 + this (conditioning; larger widens /u/ formants)
ENV_NFFT = 512               # LPC envelope resolution (~20 Hz bins, parabolic refinement)
F1_RANGE_HZ = (180.0, 1200.0)
F2_RANGE_HZ = (500.0, 3200.0)
F2_MIN_GAP_HZ = 150.0        # F2 must lie this far above F1
F1_NEUTRAL_HZ, F2_NEUTRAL_HZ = 500.0, 1500.0
FORMANT_TAU_S = 0.02         # exponential smoothing of formants over voiced frames

F0_REF_HZ = 120.0            # speaker normalisation: reference (adult male) pitch
FORMANT_SCALE_EXP = 0.3
FORMANT_SCALE_RANGE = (0.9, 1.3)
F0_MEAN_TAU_S = 3.0          # running mean of log pitch over voiced frames

NOISE_WINDOW_S = 2.0         # noise floor: minimum energy over this window ...
NOISE_BIAS_DB = 3.0          # ... plus this bias; for the first window the minimum also
NOISE_PRIOR_DB = -55.0       # includes this prior for NOISE_PRIOR_S, so audio that starts
NOISE_PRIOR_S = 1.0          # with speech works
ABS_MIN_SPEECH_DB = -65.0    # nothing quieter than this is speech
VAD_SNR_DB = 10.0            # speech needs this much above the noise floor ...
VAD_BELOW_LEVEL_DB = 35.0    # ... and may be at most this far below the speech level
VAD_SLOPE_DB = 3.0           # logistic slope of the raw speech probability
HANGOVER_S = 0.2             # speech stays 1 this long after the last active frame ...
HANGOVER_FADE_S = 0.15       # ... then fades to 0 over this long

LEVEL_ATTACK_S = 0.05        # active speech level: fast up ...
LEVEL_RELEASE_S = 1.5        # ... slow down; updated only on frames with voicing above
LEVEL_MIN_VOICING = 0.6      # ... this and energy at least ...
LEVEL_MIN_SNR_DB = 15.0      # ... this far above the noise floor
LEVEL_DEFAULT_SNR_DB = 25.0  # before any such frame, the level is taken this far above noise
GATE_SNR_DB = (3.0, 9.0)     # frames within this of the noise floor fade to 'nothing here'
LOUD_RANGE_DB = 30.0

OPEN_F1_HZ = (300.0, 750.0)  # F1 -> openness 0..1
OPEN_BASE = 0.25             # openness share that loudness gives regardless of F1
OPEN_RANGE_DB = (24.0, 3.0)  # openness level term: 0 at 24 dB below the speech level, 1 at 3 dB
FRONT_F2_HZ = (1000.0, 2300.0)
ROUND_F2_HZ = (1800.0, 900.0)  # rounding: F2 term 0 .. 1 (low F2: /u o/) ...
ROUND_F1_HZ = (750.0, 450.0)   # ... times F1 term 0 .. 1 (open vowels cannot round much)

NASAL_RATIO_DB = (0.0, 8.0)      # E(60..500 Hz) / E(>1 kHz), dB: 0 .. 1 (vowel /a/ ~ -6)
NASAL_HF_DB = (18.0, 22.0)       # -10 log10(share of energy above 2 kHz): 0 .. 1 (murmurs ~ 23,
                                 # /a/ ~ 15, /i/ ~ 6)
NASAL_DROP_DB = (4.0, 12.0)      # energy below the speech level, dB: weights nasal 0.4 .. 1

FRIC_SHARE = (0.08, 0.35)    # share of energy above FRIC_HZ: 0 .. 1 (vowels < 0.03, s ~ 0.8)
FRIC_HZ = 3500.0
FRIC_BELOW_LEVEL_DB = 35.0   # fricatives fade out below (speech level - this)
NOISE_SHARE = (0.08, 0.25)   # voicing is damped to 0 as the share above FRIC_HZ goes over this
VOWEL_MAX_HF_SHARE = 0.05    # formants and the speaker's pitch are learnt below this share

APERTURE_BAND_HZ = (2500.0, 4000.0)
APERTURE_RANGE_DB = 30.0     # aperture: 0 this far below the band's running level, 1 at it
APERTURE_DEFAULT_DB = 20.0   # before any active speech, the band's level is taken this far below `ref`

CLOSURE_DROP_DB = 12.0       # a closure starts when energy drops this much ...
CLOSURE_DROP_S = 0.06        # ... within this long, from near the speech level ...
CLOSURE_FROM_DB = 12.0       # ... (within this of the level) ...
CLOSURE_DEPTH_DB = (12.0, 22.0)  # ... depth below the level: 0 .. 1
CLOSURE_HOLD_S = 0.15        # closure stays full this long, then fades ...
CLOSURE_FADE_S = 0.15        # ... to 0 over this long
CLOSURE_RELEASE_DB = 10.0    # a rise of this much above the closure's minimum ends it

BURST_RISE_S = 0.03          # burst: energy rise over this long ...
BURST_RISE_DB = (8.0, 20.0)  # ... of this many dB: 0 .. 1 ...
BURST_AFTER_S = 0.05         # ... within this long after a closure ...
BURST_SHARE_2K = (0.05, 0.2)  # ... with this share of energy above 2 kHz (broadband)

_FEATURES = ("energy_db", "loudness", "voicing", "pitch_hz", "f1_hz", "f2_hz", "openness",
             "frontness", "rounding", "nasal", "fricative", "closure", "burst", "aperture", "speech")


@dataclass
class AcousticFeatures:
    """Per-frame features, each a (T,) float32 array; see the module docstring for meanings."""

    energy_db: np.ndarray
    loudness: np.ndarray
    voicing: np.ndarray
    pitch_hz: np.ndarray
    f1_hz: np.ndarray
    f2_hz: np.ndarray
    openness: np.ndarray
    frontness: np.ndarray
    rounding: np.ndarray
    nasal: np.ndarray
    fricative: np.ndarray
    closure: np.ndarray
    burst: np.ndarray
    aperture: np.ndarray
    speech: np.ndarray
    hop_s: float = HOP_S

    def __post_init__(self):
        n = None
        for name in _FEATURES:
            a = np.asarray(getattr(self, name), np.float32).reshape(-1)
            if n is None:
                n = len(a)
            elif len(a) != n:
                raise ValueError(f"feature {name} has {len(a)} frames, expected {n}")
            setattr(self, name, a)

    def __len__(self) -> int:
        return len(self.energy_db)

    @property
    def duration_s(self) -> float:
        return len(self) * self.hop_s

    def times(self) -> np.ndarray:
        """(T,) float64 centre time of each frame's interval, seconds."""
        return (np.arange(len(self)) + 0.5) * self.hop_s

    def as_dict(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in _FEATURES}

    def slice(self, start: int, stop: int) -> "AcousticFeatures":
        return AcousticFeatures(**{k: v[start:stop] for k, v in self.as_dict().items()}, hop_s=self.hop_s)

    @classmethod
    def empty(cls, hop_s: float = HOP_S) -> "AcousticFeatures":
        return cls(**{name: np.zeros(0, np.float32) for name in _FEATURES}, hop_s=hop_s)

    @classmethod
    def concat(cls, parts: list["AcousticFeatures"]) -> "AcousticFeatures":
        """Join frame sequences in order (all must share hop_s); [] -> empty."""
        if not parts:
            return cls.empty()
        hop = parts[0].hop_s
        if any(p.hop_s != hop for p in parts):
            raise ValueError("cannot concatenate features with different hop_s")
        return cls(**{name: np.concatenate([getattr(p, name) for p in parts]) for name in _FEATURES},
                   hop_s=hop)

    def equals(self, other: "AcousticFeatures") -> bool:
        """Bit-exact equality of every feature (and hop)."""
        return self.hop_s == other.hop_s and all(
            np.array_equal(getattr(self, n), getattr(other, n)) for n in _FEATURES)


def _clip01(v: float) -> float:
    return 0.0 if v <= 0.0 else 1.0 if v >= 1.0 else v


def _ramp(v: float, lo: float, hi: float) -> float:
    return _clip01((v - lo) / (hi - lo))


class AcousticAnalyzer:
    """Streaming acoustic analysis of 16 kHz mono audio. See the module docstring.

    push(samples) -> features of the frames completed by these samples (maybe none);
    flush() -> the remaining frames (the stream end is zero-padded), after which the analyzer
    is finished and further pushes raise.
    """

    def __init__(self, sample_rate: int = SAMPLE_RATE, hop_s: float = HOP_S):
        if int(sample_rate) != SAMPLE_RATE:
            raise ValueError(f"AcousticAnalyzer works at {SAMPLE_RATE} Hz, got {sample_rate}; "
                             "resample first (load_audio does) or use analyze()")
        self.sample_rate = SAMPLE_RATE
        self.hop = int(round(hop_s * SAMPLE_RATE))
        if not 16 <= self.hop <= WINDOW // 2:
            raise ValueError(f"hop_s must be between 1 ms and 16 ms, got {hop_s}")
        self.hop_s = self.hop / SAMPLE_RATE
        # Frame t's window starts at sample t * hop + hop // 2 - WINDOW // 2: keep that many
        # zeros of history in front of sample 0.
        self._lead = WINDOW // 2 - self.hop // 2
        self._buf = np.zeros(self._lead, np.float32)   # samples from frame `_next`'s window start
        self._next = 0                                 # index of the next frame to emit
        self._n_samples = 0                            # samples pushed so far
        self._finished = False
        self._init_tables()
        self._init_state()

    # -- constant tables ---------------------------------------------------------------------
    def _init_tables(self):
        sr = SAMPLE_RATE
        n = np.arange(WINDOW)
        self._win = (0.5 - 0.5 * np.cos(2 * np.pi * n / WINDOW)).astype(np.float32)  # periodic Hann
        self._win_energy = float(np.sum(self._win.astype(np.float64) ** 2))
        rw = np.correlate(self._win.astype(np.float64), self._win.astype(np.float64), "full")[WINDOW - 1:]
        self._lag_lo = int(math.floor(sr / F0_MAX_HZ))
        self._lag_hi = int(math.ceil(sr / F0_MIN_HZ))
        lags = np.arange(self._lag_lo, self._lag_hi + 1)
        self._rw = rw[self._lag_lo - 1: self._lag_hi + 2] / rw[0]      # window autocorrelation
        self._octave_pen = OCTAVE_COST * np.log2(lags / self._lag_lo)
        self._lags = lags.astype(np.float64)
        bin_hz = sr / NFFT
        # selective LPC: autocorrelation of the pre-emphasised 0..FORMANT_BAND_HZ band, as if
        # sampled at 2 * FORMANT_BAND_HZ, straight from the frame's power spectrum.
        self._lpc_bins = int(round(FORMANT_BAND_HZ / bin_hz))
        w = 2 * np.pi * np.arange(self._lpc_bins + 1) * bin_hz / sr
        self._pre_w = (1 + PRE_EMPHASIS ** 2 - 2 * PRE_EMPHASIS * np.cos(w)).astype(np.float32)
        self._lpc_rate = 2 * self._lpc_bins * bin_hz
        k = np.arange(LPC_ORDER + 1)
        self._lag_window = np.exp(-0.5 * (2 * np.pi * LPC_LAG_WINDOW_HZ * k / self._lpc_rate) ** 2)
        self._b_lo = (int(round(60 / bin_hz)), int(round(500 / bin_hz)))
        self._b_1k = int(round(1000 / bin_hz))
        self._b_2k = int(round(2000 / bin_hz))
        self._b_hf = int(round(FRIC_HZ / bin_hz))
        self._b_aperture = tuple(int(round(f / bin_hz)) for f in APERTURE_BAND_HZ)
        # band power -> dB on the scale of e_db (Parseval: sum of |X|^2 over bins ~ NFFT / 2 x energy)
        self._band_db_offset = -10.0 * math.log10(0.5 * NFFT * self._win_energy)
        env_bin = self._lpc_rate / ENV_NFFT
        self._env_bins = int(F2_RANGE_HZ[1] / env_bin) + 2
        self._env_hz = env_bin

    def _init_state(self):
        dt = self.hop_s
        self._a_formant = 1.0 - math.exp(-dt / FORMANT_TAU_S)
        self._a_up = 1.0 - math.exp(-dt / LEVEL_ATTACK_S)
        self._a_down = 1.0 - math.exp(-dt / LEVEL_RELEASE_S)
        self._f0_tau_frames = F0_MEAN_TAU_S / dt
        self._noise_frames = max(1, int(round(NOISE_WINDOW_S / dt)))
        self._hang = int(round(HANGOVER_S / dt))
        self._hang_fade = max(1, int(round(HANGOVER_FADE_S / dt)))
        self._drop_frames = max(1, int(round(CLOSURE_DROP_S / dt)))
        self._cl_hold = int(round(CLOSURE_HOLD_S / dt))
        self._cl_fade = max(1, int(round(CLOSURE_FADE_S / dt)))
        self._rise_frames = max(1, int(round(BURST_RISE_S / dt)))
        self._burst_after = max(1, int(round(BURST_AFTER_S / dt)))
        # running state
        self._t = 0
        # (frame, energy) with increasing energies: sliding minimum; the prior expires after
        # NOISE_PRIOR_S (it is dated as if seen NOISE_WINDOW_S - NOISE_PRIOR_S before frame 0).
        prior_t = int(round(NOISE_PRIOR_S / dt)) - self._noise_frames
        self._noise_q: deque = deque([(prior_t, NOISE_PRIOR_DB)])
        self._level: float | None = None
        self._aperture_level: float | None = None
        self._last_active = -10 ** 9
        self._f0_mean_log = math.log(F0_REF_HZ)
        self._f0_count = 0
        self._f1 = F1_NEUTRAL_HZ
        self._f2 = F2_NEUTRAL_HZ
        self._raw_f1: deque = deque(maxlen=3)
        self._raw_f2: deque = deque(maxlen=3)
        self._recent_e: deque = deque(maxlen=self._rise_frames)   # energies of the last frames
        self._drop_q: deque = deque(maxlen=self._drop_frames)      # same, reset after a closure
        self._closure_on = False
        self._closure_start = 0
        self._closure_min = 0.0
        self._last_closure = -10 ** 9

    # -- streaming API -----------------------------------------------------------------------
    def push(self, samples: np.ndarray) -> AcousticFeatures:
        """Add (N,) float samples; return features of every frame that became complete."""
        if self._finished:
            raise RuntimeError("AcousticAnalyzer.push after flush(); create a new analyzer")
        x = np.asarray(samples, np.float32).reshape(-1)
        if not np.all(np.isfinite(x)):
            x = np.nan_to_num(x, nan=0.0, posinf=1.0, neginf=-1.0)
        self._n_samples += len(x)
        if len(x):
            self._buf = np.concatenate([self._buf, x])
        n_frames = 0 if len(self._buf) < WINDOW else (len(self._buf) - WINDOW) // self.hop + 1
        return self._emit(n_frames)

    def flush(self) -> AcousticFeatures:
        """Finish the stream: emit the remaining ceil(N / hop) - emitted frames (zero-padded)."""
        if self._finished:
            return AcousticFeatures.empty(self.hop_s)
        self._finished = True
        total = -(-self._n_samples // self.hop)
        n_frames = total - self._next
        need = (n_frames - 1) * self.hop + WINDOW if n_frames > 0 else 0
        if len(self._buf) < need:
            self._buf = np.concatenate([self._buf, np.zeros(need - len(self._buf), np.float32)])
        return self._emit(max(0, n_frames))

    def _emit(self, n_frames: int) -> AcousticFeatures:
        if n_frames <= 0:
            return AcousticFeatures.empty(self.hop_s)
        frames = np.lib.stride_tricks.sliding_window_view(self._buf, WINDOW)[::self.hop][:n_frames]
        parts = []
        for i in range(0, n_frames, BLOCK_FRAMES):
            raw = self._raw(frames[i:i + BLOCK_FRAMES])
            parts.append(self._sequential(raw))
        self._buf = self._buf[n_frames * self.hop:].copy()
        self._next += n_frames
        return AcousticFeatures.concat(parts) if len(parts) > 1 else parts[0]

    # -- stage 1: per-frame measurements, vectorised over frames -------------------------------
    def _raw(self, frames: np.ndarray) -> dict[str, np.ndarray]:
        """frames (T, WINDOW) float32 -> dict of (T,) float64 raw measurements."""
        T = len(frames)
        xw = frames * self._win                                          # (T, W) float32
        energy = np.sum(np.square(xw, dtype=np.float64), axis=1) / self._win_energy
        e_db = np.maximum(10.0 * np.log10(np.maximum(energy, 1e-20)), SILENCE_DB)
        X = scipy.fft.rfft(xw, NFFT, axis=1)                             # (T, 513) complex64
        P = (X.real * X.real + X.imag * X.imag)                          # float32 power
        r = scipy.fft.irfft(P, NFFT, axis=1)[:, : self._lag_hi + 2].astype(np.float64)
        r0 = r[:, 0]
        live = r0 > 1e-12
        safe_r0 = np.where(live, r0, 1.0)

        # pitch / voicing: window-corrected normalised autocorrelation, best interior peak
        rn = r[:, self._lag_lo - 1: self._lag_hi + 2] / safe_r0[:, None] / self._rw
        mid = rn[:, 1:-1]
        is_peak = (mid > rn[:, :-2]) & (mid >= rn[:, 2:])
        score = np.where(is_peak, mid - self._octave_pen, -np.inf)
        k = np.argmax(score, axis=1)
        rows = np.arange(T)
        has_peak = is_peak[rows, k]
        voicing = np.clip(mid[rows, k], 0.0, 1.0) * (live & has_peak)
        y0, y1, y2 = rn[rows, k], rn[rows, k + 1], rn[rows, k + 2]
        den = y0 - 2 * y1 + y2
        delta = np.where(den < 0, 0.5 * (y0 - y2) / np.where(den < 0, den, -1.0), 0.0)
        f0 = SAMPLE_RATE / (self._lags[k] + np.clip(delta, -0.5, 0.5))

        # selective LPC (0..FORMANT_BAND_HZ) of the pre-emphasised frame
        rp = scipy.fft.irfft(P[:, : self._lpc_bins + 1] * self._pre_w, 2 * self._lpc_bins, axis=1)
        rp = rp[:, : LPC_ORDER + 1].astype(np.float64) * self._lag_window
        rp[:, 0] = np.where(live, rp[:, 0] * (1 + LPC_WHITE_NOISE), 1.0)
        rp[~live, 1:] = 0.0
        lpc = _levinson(rp, LPC_ORDER)                                   # (T, order + 1)
        f1, f2 = self._formants(lpc)

        # band energies
        Pd = P.astype(np.float64)
        tot = np.sum(Pd[:, 1:], axis=1) + 1e-20
        lo = np.sum(Pd[:, self._b_lo[0]: self._b_lo[1]], axis=1) + 1e-20
        hi1k = np.sum(Pd[:, self._b_1k:], axis=1) + 1e-20
        hi2k = np.sum(Pd[:, self._b_2k:], axis=1)
        hf = np.sum(Pd[:, self._b_hf:], axis=1)
        band = np.sum(Pd[:, self._b_aperture[0]: self._b_aperture[1]], axis=1)
        return {
            "e_db": e_db, "voicing": voicing, "f0": f0, "f1": f1, "f2": f2,
            "nasal_ratio_db": 10.0 * np.log10(lo / hi1k), "share2k": hi2k / tot, "share_hf": hf / tot,
            "hf2k_db": -10.0 * np.log10(hi2k / tot + 1e-10),
            "aperture_db": np.maximum(10.0 * np.log10(np.maximum(band, 1e-20)) + self._band_db_offset,
                                      SILENCE_DB),
        }

    def _follow_level(self, level: float | None, x: float) -> float:
        """A running level (dB) after frame value x: fast up (`LEVEL_ATTACK_S`), slow down
        (`LEVEL_RELEASE_S`); the first value starts it."""
        if level is None:
            return x
        return level + (self._a_up if x > level else self._a_down) * (x - level)

    def _formants(self, lpc: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """F1, F2 (Hz; NaN when not found) from LPC polynomials (T, order + 1) via envelope peaks."""
        A = scipy.fft.rfft(lpc, ENV_NFFT, axis=1)[:, : self._env_bins]
        env = -np.log(A.real * A.real + A.imag * A.imag + 1e-30)         # log envelope (T, B)
        peak = np.zeros(env.shape, bool)
        peak[:, 1:-1] = (env[:, 1:-1] > env[:, :-2]) & (env[:, 1:-1] >= env[:, 2:])
        bins = np.arange(env.shape[1])
        y0, y1, y2 = env[:, :-2], env[:, 1:-1], env[:, 2:]
        den = y0 - 2 * y1 + y2
        delta = np.zeros(env.shape)
        delta[:, 1:-1] = np.where(den < 0, 0.5 * (y0 - y2) / np.where(den < 0, den, -1.0), 0.0)
        hz = (bins + np.clip(delta, -0.5, 0.5)) * self._env_hz            # (T, B)
        rows = np.arange(len(env))
        m1 = peak & (hz >= F1_RANGE_HZ[0]) & (hz <= F1_RANGE_HZ[1])
        i1 = np.argmax(m1, axis=1)
        ok1 = m1[rows, i1]
        f1 = np.where(ok1, hz[rows, i1], np.nan)
        m2 = peak & (hz >= F2_RANGE_HZ[0]) & (hz <= F2_RANGE_HZ[1]) & (bins > i1[:, None]) \
            & (hz >= (np.where(ok1, f1, 0.0) + F2_MIN_GAP_HZ)[:, None])
        i2 = np.argmax(m2, axis=1)
        ok2 = m2[rows, i2] & ok1
        f2 = np.where(ok2, hz[rows, i2], np.nan)
        return f1, f2

    # -- stage 2: causal per-frame recursion (running normalisers, smoothing, events) ----------
    def _sequential(self, raw: dict[str, np.ndarray]) -> AcousticFeatures:
        cols = {k: v.tolist() for k, v in raw.items()}
        T = len(cols["e_db"])
        out = {name: [0.0] * T for name in _FEATURES}
        for i in range(T):
            self._step(i, cols, out)
        return AcousticFeatures(**{k: np.asarray(v, np.float32) for k, v in out.items()}, hop_s=self.hop_s)

    def _step(self, i: int, c: dict, out: dict) -> None:
        t = self._t
        self._t = t + 1
        e = c["e_db"][i]
        vraw = c["voicing"][i]

        # noise floor: sliding minimum over NOISE_WINDOW_S (monotonic deque)
        q = self._noise_q
        while q and q[-1][1] >= e:
            q.pop()
        q.append((t, e))
        while q[0][0] <= t - self._noise_frames:
            q.popleft()
        noise = q[0][1] + NOISE_BIAS_DB

        gate = _ramp(e, noise + GATE_SNR_DB[0], noise + GATE_SNR_DB[1]) \
            * (1.0 if e > ABS_MIN_SPEECH_DB - 5.0 else 0.0)
        share_hf = c["share_hf"][i]
        # noise (fricatives, aspiration) can show chance autocorrelation peaks: damp voicing
        # when the frame is dominated by energy above FRIC_HZ
        voicing = vraw * gate * (1.0 - _ramp(share_hf, *NOISE_SHARE))
        voiced = voicing > VOICED_MIN

        # active speech level, and the aperture band's own level, followed on the same frames
        # (confidently voiced, well above noise)
        band_db = c["aperture_db"][i]
        if voicing > LEVEL_MIN_VOICING and e > noise + LEVEL_MIN_SNR_DB and e > ABS_MIN_SPEECH_DB:
            self._level = self._follow_level(self._level, e)
            self._aperture_level = self._follow_level(self._aperture_level, band_db)
        level = self._level
        ref = level if level is not None else max(noise, ABS_MIN_SPEECH_DB) + LEVEL_DEFAULT_SNR_DB
        band_ref = self._aperture_level if self._aperture_level is not None else ref - APERTURE_DEFAULT_DB

        # voice activity with hangover
        thr = max(noise + VAD_SNR_DB, ref - VAD_BELOW_LEVEL_DB, ABS_MIN_SPEECH_DB)
        z = (e - thr) / VAD_SLOPE_DB
        s_raw = 1.0 / (1.0 + math.exp(-z)) if z > -30 else 0.0
        if s_raw > 0.5:
            self._last_active = t
        since = t - self._last_active
        hang = 1.0 if since <= self._hang else _clip01(1.0 - (since - self._hang) / self._hang_fade)
        speech = s_raw if s_raw > hang else hang

        f0 = c["f0"][i] if voiced else 0.0
        loud = _ramp(e, ref - LOUD_RANGE_DB, ref) * gate

        # speaker scale from running mean log-pitch, formant smoothing on vowel-like frames
        f1r, f2r = c["f1"][i], c["f2"][i]
        if voiced and share_hf < VOWEL_MAX_HF_SHARE:
            self._f0_count += 1
            n = min(self._f0_count, self._f0_tau_frames)
            self._f0_mean_log += (math.log(f0) - self._f0_mean_log) / n
            if f1r == f1r and f2r == f2r:   # not NaN
                self._raw_f1.append(f1r)
                self._raw_f2.append(f2r)
                m1 = sorted(self._raw_f1)[len(self._raw_f1) // 2]
                m2 = sorted(self._raw_f2)[len(self._raw_f2) // 2]
                a = self._a_formant
                self._f1 += a * (m1 - self._f1)
                self._f2 += a * (m2 - self._f2)
        scale = math.exp(FORMANT_SCALE_EXP * (self._f0_mean_log - math.log(F0_REF_HZ)))
        scale = min(max(scale, FORMANT_SCALE_RANGE[0]), FORMANT_SCALE_RANGE[1])
        f1n, f2n = self._f1 / scale, self._f2 / scale

        fric = _ramp(share_hf, *FRIC_SHARE) * (1.0 - 0.7 * voicing) * gate \
            * _ramp(e, ref - FRIC_BELOW_LEVEL_DB - 10.0, ref - FRIC_BELOW_LEVEL_DB)
        frontness = _ramp(f2n, *FRONT_F2_HZ)
        rounding = _ramp(f2n, *ROUND_F2_HZ) * _ramp(f1n, *ROUND_F1_HZ) * speech
        nasal = 0.0
        if voiced:
            nasal = voicing * _ramp(c["nasal_ratio_db"][i], *NASAL_RATIO_DB) \
                * _ramp(c["hf2k_db"][i], *NASAL_HF_DB) * (0.4 + 0.6 * _ramp(ref - e, *NASAL_DROP_DB))

        # closure: a falling, sharp drop from near speech level to far below it
        recent = self._recent_e
        drop_q = self._drop_q
        if not self._closure_on:
            if (level is not None and drop_q and e < drop_q[-1] and max(drop_q) - e >= CLOSURE_DROP_DB
                    and max(drop_q) >= ref - CLOSURE_FROM_DB and e < ref - CLOSURE_DEPTH_DB[0]):
                self._closure_on, self._closure_start, self._closure_min = True, t, e
        else:
            self._closure_min = min(self._closure_min, e)
            dur = t - self._closure_start
            if (e > self._closure_min + CLOSURE_RELEASE_DB or e >= ref - CLOSURE_DEPTH_DB[0]
                    or dur >= self._cl_hold + self._cl_fade):
                self._closure_on = False
                drop_q.clear()   # the next closure needs a new drop from speech level
        drop_q.append(e)
        closure = 0.0
        if self._closure_on:
            dur = t - self._closure_start
            fade = 1.0 if dur <= self._cl_hold else _clip01(1.0 - (dur - self._cl_hold) / self._cl_fade)
            closure = _ramp(ref - e, *CLOSURE_DEPTH_DB) * fade * (1.0 - fric)
            if closure > 0.3:
                self._last_closure = t

        # burst: abrupt broadband rise right after a closure
        burst = 0.0
        if recent and t - self._last_closure <= self._burst_after and not self._closure_on:
            rise = e - min(recent)
            burst = _ramp(rise, *BURST_RISE_DB) * _ramp(c["share2k"][i], *BURST_SHARE_2K) \
                * _ramp(e, ref - LOUD_RANGE_DB - 10.0, ref - LOUD_RANGE_DB)
        recent.append(e)

        # jaw opening: level near the speech level, F1 height; not in murmurs or closures
        open_f1 = _ramp(f1n, *OPEN_F1_HZ)
        openness = _ramp(e, ref - OPEN_RANGE_DB[0], ref - OPEN_RANGE_DB[1]) * gate \
            * (OPEN_BASE + (1 - OPEN_BASE) * open_f1) * (0.4 + 0.6 * _clip01(voicing / VOICED_MIN)) \
            * (1.0 - nasal) * (1.0 - closure) * (1.0 - 0.6 * fric)

        out["energy_db"][i] = e
        out["loudness"][i] = loud
        out["voicing"][i] = voicing
        out["pitch_hz"][i] = f0
        out["f1_hz"][i] = self._f1
        out["f2_hz"][i] = self._f2
        out["openness"][i] = openness
        out["frontness"][i] = frontness * speech
        out["rounding"][i] = rounding
        out["nasal"][i] = nasal
        out["fricative"][i] = fric
        out["closure"][i] = closure
        out["burst"][i] = burst
        out["aperture"][i] = _ramp(band_db, band_ref - APERTURE_RANGE_DB, band_ref) * gate
        out["speech"][i] = speech


def _levinson(r: np.ndarray, order: int) -> np.ndarray:
    """Levinson-Durbin over rows: r (T, order + 1) autocorrelations -> a (T, order + 1), a0 = 1."""
    a = np.zeros((len(r), order + 1))
    a[:, 0] = 1.0
    err = r[:, 0].copy()
    floor = 1e-12 * r[:, 0]
    for i in range(1, order + 1):
        k = -(r[:, i] + np.sum(a[:, 1:i] * r[:, i - 1:0:-1], axis=1)) / err
        a[:, 1:i] = a[:, 1:i] + k[:, None] * a[:, i - 1:0:-1]
        a[:, i] = k
        err = np.maximum(err * (1.0 - k * k), floor)
    return a


def analyze(audio: np.ndarray, sample_rate: int = SAMPLE_RATE, hop_s: float = HOP_S) -> AcousticFeatures:
    """Features of a whole (N,) signal: push everything into a new analyzer, then flush.

    Audio at another rate is first resampled to 16 kHz (scipy polyphase).
    """
    x = resample(audio, sample_rate, SAMPLE_RATE)
    an = AcousticAnalyzer(SAMPLE_RATE, hop_s)
    return AcousticFeatures.concat([an.push(x), an.flush()])
