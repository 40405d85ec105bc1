"""Shared fixtures: real photos shipped inside installed packages, rigs and renderers built once."""
import matplotlib.cbook
import numpy as np
import pytest
import skimage.data

from facecast.render import Renderer
from facecast.rig import build_rig
from facecast.tracking import FaceTracker


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
