"""Audio loading: formats, rates, channels, video containers, bad inputs, truncated files, levels."""
import os
import warnings
from math import gcd

import av
import numpy as np
import pytest
import soundfile as sf
from scipy.signal import resample_poly

from facecast.audio.io import (
    AudioInfo,
    audio_stats,
    is_silent,
    iter_audio,
    load_audio,
    load_audio_info,
    save_wav,
)
from facecast.audio.speech import synthesize
from facecast.errors import FacecastError, FacecastWarning

SR = 16000


def _resample(x, src, dst):
    g = gcd(src, dst)
    return resample_poly(x, dst // g, src // g).astype(np.float32)


def encode(path, x, rate, codec, channels=1, video=None, options=None, container_options=None):
    """Write float mono `x` (at `rate`) with PyAV: `channels` copies (right one at half level
    for stereo), optionally with a small video track first."""
    layout = {1: "mono", 2: "stereo"}[channels]
    with av.open(str(path), "w", options=container_options or {}) as out:
        vs = None
        if video:
            vs = out.add_stream(video, rate=25)
            vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        st = out.add_stream(codec, rate=rate, options=options or {})
        st.layout = layout
        formats = st.codec_context.codec.audio_formats
        st.format = formats[0].name if formats else "fltp"
        data = np.stack([x, 0.5 * x][:channels]).astype(np.float32)
        res = av.AudioResampler(format=st.format.name, layout=layout, rate=rate)
        step = 1024
        for i in range(0, data.shape[1], step):
            fr = av.AudioFrame.from_ndarray(np.ascontiguousarray(data[:, i:i + step]), format="fltp",
                                            layout=layout)
            fr.sample_rate, fr.pts = rate, i
            for f2 in res.resample(fr):
                for p in st.encode(f2):
                    out.mux(p)
        for f2 in res.resample(None):
            for p in st.encode(f2):
                out.mux(p)
        for p in st.encode(None):
            out.mux(p)
        if vs is not None:
            for k in range(int(len(x) / rate * 25) + 1):
                img = np.full((48, 64, 3), k % 256, np.uint8)
                for p in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                    out.mux(p)
            for p in vs.encode(None):
                out.mux(p)
    return path


@pytest.fixture(scope="module")
def tts():
    """Real speech at 48 kHz and its 16 kHz reference."""
    audio, sr, _ = synthesize("Hello, this is a short test of facecast audio.", "en")
    x48 = np.clip(_resample(audio, sr, 48000), -1, 1)
    return x48, _resample(x48, 48000, SR)


def _aligned_corr(y, ref, max_lag=1600):
    """Best normalised correlation of y against ref over lags up to +-100 ms, and the lag."""
    n = min(len(y), len(ref)) - max_lag
    best, best_lag = -1.0, 0
    r = ref[max_lag // 2: max_lag // 2 + n - max_lag].astype(np.float64)
    for lag in range(0, max_lag, 4):
        seg = y[lag: lag + len(r)].astype(np.float64)
        c = float(np.dot(seg, r) / (np.linalg.norm(seg) * np.linalg.norm(r) + 1e-12))
        if c > best:
            best, best_lag = c, lag - max_lag // 2
    return best, best_lag


CASES = [
    # name, codec, rate, channels, video, min corr, options
    ("speech.wav", "pcm_s16le", 48000, 1, None, 0.99, None),
    ("speech44.wav", "pcm_s16le", 44100, 2, None, 0.99, None),
    ("speech.flac", "flac", 44100, 2, None, 0.99, None),
    ("speech.ogg", "libopus", 48000, 2, None, 0.9, None),
    ("speech.opus", "libopus", 48000, 1, None, 0.9, None),
    ("vorbis.ogg", "vorbis", 44100, 2, None, 0.9, {"strict": "experimental"}),
    ("speech.mp3", "libmp3lame", 44100, 2, None, 0.9, None),
    ("speech.m4a", "aac", 48000, 2, None, 0.9, None),
    ("clip.mp4", "aac", 44100, 2, "libx264", 0.9, None),
    ("clip.webm", "libopus", 48000, 2, "libvpx", 0.9, None),
    ("clip.mkv", "flac", 22050, 1, "mpeg4", 0.99, None),
]


@pytest.mark.parametrize("name,codec,rate,channels,video,min_corr,options", CASES)
def test_round_trip(tmp_path, tts, name, codec, rate, channels, video, min_corr, options):
    x48, ref = tts
    x = x48 if rate == 48000 else _resample(x48, 48000, rate)
    path = encode(tmp_path / name, x, rate, codec, channels, video, options)
    with warnings.catch_warnings():
        warnings.simplefilter("error", FacecastWarning)  # an intact file is not "truncated"
        y = load_audio(path)
    assert y.dtype == np.float32 and y.ndim == 1
    assert np.abs(y).max() <= 1.0
    assert abs(len(y) - len(ref)) < 0.06 * SR            # encoder padding/priming < 60 ms
    gain = 0.75 if channels == 2 else 1.0                 # stereo (x, x / 2) -> mean
    assert np.sqrt(np.mean(y ** 2)) == pytest.approx(gain * np.sqrt(np.mean(ref ** 2)), rel=0.1)
    corr, lag = _aligned_corr(y, ref)
    assert corr > min_corr, (corr, lag)
    assert abs(lag) <= 0.05 * SR
    info = load_audio_info(path)
    assert isinstance(info, AudioInfo)
    assert info.sample_rate == (48000 if codec == "libopus" else rate)
    assert info.channels == channels
    assert info.duration_s == pytest.approx(len(x) / rate, abs=0.1)


def test_other_target_rate_and_exact_wav(tmp_path, tts):
    x48, _ = tts
    p = save_wav(tmp_path / "a.wav", x48, 48000)
    y48 = load_audio(p, sample_rate=48000)  # no resampling: exact up to 16-bit quantisation
    assert len(y48) == len(x48) and np.max(np.abs(y48 - x48)) <= 1 / 32768 + 1e-7
    y22 = load_audio(p, sample_rate=22050)
    assert abs(len(y22) - len(x48) * 22050 / 48000) <= 2


def test_stereo_downmix_is_average(tmp_path):
    t = np.arange(SR) / SR
    left = 0.6 * np.sin(2 * np.pi * 220 * t)
    right = 0.2 * np.sin(2 * np.pi * 220 * t)
    p = tmp_path / "st.wav"
    sf.write(p, np.stack([left, right], 1), SR, subtype="FLOAT")
    y = load_audio(p)
    assert np.max(np.abs(y - 0.4 * np.sin(2 * np.pi * 220 * t))) < 1e-4


def test_save_wav_round_trip(tmp_path):
    x = np.linspace(-1.2, 1.2, 1000).astype(np.float32)
    p = save_wav(tmp_path / "m.wav", x, 8000)
    info = sf.info(p)
    assert info.subtype == "PCM_16" and info.samplerate == 8000 and info.channels == 1
    y, _ = sf.read(p, dtype="float32")
    assert np.max(np.abs(y - np.clip(x, -1, 1))) <= 1 / 32768 + 1e-6
    st = save_wav(tmp_path / "s.wav", np.stack([x, -x], 1), 8000)
    assert sf.info(st).channels == 2


def test_clipped_audio_loads_and_is_flagged(tmp_path, tts):
    _, ref = tts
    p = save_wav(tmp_path / "clip.wav", np.clip(ref * 8, -1, 1), SR)
    y = load_audio(p)
    st = audio_stats(y)
    assert st.clipped and st.clipped_fraction > 0.01 and st.peak >= 0.999
    assert not st.silent
    clean = audio_stats(ref)
    assert not clean.clipped and clean.clipped_fraction == 0
    assert -40 < clean.rms_db < -5


def test_silence_is_valid(tmp_path):
    p = save_wav(tmp_path / "quiet.wav", np.zeros(SR, np.float32), SR)
    y = load_audio(p)
    assert len(y) == SR and is_silent(y)
    assert audio_stats(y).silent and audio_stats(y).rms_db == -np.inf
    noise = np.random.default_rng(0).standard_normal(SR).astype(np.float32) * 1e-3   # -60 dBFS
    assert is_silent(noise)
    assert not is_silent(noise * 100)
    assert is_silent(np.zeros(0, np.float32))


# --- bad inputs ---------------------------------------------------------------------------------

def _no_audio_mp4(path):
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=25)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        for _ in range(5):
            for p in vs.encode(av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")):
                out.mux(p)
        for p in vs.encode(None):
            out.mux(p)
    return path


def _jpeg_as_wav(path):
    from PIL import Image
    jpg = path.with_suffix(".jpg")
    Image.new("RGB", (32, 32), (200, 10, 10)).save(jpg)
    os.replace(jpg, path)
    return path


BAD = [
    ("missing.wav", lambda p: p, "not found"),
    ("folder.wav", lambda p: (p.mkdir(), p)[1], "folder"),
    ("empty.wav", lambda p: (p.write_bytes(b""), p)[1], "empty"),
    ("notes.wav", lambda p: (p.write_text("this is a text file, not audio\n" * 20), p)[1], "not a readable"),
    ("random.mp3", lambda p: (p.write_bytes(np.random.default_rng(0).bytes(5000)), p)[1], "not a readable"),
    ("photo.wav", _jpeg_as_wav, "no audio track"),
    ("silent_video.mp4", _no_audio_mp4, "no audio track"),
    ("zero.wav", lambda p: (sf.write(p, np.zeros(0, np.float32), SR, subtype="PCM_16"), p)[1], "zero-length"),
]


@pytest.mark.parametrize("name,make,words", BAD, ids=[b[0] for b in BAD])
def test_bad_inputs(tmp_path, name, make, words):
    path = make(tmp_path / name)
    for fn in (load_audio, load_audio_info):
        with pytest.raises(FacecastError, match=words) as e:
            fn(path)
        msg = str(e.value)
        assert "\n" not in msg and name in msg


def test_truncated_file_keeps_what_decodes(tmp_path, tts):
    _, ref = tts
    p = save_wav(tmp_path / "full.wav", ref, SR)
    b = p.read_bytes()
    t = tmp_path / "cut.wav"
    t.write_bytes(b[: len(b) // 2])
    with pytest.warns(FacecastWarning, match=r"cut.wav is truncated or damaged: read 1\.\d s of 3\.\d s"):
        y = load_audio(t)
    assert abs(len(y) - len(ref) // 2) < 100


TRUNCATED = [
    # name, codec, container options: the m4a has its index first (faststart), else half a file
    # has none and is refused as unreadable
    ("speech.mp3", "libmp3lame", None),
    ("speech.m4a", "aac", {"movflags": "faststart"}),
    ("speech.flac", "flac", None),
    ("speech.wav", "pcm_s16le", None),
]


@pytest.mark.parametrize("name,codec,container_options", TRUNCATED, ids=[t[0] for t in TRUNCATED])
def test_truncated_files_warn_how_much_was_read(tmp_path, tts, name, codec, container_options):
    x48, _ = tts
    full = encode(tmp_path / name, x48, 48000, codec, container_options=container_options)
    total_s = len(x48) / 48000
    cut = tmp_path / f"cut_{name}"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    with pytest.warns(FacecastWarning) as w:
        y = load_audio(cut)
    assert len(w) == 1
    msg = str(w[0].message)
    assert f"cut_{name} is truncated or damaged: read " in msg and f" of {total_s:.1f} s" in msg, msg
    read_s = float(msg.split("read ")[1].split(" s")[0])
    assert read_s == pytest.approx(len(y) / SR, abs=0.05)
    assert 0.3 * total_s < len(y) / SR < 0.7 * total_s
    # streaming gives the same warning, when the stream ends
    with pytest.warns(FacecastWarning, match="truncated or damaged"):
        chunks = list(iter_audio(cut))
    assert sum(map(len, chunks)) == len(y)
