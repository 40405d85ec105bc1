"""eSpeak NG synthesis with phoneme timing, phoneme classification and label files."""
import threading

import numpy as np
import pytest

from facecast.audio.speech import (
    KINDS,
    EspeakSynth,
    Phoneme,
    classify_phoneme,
    load_phoneme_labels,
    synthesize,
)
from facecast.errors import FacecastError


def _block_db(audio, sr, start_s, end_s, block_s=0.005):
    """Per-5 ms RMS in dB re the utterance's loudest 5 ms block, over [start_s, end_s)."""
    b = int(sr * block_s)
    n = len(audio) // b
    rms = np.sqrt(np.mean(audio[: n * b].astype(np.float64).reshape(n, b) ** 2, axis=1)) + 1e-9
    db = 20 * np.log10(rms / rms.max())
    return db[int(start_s / block_s): int(end_s / block_s)]


def _check_tiling(audio, sr, phonemes):
    assert phonemes, "no phonemes"
    assert phonemes[0].start_s == 0.0
    assert phonemes[-1].end_s == pytest.approx(len(audio) / sr, abs=1e-9)
    for a, b in zip(phonemes, phonemes[1:]):
        assert a.end_s == b.start_s
    for p in phonemes:
        assert p.end_s > p.start_s
        assert p.kind in KINDS


@pytest.fixture(scope="module")
def papapa():
    return synthesize("pa pa pa", "en")


def test_synthesize_pa_pa_pa(papapa):
    audio, sr, ph = papapa
    assert sr == 22050
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert 0.5 < len(audio) / sr < 2.0
    assert 0.1 < np.abs(audio).max() <= 1.0
    _check_tiling(audio, sr, ph)
    assert [p.symbol for p in ph if p.kind != "pause"] == ["p", "A:", "p", "A:", "p", "A:"]
    assert [p.kind for p in ph if p.kind != "pause"] == ["bilabial", "open_vowel"] * 3
    assert all(p.stress == 2 for p in ph if p.symbol == "A:")


def test_p_closure_is_a_silent_gap_and_vowels_are_loud(papapa):
    audio, sr, ph = papapa
    ps = [p for p in ph if p.symbol == "p"]
    vowels = [p for p in ph if p.symbol == "A:"]
    for p in ps[1:]:   # word-internal p: closure silence then release, inside the p interval
        db = _block_db(audio, sr, p.start_s, p.end_s)
        assert db.min() < -50, "no closure silence inside the p interval"
        assert np.argmin(db) < len(db) // 2 + 1, "the closure should come before the release"
        assert db[-3:].max() > -40, "no release at the end of the p interval"
    for v in vowels:
        mid = _block_db(audio, sr, v.start_s + 0.3 * v.duration_s, v.start_s + 0.7 * v.duration_s)
        assert mid.min() > -20


@pytest.mark.parametrize("voice,text,expect_bilabial,expect_labiodental", [
    ("en", "My father bought a big map.", {"m", "b", "p"}, {"f"}),
    ("es", "Pablo bebe vino en la playa.", {"p", "B"}, set()),
    ("de", "Mein Vater baut ein Boot.", {"m", "b"}, {"f"}),
    ("fr", "Papa mange une pomme verte.", {"p", "m"}, {"v"}),
    ("it", "Mamma mia, il papa fuma.", {"m", "p"}, {"f"}),
])
def test_languages(voice, text, expect_bilabial, expect_labiodental):
    audio, sr, ph = synthesize(text, voice)
    _check_tiling(audio, sr, ph)
    kinds = {p.kind for p in ph}
    assert {"bilabial", "open_vowel", "pause"} <= kinds
    assert expect_bilabial <= {p.symbol for p in ph if p.kind == "bilabial"}
    assert expect_labiodental <= {p.symbol for p in ph if p.kind == "labiodental"}
    # bilabials are quiet relative to the open vowels around them (lips closed)
    loud = np.median([_block_db(audio, sr, p.start_s, p.end_s).mean() for p in ph if p.kind == "open_vowel"])
    quiet = np.median([_block_db(audio, sr, p.start_s, p.end_s).min() for p in ph if p.kind == "bilabial"])
    assert quiet < loud - 10


def test_resampled_output_keeps_phoneme_times():
    a, sr, ph = synthesize("Hello world", "en")
    b, sr16, ph16 = synthesize("Hello world", "en", sample_rate=16000)
    assert sr16 == 16000 and b.dtype == np.float32
    # eSpeak output varies by a few samples from call to call (flutter state), hence tolerances
    assert len(b) == pytest.approx(len(a) * 16000 / sr, rel=0.01)
    assert [p.symbol for p in ph] == [p.symbol for p in ph16]
    assert np.allclose([p.start_s for p in ph], [p.start_s for p in ph16], atol=0.005)
    assert ph16[-1].end_s == pytest.approx(len(b) / 16000, abs=1e-3)


def test_rate_changes_duration():
    slow, sr, _ = synthesize("one two three four", "en", rate_wpm=100)
    fast, _, _ = synthesize("one two three four", "en", rate_wpm=300)
    assert len(fast) < 0.7 * len(slow)


def test_thread_safe():
    ref = synthesize("Peter picked a pepper", "en")
    results = []

    def work():
        results.append(synthesize("Peter picked a pepper", "en"))

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 3
    for audio, sr, ph in results:
        assert sr == ref[1] and len(audio) == pytest.approx(len(ref[0]), rel=0.01)
        assert [(p.symbol, p.kind) for p in ph] == [(p.symbol, p.kind) for p in ref[2]]
        assert np.allclose([p.start_s for p in ph], [p.start_s for p in ref[2]], atol=0.005)
        _check_tiling(audio, sr, ph)


def test_explicit_synth_object():
    synth = EspeakSynth()
    assert synth.sample_rate == 22050
    audio, sr, ph = synth.synthesize("mama", "es")
    assert [p.kind for p in ph if p.kind != "pause"] == ["bilabial", "open_vowel", "bilabial", "open_vowel"]


@pytest.mark.parametrize("kwargs,words", [
    (dict(text="hello", voice="xx-nonexistent"), "unknown eSpeak voice"),
    (dict(text="   ", voice="en"), "no text"),
    (dict(text="hello", voice="en", rate_wpm=5), "rate"),
])
def test_synthesize_errors(kwargs, words):
    with pytest.raises(FacecastError, match=words):
        synthesize(**kwargs)


@pytest.mark.parametrize("symbol,kind", [
    # eSpeak mnemonics (with stress marks)
    ("p", "bilabial"), ("b", "bilabial"), ("m", "bilabial"), ("B", "bilabial"),
    ("f", "labiodental"), ("v", "labiodental"),
    ("'A:", "open_vowel"), ("a", "open_vowel"), (",aI", "open_vowel"), ("aU", "open_vowel"),
    ("0", "open_vowel"), ("V", "open_vowel"), ("a#", "vowel"),
    ("i:", "vowel"), ("@", "vowel"), ("u:", "vowel"), ("3:", "vowel"), ("O~", "vowel"),
    ("s", "consonant"), ("S", "consonant"), ("t", "consonant"), ("n", "consonant"), ("w", "consonant"),
    ("_", "pause"), ("_:", "pause"), ("", "pause"), ("sil", "pause"), ("SP", "pause"),
    # IPA
    ("ɑː", "open_vowel"), ("æ", "open_vowel"), ("ˈa", "open_vowel"), ("ɱ", "labiodental"),
    ("β", "bilabial"), ("pʰ", "bilabial"), ("ʃ", "consonant"), ("ə", "vowel"), ("ɪ", "vowel"),
])
def test_classify_phoneme(symbol, kind):
    assert classify_phoneme(symbol) == kind


def test_classify_arpabet():
    assert classify_phoneme("AA1", "arpabet") == "open_vowel"
    assert classify_phoneme("AY", "arpabet") == "open_vowel"
    assert classify_phoneme("IY0", "arpabet") == "vowel"
    assert classify_phoneme("V", "arpabet") == "labiodental"
    assert classify_phoneme("M", "arpabet") == "bilabial"
    assert classify_phoneme("SH", "arpabet") == "consonant"
    assert classify_phoneme("AH0") == "open_vowel"  # auto: multi-letter ARPAbet


def test_load_labels_whitespace(tmp_path):
    p = tmp_path / "ph.txt"
    p.write_text("# start end symbol\n0.00 0.10 sil\n0.10 0.18 p\n\n0.18 0.40 a:\n0.40 0.47 f\n0.47 0.60 i\n")
    ph = load_phoneme_labels(p)
    assert [(x.symbol, x.kind) for x in ph] == [
        ("sil", "pause"), ("p", "bilabial"), ("a:", "open_vowel"), ("f", "labiodental"), ("i", "vowel")]
    assert ph[1].start_s == 0.10 and ph[1].end_s == 0.18


def test_load_labels_audacity_arpabet(tmp_path):
    p = tmp_path / "labels.txt"
    p.write_text("0.000000\t0.120000\tM\n\\\t300.0\t3000.0\n0.120000\t0.300000\tAA1\n"
                 "0.300000\t0.380000\tV\n0.380000\t0.500000\tIY0\n0.500000\t0.600000\t\n")
    ph = load_phoneme_labels(p)
    assert [x.kind for x in ph] == ["bilabial", "open_vowel", "labiodental", "vowel", "pause"]
    assert ph[1].symbol == "AA1"


def test_load_labels_ipa_sorted(tmp_path):
    p = tmp_path / "ipa.lab"
    p.write_text("0.2 0.3 ˈɑ\n0.0 0.2 m\n0.3 0.4 ʋ\n", encoding="utf-8")
    ph = load_phoneme_labels(p)
    assert [x.start_s for x in ph] == [0.0, 0.2, 0.3]
    assert [x.kind for x in ph] == ["bilabial", "open_vowel", "labiodental"]
    assert ph[1].stress == 2 and ph[1].symbol == "ɑ"


@pytest.mark.parametrize("content,words", [
    ("0.1 abc p\n", "numbers"),
    ("0.3 0.2 p\n", "start <= end"),
    ("0.3\n", "expected"),
    ("# nothing\n", "no phoneme labels"),
])
def test_load_labels_errors(tmp_path, content, words):
    p = tmp_path / "bad.txt"
    p.write_text(content)
    with pytest.raises(FacecastError, match=words):
        load_phoneme_labels(p)


def test_load_labels_missing(tmp_path):
    with pytest.raises(FacecastError, match="not found"):
        load_phoneme_labels(tmp_path / "nope.txt")


def test_phoneme_dataclass():
    p = Phoneme("p", 0.1, 0.25, "bilabial")
    assert p.duration_s == pytest.approx(0.15) and p.stress == 0
