"""Audio input: decode any speech file (or a video's audio track) to mono float32 samples.

`load_audio` decodes with PyAV (FFmpeg), so WAV, MP3, FLAC, Ogg/Vorbis, Opus, M4A/AAC and the
audio track of MP4/WebM/MKV/MOV files all work, at any sample rate and channel count. The
result is one (N,) float32 array in [-1, 1] at the requested rate: channels are averaged
(FFmpeg's normalised downmix) and the signal is resampled once, by libswresample, through
`av.AudioResampler`.

Problems the user can fix (missing, empty, unreadable or audio-less files) raise
`FacecastError` with one sentence saying what is wrong and what to do. A truncated or damaged
file (packets that fail to decode, or less audio than the file declares) gives what can be read
and a `FacecastWarning` saying how much that is. Silence is valid input (the face then stays
quiet); clipped audio loads too, and `audio_stats` reports it.
"""
from __future__ import annotations

import math
import os
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import av
import numpy as np

from ..errors import FacecastError, FacecastWarning
from ..inputs import check_input_file

#: Default analysis rate: everything downstream (acoustics) works at 16 kHz.
SAMPLE_RATE = 16000           # Hz: what the acoustic analysis and motion generator take
#: A sample at or above this magnitude counts as clipped.
CLIP_LEVEL = 0.999
#: Frame length (s) and level (dBFS RMS) used by `is_silent`: audio is silent when no frame
#: is louder than this. Quiet rooms sit near -60 dBFS, speech at -35..-10 dBFS.
SILENCE_FRAME_S = 0.02
SILENCE_THRESHOLD_DB = -50.0
#: Decoding gives up (as corrupt) when more than this share of packets fail to decode.
MAX_BAD_PACKET_FRACTION = 0.5
#: A file counts as truncated when the decoded audio is shorter than the duration its header
#: declares by more than this many seconds, or this share of it (whichever is more): encoder
#: delay and padding stay well below, and FFmpeg's duration estimates are within it.
TRUNCATION_TOLERANCE_S = 0.25
TRUNCATION_TOLERANCE_FRACTION = 0.02

_VIDEO_HINT = "use a file that contains speech audio, or extract the audio track first"


@dataclass(frozen=True)
class AudioInfo:
    """What a file's (first) audio track holds, before any conversion.

    duration_s: length in seconds; sample_rate: original rate in Hz; channels: channel count;
    codec: FFmpeg codec name (e.g. 'mp3', 'aac', 'pcm_s16le'); container: FFmpeg format name.
    """

    duration_s: float
    sample_rate: int
    channels: int
    codec: str
    container: str


@dataclass(frozen=True)
class AudioStats:
    """Level summary of a float signal in [-1, 1].

    peak: max |x|; rms: root mean square; rms_db: RMS in dBFS (-inf for digital silence);
    clipped_fraction: share of samples with |x| >= CLIP_LEVEL; silent: `is_silent(x)`.
    """

    peak: float
    rms: float
    rms_db: float
    clipped_fraction: float
    silent: bool

    @property
    def clipped(self) -> bool:
        """True when at least 0.1 % of the samples sit at full scale."""
        return self.clipped_fraction >= 1e-3


def _check_file(path: str | os.PathLike) -> Path:
    p = check_input_file(path, "audio file")
    if p.stat().st_size == 0:
        raise FacecastError(f"audio file {p} is empty (0 bytes); record or export the speech again")
    return p


def _open(p: Path):
    try:
        return av.open(str(p), mode="r")
    except PermissionError as e:
        raise FacecastError(f"cannot read audio file {p}: permission denied; check its permissions") from e
    except (av.FFmpegError, OSError, UnicodeDecodeError, ValueError) as e:
        raise FacecastError(
            f"{p} is not a readable audio or video file (FFmpeg: {_reason(e)}); "
            "check that it is not corrupt, or convert it to WAV or MP3") from e


def _reason(e: BaseException) -> str:
    msg = getattr(e, "strerror", None) or str(e) or type(e).__name__
    return " ".join(str(msg).split())


def _audio_stream(container, p: Path):
    streams = [s for s in container.streams.audio if (s.codec_context.channels or 0) > 0] \
        or list(container.streams.audio)
    if not streams:
        what = "only video or images" if container.streams.video else "no media streams FFmpeg can use"
        raise FacecastError(
            f"{p} has no audio track (it contains {what}, format '{container.format.name}'); {_VIDEO_HINT}")
    return streams[0]


def _declared_duration(container, stream, p: Path) -> float | None:
    """Seconds of audio the file says it holds, or None when it does not say."""
    if container.format.name == "wav":
        return _riff_declared_duration(p)
    if stream.duration is not None and stream.time_base is not None:
        d = float(stream.duration * stream.time_base)
    elif container.duration is not None:
        d = container.duration / av.time_base
    else:
        return None
    return d if math.isfinite(d) and d > 0 else None


def _riff_declared_duration(p: Path) -> float | None:
    """The duration a RIFF/WAVE header declares: its data chunk's size over its byte rate.

    Read here because FFmpeg clamps the data size to the bytes present, which hides a cut file.
    None for other files and for streamed WAVs that leave the size open (0 or 0xFFFFFFFF).
    """
    with open(p, "rb") as f:
        head = f.read(1 << 16)
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        return None
    pos, byte_rate = 12, 0
    while pos + 8 <= len(head):
        chunk, size = head[pos:pos + 4], struct.unpack_from("<I", head, pos + 4)[0]
        if chunk == b"fmt " and pos + 20 <= len(head):
            byte_rate = struct.unpack_from("<I", head, pos + 16)[0]
        elif chunk == b"data":
            return size / byte_rate if byte_rate and size not in (0, 0xFFFFFFFF) else None
        pos += 8 + size + (size & 1)
    return None


def _warn_if_incomplete(p: Path, read_s: float, declared_s: float | None, n_bad: int, n_packets: int) -> None:
    short = declared_s is not None and declared_s - read_s > max(TRUNCATION_TOLERANCE_S,
                                                                  TRUNCATION_TOLERANCE_FRACTION * declared_s)
    if not (short or n_bad):
        return
    if declared_s is not None and declared_s > read_s:
        amount = f"read {read_s:.1f} s of {declared_s:.1f} s"
    else:
        amount = f"read {read_s:.1f} s; {n_bad} of {n_packets} audio packets failed to decode"
    warnings.warn(f"the audio file {p} is truncated or damaged: {amount}; the readable part is used",
                  FacecastWarning)


def load_audio(path: str | os.PathLike, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode the first audio track of `path` to mono float32 at `sample_rate`.

    Returns an (N,) float32 array in [-1, 1]. Multi-channel audio is downmixed with FFmpeg's
    normalised matrix (stereo -> (L + R) / 2). Packets that fail to decode are skipped and a
    truncated tail is tolerated, with a `FacecastWarning` saying how much was read; a file that
    yields no samples raises `FacecastError`.
    """
    return np.concatenate(list(iter_audio(path, sample_rate)))


def iter_audio(path: str | os.PathLike, sample_rate: int = SAMPLE_RATE) -> Iterator[np.ndarray]:
    """Stream the first audio track of `path` as mono float32 chunks at `sample_rate`.

    Same decoding, errors and warning as `load_audio`, in constant memory (for hour-long files).
    The errors about an undecodable or empty file, and the warning about a truncated or damaged
    one, come when the stream ends.
    """
    sample_rate = int(sample_rate)
    if sample_rate <= 0:
        raise ValueError(f"sample_rate must be positive, got {sample_rate}")
    p = _check_file(path)
    n = n_packets = n_bad = 0
    first_error: BaseException | None = None

    def clean(parts):
        nonlocal n
        for f in parts:
            x = np.clip(np.nan_to_num(_to_mono(f), nan=0.0, posinf=1.0, neginf=-1.0), -1.0, 1.0)
            n += len(x)
            if len(x):
                yield x

    with _open(p) as container:
        stream = _audio_stream(container, p)
        declared_s = _declared_duration(container, stream, p)
        resampler = _new_resampler(sample_rate)
        try:
            for packet in container.demux(stream):
                n_packets += 1
                try:
                    frames = packet.decode()
                except av.FFmpegError as e:
                    n_bad += 1
                    first_error = first_error or e
                    continue
                for frame in frames:
                    if frame.samples == 0:
                        continue
                    try:
                        out = resampler.resample(frame)
                    except ValueError:  # format/rate/layout changed mid-stream: start over
                        yield from clean(resampler.resample(None))
                        resampler = _new_resampler(sample_rate)
                        out = resampler.resample(frame)
                    yield from clean(out)
                if n_packets >= 20 and n_bad > MAX_BAD_PACKET_FRACTION * n_packets:
                    break
        except av.FFmpegError as e:  # demuxer gave up (truncated/corrupt container)
            first_error = first_error or e
            n_bad += 1
        yield from clean(resampler.resample(None))
    if n == 0:
        if first_error is not None:
            raise FacecastError(
                f"{p} could not be decoded (FFmpeg: {_reason(first_error)}); the file is corrupt "
                "or not audio, so export or convert it again")
        raise FacecastError(f"{p} contains zero-length audio (no samples); use a recording with speech in it")
    if n_packets and n_bad > MAX_BAD_PACKET_FRACTION * n_packets:
        raise FacecastError(
            f"{p} is badly corrupt ({n_bad} of {n_packets} audio packets failed to decode); "
            "export or convert it again")
    _warn_if_incomplete(p, n / sample_rate, declared_s, n_bad, n_packets)


def _new_resampler(sample_rate: int) -> av.AudioResampler:
    # rematrix_maxval=1 makes libswresample normalise the downmix matrix for float output
    # (without it stereo -> mono sums to (L + R) / sqrt(2) and can exceed full scale).
    return av.AudioResampler(format="flt", layout="mono", rate=sample_rate,
                             options={"rematrix_maxval": "1.0"})


def _to_mono(frame) -> np.ndarray:
    return np.asarray(frame.to_ndarray(), np.float32).reshape(-1)


def load_audio_info(path: str | os.PathLike) -> AudioInfo:
    """Duration, original sample rate and channel count of the first audio track of `path`.

    Uses container metadata; when the duration is not stored it decodes the track to count
    samples. Raises `FacecastError` for the same bad inputs as `load_audio`.
    """
    p = _check_file(path)
    with _open(p) as container:
        stream = _audio_stream(container, p)
        cc = stream.codec_context
        rate = int(cc.sample_rate or stream.rate or 0)
        channels = int(cc.channels or 0)
        codec = cc.name or "unknown"
        fmt = container.format.name
        duration = None
        if stream.duration is not None and stream.time_base is not None:
            duration = float(stream.duration * stream.time_base)
        elif container.duration is not None:
            duration = container.duration / av.time_base
    if duration is None or not math.isfinite(duration) or duration <= 0 or rate <= 0:
        native = rate if rate > 0 else SAMPLE_RATE
        x = load_audio(p, native)
        duration = len(x) / native
        rate = native
    return AudioInfo(duration_s=float(duration), sample_rate=rate, channels=channels, codec=codec,
                     container=fmt)


def save_wav(path: str | os.PathLike, x: np.ndarray, sample_rate: int) -> Path:
    """Write float samples in [-1, 1] as 16-bit PCM WAV. `x` is (N,) mono or (N, C)."""
    import soundfile as sf

    x = np.asarray(x, np.float32)
    if x.ndim not in (1, 2):
        raise ValueError(f"expected (N,) or (N, C) samples, got shape {x.shape}")
    p = Path(path)
    sf.write(str(p), np.clip(np.nan_to_num(x), -1.0, 1.0), int(sample_rate), subtype="PCM_16",
             format="WAV")
    return p


def _frame_rms_db(x: np.ndarray, frame: int) -> np.ndarray:
    """(ceil(N / frame),) RMS level in dBFS of consecutive frames (the last one zero-padded)."""
    n = -(-len(x) // frame)
    blocks = np.zeros(n * frame, np.float64)
    blocks[: len(x)] = x
    return 20 * np.log10(np.sqrt(np.mean(blocks.reshape(n, frame) ** 2, axis=1)) + 1e-12)


def is_silent(x: np.ndarray, sample_rate: int = SAMPLE_RATE,
              threshold_db: float = SILENCE_THRESHOLD_DB) -> bool:
    """True when no 20 ms frame of `x` is louder than `threshold_db` dBFS RMS (empty -> True)."""
    x = np.asarray(x, np.float32).reshape(-1)
    if len(x) == 0:
        return True
    frame = max(1, int(round(SILENCE_FRAME_S * sample_rate)))
    return bool(np.max(_frame_rms_db(x, frame)) < threshold_db)


def audio_stats(x: np.ndarray, sample_rate: int = SAMPLE_RATE) -> AudioStats:
    """Peak, RMS, clipped fraction and silence of (N,) samples in [-1, 1]."""
    x = np.asarray(x, np.float32).reshape(-1)
    if len(x) == 0:
        return AudioStats(0.0, 0.0, -math.inf, 0.0, True)
    a = np.abs(x.astype(np.float64))
    rms = float(np.sqrt(np.mean(a ** 2)))
    return AudioStats(
        peak=float(a.max()),
        rms=rms,
        rms_db=20 * math.log10(rms) if rms > 0 else -math.inf,
        clipped_fraction=float(np.mean(a >= CLIP_LEVEL)),
        silent=is_silent(x, sample_rate),
    )


def resample(x: np.ndarray, from_rate: int, to_rate: int) -> np.ndarray:
    """(N,) float32 audio from `from_rate` to `to_rate` Hz (scipy polyphase), for audio already in
    memory; files are resampled while decoding (`iter_audio`)."""
    x = np.asarray(x, np.float32).reshape(-1)
    if int(from_rate) == int(to_rate):
        return x
    from scipy.signal import resample_poly
    g = math.gcd(int(from_rate), int(to_rate))
    return resample_poly(x, int(to_rate) // g, int(from_rate) // g).astype(np.float32)
