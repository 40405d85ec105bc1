"""Speech with known phoneme timing: eSpeak NG synthesis and phoneme label files.

`synthesize` speaks text with the eSpeak NG library shipped in the PyPI package
`espeakng-loader`, called through ctypes in synchronous mode, and returns the audio together
with sample-exact phoneme intervals taken from eSpeak's phoneme events. It exists to test and
demo lip sync: the timing of every /p b m/ and /f v/ is known.

`load_phoneme_labels` reads a user's own alignment: 'start end symbol' per line (seconds,
whitespace separated) or an Audacity label track ('start<TAB>end<TAB>label').

Every phoneme gets a `kind`, one of `KINDS`: 'bilabial' (p b m: lips closed), 'labiodental'
(f v: lower lip to teeth), 'open_vowel' (a-like, jaw wide open), 'vowel', 'consonant',
'pause'. `classify_phoneme` documents the mapping for eSpeak mnemonics, X-SAMPA, IPA and
ARPAbet symbols.

Timing note: eSpeak places the event of a voiceless stop (p t k) at its release; the silent
closure before it is part of the previous phoneme. `synthesize` moves the start of such a
stop back over that silence (at most `MAX_CLOSURE_S`), so a 'p' interval covers the lips'
closure as well as the burst.
"""
from __future__ import annotations

import ctypes
import os
import re
import threading
import unicodedata
from dataclasses import dataclass

import numpy as np

from ..errors import FacecastError
from ..inputs import check_input_file

KINDS: tuple[str, ...] = ("bilabial", "labiodental", "open_vowel", "vowel", "consonant", "pause")

# --- eSpeak NG C API (speak_lib.h) --------------------------------------------------------
AUDIO_OUTPUT_SYNCHRONOUS = 2
espeakINITIALIZE_PHONEME_EVENTS = 0x0001
espeakINITIALIZE_DONT_EXIT = 0x8000
espeakCHARS_UTF8 = 1
POS_CHARACTER = 1
espeakRATE = 1
espeakEVENT_LIST_TERMINATED = 0
espeakEVENT_PHONEME = 7
espeakEVENT_SAMPLERATE = 8
EE_OK = 0
#: eSpeak's accepted speaking rates (words per minute).
RATE_MIN_WPM, RATE_MAX_WPM = 80, 450

#: Longest silence (s) before a voiceless stop that is counted as its closure.
MAX_CLOSURE_S = 0.15
#: Level (dB below the utterance's loudest 5 ms block) under which audio counts as closure.
CLOSURE_LEVEL_DB = -35.0


class _EventId(ctypes.Union):
    _fields_ = [("number", ctypes.c_int), ("name", ctypes.c_char_p), ("string", ctypes.c_char * 8)]


class _Event(ctypes.Structure):
    """espeak_EVENT: 6 ints, a void* and an 8-byte union (40 bytes on 64-bit platforms)."""

    _fields_ = [
        ("type", ctypes.c_int),
        ("unique_identifier", ctypes.c_uint),
        ("text_position", ctypes.c_int),
        ("length", ctypes.c_int),
        ("audio_position", ctypes.c_int),  # ms from the start of this message's audio
        ("sample", ctypes.c_int),          # sample index from the start of this message's audio
        ("user_data", ctypes.c_void_p),
        ("id", _EventId),
    ]


_CALLBACK = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.POINTER(ctypes.c_short), ctypes.c_int,
                             ctypes.POINTER(_Event))


@dataclass
class Phoneme:
    """One phoneme interval. symbol: as written by the source, without stress marks;
    start_s, end_s: seconds from the start of the audio; kind: one of `KINDS`;
    stress: 0 none, 1 secondary, 2 primary (eSpeak only)."""

    symbol: str
    start_s: float
    end_s: float
    kind: str
    stress: int = 0

    @property
    def duration_s(self) -> float:
        return self.end_s - self.start_s


# --- phoneme classification ----------------------------------------------------------------
#: Bilabials (lips meet): eSpeak/X-SAMPA p b m and variants, IPA ɓ ʙ, ARPAbet P B M.
#: Spanish intervocalic b/v (eSpeak 'B', IPA β) and German 'pf' count too: viseme sets map them
#: to the same closed-lips shape.
BILABIAL = frozenset({"p", "b", "m", "p#", "b#", "ph", "p'", "m-", "m#", "B", "pf", "ɓ", "ʙ", "β", "ɸ"})
#: Labiodentals (lower lip to upper teeth): f v, eSpeak 'F' / IPA ɱ, ɱ, ʋ, ARPAbet F V.
LABIODENTAL = frozenset({"f", "v", "F", "ɱ", "ʋ", "V#", "v#", "f#"})
#: Open (a-like) vowels: eSpeak/X-SAMPA a a: aa A A: A@ aI aU aI@ aU@ aI3 0 (British 'lot')
#: V (strut) { (ae) 6 (near-open central) Q &, nasal a~ A~; IPA a ɑ ɒ æ ɐ ʌ ɶ and diphthongs
#: starting with them; ARPAbet AA AE AH AW AY. eSpeak's reduced English 'a#' ("about") is not
#: open (kind 'vowel').
OPEN_VOWEL_BASES = frozenset({"a", "a:", "aa", "A", "A:", "A@", "A#", "aI", "aU", "aI@", "aU@",
                              "aI3", "aI#", "0", "0:", "V", "{", "6", "Q", "a~", "A~", "&"})
_IPA_OPEN = "aɑɒæɐʌɶ"
REDUCED_VOWELS = frozenset({"a#"})
ARPABET_OPEN = frozenset({"AA", "AE", "AH", "AW", "AY"})
ARPABET_VOWELS = frozenset({"AA", "AE", "AH", "AO", "AW", "AX", "AXR", "AY", "EH", "ER", "EY", "IH",
                            "IX", "IY", "OW", "OY", "UH", "UW", "UX"})
ARPABET_CONSONANTS = frozenset({"B", "CH", "D", "DH", "DX", "EL", "EM", "EN", "F", "G", "HH", "H", "JH",
                                "K", "L", "M", "N", "NG", "NX", "P", "Q", "R", "S", "SH", "T", "TH",
                                "V", "W", "WH", "Y", "Z", "ZH"})
#: Symbols (case-insensitive for the words) that mean silence / pause.
PAUSE_SYMBOLS = frozenset({"", "_", "_:", "_!", "_^_", "_#", "sil", "sp", "spn", "pau", "pause",
                           "silence", "<sil>", "<sp>", "#", "h#", "|", "||", "-", "(.)", "."})
#: First characters that make an (ASCII) eSpeak / X-SAMPA symbol a vowel; plus IPA vowels.
_VOWEL_START = set("aeiouyAEIOUVY@0123456789&{}Q") | set("ɑɒæɐʌɶɛœəɘɵɜɞɪʏʊɯɤøɔɨʉ")
_STRESS_MARKS = "'ˈ,ˌ%=\""


def _strip(symbol: str) -> tuple[str, int]:
    s = unicodedata.normalize("NFC", symbol.strip())
    stress = 2 if s[:1] in ("'", "ˈ") else 1 if s[:1] in (",", "ˌ") else 0
    return s.lstrip(_STRESS_MARKS), stress


def classify_phoneme(symbol: str, alphabet: str = "auto") -> str:
    """Kind (one of `KINDS`) of one phoneme symbol.

    alphabet: 'espeak' / 'sampa' / 'ipa' (one shared table: eSpeak mnemonics are close to
    X-SAMPA, IPA letters are distinct), 'arpabet' (CMU ARPAbet, stress digits allowed), or
    'auto' (ARPAbet only when the symbol is an ARPAbet one written in upper case and longer
    than one letter; a single upper-case letter is read as eSpeak/X-SAMPA, so prefer
    `load_phoneme_labels`, which decides per file).
    """
    base, _ = _strip(symbol)
    if base.lower() in PAUSE_SYMBOLS or base.startswith("_"):
        return "pause"
    arpa = base.rstrip("012")
    if alphabet == "arpabet" or (alphabet == "auto" and len(arpa) > 1 and arpa.isupper()
                                 and arpa in ARPABET_VOWELS | ARPABET_CONSONANTS):
        if arpa in ("P", "B", "M", "EM"):
            return "bilabial"
        if arpa in ("F", "V"):
            return "labiodental"
        if arpa in ARPABET_OPEN:
            return "open_vowel"
        return "vowel" if arpa in ARPABET_VOWELS else "consonant"
    if base in ("P", "M"):  # upper-case single letters outside ARPAbet: X-SAMPA P is ʋ, M is ɯ
        return "labiodental" if base == "P" else "vowel"
    core = base.replace("ː", ":").replace("\u0303", "~").rstrip("ʰʲʷˠ̚")
    if core in BILABIAL or core[:1] in ("ɓ", "ʙ", "β", "ɸ") or re.fullmatch(r"[pbm][:#'\-]?", core):
        return "bilabial"
    if core in LABIODENTAL or core[:1] in ("ɱ", "ʋ") or re.fullmatch(r"[fv][:#'\-]?", core):
        return "labiodental"
    if core in OPEN_VOWEL_BASES or (core[:1] in _IPA_OPEN and core not in REDUCED_VOWELS):
        return "open_vowel"
    if core[:1] in _VOWEL_START:
        return "vowel"
    return "consonant"


# --- eSpeak NG synthesis ---------------------------------------------------------------------
#: eSpeak NG is one global C state per process: one lock serialises every call into it, and
#: the library is initialised once, lazily, by the first `EspeakSynth.synthesize`.
_LOCK = threading.Lock()
_LIB: dict[str, object] = {}   # 'lib', 'rate', 'callback' once initialised
_COLLECT: list = []            # [samples list, events list] of the call in progress (under _LOCK)


@_CALLBACK
def _synth_callback(wav, numsamples, events):
    samples, evs = _COLLECT
    if wav and numsamples > 0:
        samples.append(np.ctypeslib.as_array(wav, shape=(numsamples,)).copy())
    i = 0
    while events[i].type != espeakEVENT_LIST_TERMINATED:
        e = events[i]
        if e.type == espeakEVENT_PHONEME:
            evs.append((int(e.sample), bytes(e.id.string).split(b"\0", 1)[0].decode("utf-8", "replace")))
        i += 1
    return 0


class EspeakSynth:
    """Thin wrapper over the eSpeak NG shared library from `espeakng-loader`.

    Nothing is loaded until the first `synthesize` call. `library_path`/`data_path` default to
    the files shipped in the `espeakng_loader` package. eSpeak is one global C state per
    process, so the first instance to initialise it fixes the library and data for all.
    """

    def __init__(self, library_path: str | None = None, data_path: str | None = None):
        self.library_path = library_path
        self.data_path = data_path

    def _ensure(self):
        if "lib" in _LIB:
            return _LIB["lib"], _LIB["rate"]
        try:
            import espeakng_loader
        except ImportError as e:  # pragma: no cover - dependency missing
            raise FacecastError("the espeakng-loader package is missing; pip install espeakng-loader") from e
        lib_path = self.library_path or espeakng_loader.get_library_path()
        data_path = self.data_path or espeakng_loader.get_data_path()
        try:
            lib = ctypes.CDLL(lib_path)
        except OSError as e:
            raise FacecastError(f"cannot load the eSpeak NG library {lib_path}: {e}; "
                                "reinstall espeakng-loader") from e
        lib.espeak_Initialize.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_char_p, ctypes.c_int]
        lib.espeak_Initialize.restype = ctypes.c_int
        lib.espeak_SetSynthCallback.argtypes = [_CALLBACK]
        lib.espeak_SetSynthCallback.restype = None
        lib.espeak_SetVoiceByName.argtypes = [ctypes.c_char_p]
        lib.espeak_SetVoiceByName.restype = ctypes.c_int
        lib.espeak_SetParameter.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int]
        lib.espeak_SetParameter.restype = ctypes.c_int
        lib.espeak_Synth.argtypes = [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint, ctypes.c_int,
                                     ctypes.c_uint, ctypes.c_uint, ctypes.c_void_p, ctypes.c_void_p]
        lib.espeak_Synth.restype = ctypes.c_int
        lib.espeak_Synchronize.argtypes = []
        lib.espeak_Synchronize.restype = ctypes.c_int
        rate = lib.espeak_Initialize(AUDIO_OUTPUT_SYNCHRONOUS, 0, data_path.encode(),
                                     espeakINITIALIZE_PHONEME_EVENTS | espeakINITIALIZE_DONT_EXIT)
        if rate <= 0:
            raise FacecastError(f"eSpeak NG failed to initialise with data at {data_path}; "
                                "reinstall espeakng-loader")
        lib.espeak_SetSynthCallback(_synth_callback)
        _LIB.update(lib=lib, rate=int(rate))
        return lib, int(rate)

    @property
    def sample_rate(self) -> int:
        """The library's native output rate (22050 Hz for eSpeak NG)."""
        with _LOCK:
            return self._ensure()[1]

    def synthesize(self, text: str, voice: str = "en", rate_wpm: int = 150
                   ) -> tuple[np.ndarray, int, list[Phoneme]]:
        """Speak `text` with eSpeak voice `voice` (e.g. 'en', 'en-us', 'es', 'de', 'fr', 'it').

        Returns (audio (N,) float32 in [-1, 1], sample_rate, phonemes). The phonemes tile
        [0, N / sample_rate] without gaps: leading silence and pauses are kind 'pause'.
        Repeated calls can differ by a few samples: eSpeak carries synthesis state (pitch
        flutter phase) from one utterance to the next.
        """
        if not text or not text.strip():
            raise FacecastError("no text to speak; pass a non-empty sentence")
        if not (RATE_MIN_WPM <= rate_wpm <= RATE_MAX_WPM):
            raise FacecastError(f"speaking rate {rate_wpm} wpm is out of range; use "
                                f"{RATE_MIN_WPM}..{RATE_MAX_WPM} words per minute")
        data = text.encode("utf-8")
        with _LOCK:
            lib, rate = self._ensure()
            if lib.espeak_SetVoiceByName(voice.encode("utf-8")) != EE_OK:
                raise FacecastError(f"unknown eSpeak voice {voice!r}; use a language code such as "
                                    "'en', 'es', 'de', 'fr' or 'it'")
            lib.espeak_SetParameter(espeakRATE, int(rate_wpm), 0)
            samples: list[np.ndarray] = []
            events: list[tuple[int, str]] = []
            _COLLECT[:] = [samples, events]
            try:
                err = lib.espeak_Synth(data, len(data) + 1, 0, POS_CHARACTER, 0, espeakCHARS_UTF8,
                                       None, None)
                lib.espeak_Synchronize()
            finally:
                _COLLECT[:] = []
            if err != EE_OK:
                raise FacecastError(f"eSpeak NG failed to speak the text (error {err}); try shorter text")
        pcm = np.concatenate(samples) if samples else np.zeros(0, np.int16)
        audio = (pcm.astype(np.float32) / 32768.0).astype(np.float32)
        return audio, rate, _events_to_phonemes(events, audio, rate)


def _events_to_phonemes(events: list[tuple[int, str]], audio: np.ndarray, rate: int) -> list[Phoneme]:
    n = len(audio)
    # (start_sample, symbol), sorted, clipped to the audio, with a leading pause.
    evs = sorted((min(max(s, 0), n), sym) for s, sym in events)
    if not evs or evs[0][0] > 0:
        evs.insert(0, (0, "_"))
    starts = [s for s, _ in evs] + [n]
    raw: list[list] = []
    for i, (s, sym) in enumerate(evs):
        base, stress = _strip(sym)
        raw.append([s, starts[i + 1], base or "_", stress])
    _extend_stop_closures(raw, audio, rate)
    out: list[Phoneme] = []
    for s, e, sym, stress in raw:
        if e <= s:
            continue
        kind = classify_phoneme(sym, "espeak")
        if out and kind == "pause" and out[-1].kind == "pause":  # merge adjacent pauses
            out[-1].end_s = e / rate
            continue
        out.append(Phoneme(sym, s / rate, e / rate, kind, stress))
    return out


_VOICELESS_STOPS = re.compile(r"^(p|t|k|c|q|t#|k#|p#|tS|ts|pf|t\[|t2|ph|th|kh)$")


def _extend_stop_closures(raw: list[list], audio: np.ndarray, rate: int) -> None:
    """Move voiceless-stop starts back over the silent closure eSpeak puts before them."""
    block = max(1, rate // 200)  # 5 ms
    nb = len(audio) // block
    if nb == 0:
        return
    rms = np.sqrt(np.mean(audio[: nb * block].astype(np.float64).reshape(nb, block) ** 2, axis=1))
    quiet = rms <= rms.max() * 10 ** (CLOSURE_LEVEL_DB / 20)
    max_blocks = int(MAX_CLOSURE_S * rate / block)
    for i in range(1, len(raw)):
        if not _VOICELESS_STOPS.match(raw[i][2]):
            continue
        b = raw[i][0] // block       # first block of the stop (its release)
        floor_b = -(-(raw[i - 1][0] + int(0.02 * rate)) // block)  # keep >= 20 ms of the previous one
        j = b
        while j - 1 >= max(floor_b, b - max_blocks) and j - 1 < nb and quiet[j - 1]:
            j -= 1
        if j < b:
            new_start = j * block
            raw[i][0] = new_start
            raw[i - 1][1] = new_start


_DEFAULT = EspeakSynth()


def synthesize(text: str, voice: str = "en", rate_wpm: int = 150, sample_rate: int | None = None,
               trailing_silence_s: float = 0.0) -> tuple[np.ndarray, int, list[Phoneme]]:
    """Speak `text` with eSpeak NG; returns (audio (N,) float32, sample_rate, phonemes).

    sample_rate: None keeps the library's rate (22050 Hz); otherwise the audio is resampled
    (scipy polyphase) to that rate. Phoneme times are in seconds and do not change.
    trailing_silence_s: silence appended after the speech, as a final 'pause' phoneme. eSpeak
    stops within about 10 ms of the last sound, often mid-vowel, so a face animated from the
    bare audio ends with its mouth open; half a second lets it settle.
    """
    if not 0.0 <= trailing_silence_s <= 60.0:
        raise ValueError(f"trailing_silence_s must be between 0 and 60, got {trailing_silence_s}")
    audio, rate, phonemes = _DEFAULT.synthesize(text, voice, rate_wpm)
    if sample_rate is not None and int(sample_rate) != rate:
        from .io import resample
        audio = np.clip(resample(audio, rate, sample_rate), -1, 1)
        rate = int(sample_rate)
    pad = round(trailing_silence_s * rate)
    if pad:
        audio = np.concatenate([audio, np.zeros(pad, np.float32)])
        end = len(audio) / rate
        if phonemes and phonemes[-1].kind == "pause":
            phonemes[-1].end_s = end
        else:
            phonemes.append(Phoneme("_", phonemes[-1].end_s if phonemes else 0.0, end, "pause"))
    return audio, rate, phonemes


# --- label files --------------------------------------------------------------------------------
def load_phoneme_labels(path: str | os.PathLike, alphabet: str = "auto") -> list[Phoneme]:
    """Read phoneme intervals from a text label file.

    Each non-empty line is 'start_s end_s symbol' (whitespace separated, seconds) or an Audacity
    label 'start<TAB>end<TAB>label'. Lines starting with '#' and Audacity's spectral lines
    (starting with '\\') are skipped. alphabet: see `classify_phoneme`; 'auto' reads the whole
    file as ARPAbet when every non-pause symbol is an ARPAbet symbol, otherwise as
    eSpeak/X-SAMPA/IPA. Returns the phonemes sorted by start time.
    """
    p = check_input_file(path, "phoneme label file")
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise FacecastError(f"phoneme label file {p} is not UTF-8 text; save it as UTF-8") from e
    rows: list[tuple[float, float, str]] = []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#") or line.startswith("\\"):
            continue
        parts = line.split("\t") if "\t" in line else line.split(None, 2)
        parts = [q.strip() for q in parts]
        if len(parts) < 2:
            raise FacecastError(f"{p} line {lineno}: expected 'start end symbol', got {line.strip()!r}")
        try:
            start, end = float(parts[0]), float(parts[1])
        except ValueError:
            raise FacecastError(f"{p} line {lineno}: start and end must be numbers in seconds, "
                                f"got {line.strip()!r}") from None
        if not (np.isfinite(start) and np.isfinite(end)) or start < 0 or end < start:
            raise FacecastError(f"{p} line {lineno}: times must satisfy 0 <= start <= end, "
                                f"got {start} .. {end}")
        symbol = parts[2] if len(parts) > 2 else ""
        rows.append((start, end, symbol))
    if not rows:
        raise FacecastError(f"{p} holds no phoneme labels; write one 'start end symbol' line per phoneme")
    if alphabet == "auto":
        syms = [_strip(s)[0].rstrip("012") for _, _, s in rows if classify_phoneme(s) != "pause"]
        alphabet = "arpabet" if syms and all(s in ARPABET_VOWELS | ARPABET_CONSONANTS for s in syms) \
            else "espeak"
    out = []
    for start, end, symbol in sorted(rows, key=lambda r: (r[0], r[1])):
        base, stress = _strip(symbol)
        out.append(Phoneme(base, start, end, classify_phoneme(symbol, alphabet), stress))
    return out
