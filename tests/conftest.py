"""Shared fixtures: real photos shipped inside installed packages, rigs and renderers built once."""
import matplotlib.cbook
import numpy as np
import pytest
import skimage.data

from facecast.face.rig import build_rig
from facecast.face.tracking import FaceTracker
from facecast.rendering.renderer import Renderer


@pytest.fixture(scope="session")
def hopper_path() -> str:
    return matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)


@pytest.fixture(scope="session")
def astronaut() -> np.ndarray:
    return skimage.data.astronaut()


@pytest.fixture(scope="session")
def tracker():
    with FaceTracker() as t:
        yield t


@pytest.fixture(scope="session")
def hopper_rig(hopper_path, tracker):
    return build_rig(hopper_path, 512, tracker=tracker)


@pytest.fixture(scope="session")
def astronaut_rig(astronaut, tracker):
    return build_rig(astronaut, 512, tracker=tracker)


@pytest.fixture(scope="session", params=["hopper", "astronaut"])
def rig_and_renderer(request, hopper_rig, astronaut_rig):
    rig = hopper_rig if request.param == "hopper" else astronaut_rig
    return rig, Renderer(rig)


@pytest.fixture(scope="session")
def tts_speech():
    """(audio 16 kHz float32, phonemes): an English sentence with pauses, from eSpeak NG."""
    from scipy.signal import resample_poly

    from facecast.audio.speech import synthesize
    audio, sr, phonemes = synthesize("Hello, my name is Peter Piper. Maybe Bob can map a big apple.", "en")
    x = resample_poly(audio, 16000, sr).astype(np.float32) if sr != 16000 else audio.astype(np.float32)
    return x, phonemes


@pytest.fixture(scope="session")
def speech_wav(tmp_path_factory, tts_speech):
    """The TTS sentence, then 1.2 s of silence, then the sentence again, as a 16 kHz wav file."""
    from facecast.audio.io import save_wav
    x, _ = tts_speech
    gap = np.zeros(int(1.2 * 16000), np.float32)
    p = tmp_path_factory.mktemp("speech") / "speech.wav"
    save_wav(p, np.concatenate([x, gap, x]), 16000)
    return p, len(x) / 16000, 1.2


@pytest.fixture(scope="session")
def live_server():
    """A `facecast serve` app on a free 127.0.0.1 port, warmed up; shut down at the end."""
    from facecast.live.app import create_app
    from facecast.live.serve import ServerThread
    app = create_app()
    with ServerThread(app) as srv:
        app.state.live.wait_warm()
        srv.live = app.state.live
        yield srv
