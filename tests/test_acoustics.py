"""Acoustic features on real eSpeak speech: events, vowel qualities, VAD, streaming exactness."""
import time

import numpy as np
import pytest

from facecast.audio.acoustics import HOP_S, AcousticAnalyzer, AcousticFeatures, analyze
from facecast.audio.speech import synthesize

SR = 16000
FIELDS = ("energy_db", "loudness", "voicing", "pitch_hz", "f1_hz", "f2_hz", "openness", "frontness",
          "rounding", "nasal", "fricative", "closure", "burst", "aperture", "speech")


def _frames(p, n, pad_s=0.0):
    """Frame slice covering phoneme p (frame t covers [t, t + 1) * HOP_S)."""
    a = max(0, int(round((p.start_s - pad_s) / HOP_S)))
    b = min(n, int(round((p.end_s + pad_s) / HOP_S)))
    return slice(a, b)


def _core(p, n, frac=0.25):
    """Frames of the middle of phoneme p (drops `frac` of it at each end)."""
    d = p.end_s - p.start_s
    return slice(int((p.start_s + frac * d) / HOP_S), min(n, int((p.end_s - frac * d) / HOP_S) + 1))


@pytest.fixture(scope="module")
def papapa():
    audio, sr, ph = synthesize("pa pa pa", "en", sample_rate=SR)
    return audio, ph, analyze(audio, sr)


def test_shapes_and_ranges(papapa):
    audio, ph, f = papapa
    assert len(f) == -(-len(audio) // 160)
    for name in FIELDS:
        a = getattr(f, name)
        assert a.dtype == np.float32 and a.shape == (len(f),), name
        assert np.all(np.isfinite(a)), name
    for name in ("loudness", "voicing", "openness", "frontness", "rounding", "nasal", "fricative",
                 "closure", "burst", "aperture", "speech"):
        a = getattr(f, name)
        assert a.min() >= 0 and a.max() <= 1, name
    assert f.energy_db.min() >= -100 and f.energy_db.max() < 0
    assert np.all((f.pitch_hz == 0) | ((f.pitch_hz > 60) & (f.pitch_hz < 500)))
    assert f.duration_s == pytest.approx(len(f) * 0.01)


def test_pa_pa_pa_closure_then_burst(papapa):
    audio, ph, f = papapa
    n = len(f)
    ps = [p for p in ph if p.symbol == "p"]
    vowels = [p for p in ph if p.symbol == "A:"]
    for p in ps[1:]:  # word-internal: the energy drop comes from the preceding vowel
        seg = _frames(p, n)
        cl = f.closure[seg]
        assert cl.max() > 0.8, "closure not detected inside p"
        t_cl = seg.start + int(np.argmax(cl))
        after = f.burst[t_cl: min(n, seg.stop + 3)]
        assert after.max() > 0.3, "no burst after the p closure"
        t_burst = t_cl + int(np.argmax(after))
        assert t_burst > t_cl
        assert f.openness[t_cl] < 0.05 and f.loudness[t_cl] < 0.05
    for v in vowels:
        core = _core(v, n)
        assert f.closure[core].max() == 0 and f.burst[core].max() == 0
        assert f.openness[core].mean() > 0.8
        assert f.voicing[core].mean() > 0.7
        assert np.mean(f.pitch_hz[core] > 60) > 0.8
        assert 650 < np.median(f.f1_hz[core]) < 950   # open back vowel: high F1 ...
        assert 900 < np.median(f.f2_hz[core]) < 1400  # ... and low F2
    assert f.speech[_frames(vowels[0], n).start: _frames(vowels[-1], n).stop].min() > 0.9


@pytest.mark.parametrize("voice,open_,close_front,close_back", [
    ("en", "ah", "ee", "oo"),
    ("es", "a", "i", "u"),
    ("de", "ah", "ih", "uh"),
])
def test_vowel_qualities(voice, open_, close_front, close_back):
    def vowel(text):
        audio, sr, ph = synthesize(text, voice, sample_rate=SR)
        f = analyze(audio, sr)
        v = next(p for p in ph if p.kind in ("vowel", "open_vowel"))
        core = _core(v, len(f))
        return {k: float(np.mean(getattr(f, k)[core])) for k in ("openness", "frontness", "rounding")}

    a, i, u = vowel(open_), vowel(close_front), vowel(close_back)
    assert a["openness"] > i["openness"] + 0.3 and a["openness"] > u["openness"] + 0.3
    assert i["frontness"] > a["frontness"] + 0.3 and i["frontness"] > u["frontness"] + 0.3
    assert u["rounding"] > a["rounding"] + 0.2 and u["rounding"] > i["rounding"] + 0.2
    if voice != "en":  # eSpeak's English /u:/ is fronted; true back /u/ is strongly rounded
        assert u["rounding"] > 0.7 and u["frontness"] < 0.1


def test_fricatives_and_nasals():
    audio, sr, ph = synthesize("sa sha fa, mamma", "it", sample_rate=SR)
    f = analyze(audio, sr)
    n = len(f)
    fric = [p for p in ph if p.symbol in ("s", "S", "f")]
    nas = [p for p in ph if p.symbol in ("m", "m:")]
    vow = [p for p in ph if p.kind in ("vowel", "open_vowel")]
    assert len(fric) == 3 and nas
    for p in fric:
        assert f.fricative[_core(p, n)].mean() > 0.5, p
    assert np.mean([f.nasal[_core(p, n)].mean() for p in nas]) > 0.4
    for p in vow:
        c = _core(p, n)
        assert f.fricative[c].max() < 0.1 and f.nasal[c].mean() < 0.2, p
    # lips closed for m: openness low compared with the vowels
    assert np.mean([f.openness[_core(p, n)].mean() for p in nas]) < \
        0.5 * np.mean([f.openness[_core(p, n)].mean() for p in vow])


def test_silence_and_noise_are_not_speech():
    f = analyze(np.zeros(2 * SR, np.float32))
    assert len(f) == 200
    for name in ("speech", "openness", "loudness", "voicing", "closure", "burst", "fricative", "aperture"):
        assert getattr(f, name).max() < 0.05, name
    assert np.all(f.pitch_hz == 0) and np.all(f.energy_db == -100)
    noise = (np.random.default_rng(0).standard_normal(3 * SR) * 0.002).astype(np.float32)  # -54 dBFS
    g = analyze(noise)
    assert g.speech.mean() < 0.1 and g.openness.max() < 0.05 and g.aperture.max() < 0.05


@pytest.mark.parametrize("voice", ["en", "de"])
def test_aperture_is_high_on_open_vowels_and_low_on_closed_lips(voice):
    """The 2.5-4 kHz band follows the mouth: wide on the vowels, far down on /m/ and in the
    closure of /p/ (the first /m/ is skipped: the band's running level starts from a default)."""
    audio, sr, ph = synthesize("mama, papa, Mama, Papa", voice, sample_rate=SR)
    f = analyze(audio, sr)
    n = len(f)
    opened = [float(f.aperture[_core(p, n)].mean()) for p in ph if p.kind in ("open_vowel", "vowel")]
    closed = [float(f.aperture[_core(p, n)].mean()) for p in ph[1:] if p.kind == "bilabial"]
    assert len(opened) >= 6 and len(closed) >= 6
    assert np.mean(opened) > 0.8
    assert np.mean(closed) < np.mean(opened) - 0.4


def test_pause_lowers_speech():
    audio, sr, _ = synthesize("one", "en", sample_rate=SR)
    gap = np.zeros(SR, np.float32)
    f = analyze(np.concatenate([audio, gap, audio]), sr)
    t0 = len(audio) // 160
    assert f.speech[t0 + 50: t0 + 90].max() < 0.05      # well inside the 1 s pause
    assert f.speech[: t0].max() > 0.9 and f.speech[t0 + 100:].max() > 0.9


def test_level_invariance():
    audio, sr, _ = synthesize("Peter picked a peck of pickled peppers, mama.", "en", sample_rate=SR)
    ref = analyze(audio, sr)
    for gain in (0.03, 2.0):   # -30 dB and +6 dB (clipping a little)
        g = analyze(np.clip(audio * gain, -1, 1), sr)
        for name in ("loudness", "openness", "frontness", "rounding", "speech", "closure"):
            assert np.mean(np.abs(getattr(g, name) - getattr(ref, name))) < 0.06, (gain, name)


@pytest.fixture(scope="module")
def long_speech():
    audio, sr, _ = synthesize("The quick brown fox jumps over the lazy dog. Peter Piper picked "
                              "a peck of pickled peppers! Is this silence?", "en", sample_rate=SR)
    noise = np.random.default_rng(1).standard_normal(len(audio)).astype(np.float32) * 1e-3
    return np.concatenate([np.zeros(SR // 3, np.float32), audio + noise])


def _stream(x, sizes):
    an = AcousticAnalyzer()
    parts, i = [], 0
    for s in sizes:
        parts.append(an.push(x[i:i + s]))
        i += s
    parts.append(an.push(x[i:]))
    parts.append(an.flush())
    return AcousticFeatures.concat(parts)


def test_streaming_is_bit_identical(long_speech):
    x = long_speech
    whole = analyze(x)
    chunk20 = _stream(x, [320] * (len(x) // 320))
    rng = np.random.default_rng(7)
    sizes = list(rng.integers(0, 3000, size=len(x) // 1000))
    sizes[:4] = [0, 1, 7, 175]
    rand = _stream(x, sizes)
    for other in (chunk20, rand):
        assert len(other) == len(whole)
        for name in FIELDS:
            assert np.array_equal(getattr(other, name), getattr(whole, name)), name
        assert other.equals(whole)


def test_streaming_latency():
    """Frame t is emitted as soon as sample t * 160 + 336 has arrived (11 ms look-ahead)."""
    an = AcousticAnalyzer()
    assert len(an.push(np.zeros(335, np.float32))) == 0
    assert len(an.push(np.zeros(1, np.float32))) == 1
    assert len(an.push(np.zeros(159, np.float32))) == 0
    assert len(an.push(np.zeros(1, np.float32))) == 1
    assert len(an.flush()) == 2  # 496 samples -> ceil(496 / 160) = 4 frames, 2 already out
    with pytest.raises(RuntimeError):
        an.push(np.zeros(10, np.float32))


def test_short_and_empty_inputs():
    assert len(analyze(np.zeros(0, np.float32))) == 0
    assert len(analyze(np.zeros(1, np.float32))) == 1
    assert len(analyze(np.zeros(160, np.float32))) == 1
    assert len(analyze(np.zeros(161, np.float32))) == 2
    f = analyze(np.array([np.nan, 1.0, -np.inf] * 100, np.float32))
    assert all(np.all(np.isfinite(getattr(f, n))) for n in FIELDS)


def test_other_sample_rate_is_resampled():
    audio, sr, _ = synthesize("pa pa pa", "en")  # 22050 Hz
    f = analyze(audio, sr)
    assert abs(len(f) - len(audio) / sr / HOP_S) <= 2
    assert f.closure.max() > 0.8
    with pytest.raises(ValueError):
        AcousticAnalyzer(sample_rate=22050)


def test_features_container(papapa):
    _, _, f = papapa
    a, b = f.slice(0, 10), f.slice(10, len(f))
    assert len(a) == 10 and len(b) == len(f) - 10
    assert AcousticFeatures.concat([a, b]).equals(f)
    assert len(AcousticFeatures.concat([])) == 0
    assert len(AcousticFeatures.empty()) == 0
    assert set(f.as_dict()) == set(FIELDS)
    assert f.times()[0] == pytest.approx(0.005)
    with pytest.raises(ValueError):
        AcousticFeatures(**{n: np.zeros(3 if n == "speech" else 2) for n in FIELDS})


def test_speed(long_speech):
    x = np.tile(long_speech, 3)[: 20 * SR]
    analyze(x[:SR])  # warm-up
    t = time.perf_counter()
    analyze(x)
    dt = time.perf_counter() - t
    # target is >= 200x real time on one core; keep a margin for loaded test machines
    assert 20.0 / dt > 50, f"{20.0 / dt:.0f}x real time"
