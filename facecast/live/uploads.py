"""Uploaded files of the HTTP API: read within their byte limit, an image's declared size checked
before anything decodes it, a portrait decoded, and error texts that name the upload ("the audio
upload ...") instead of a path on the server."""
import io
import re
import tempfile
from pathlib import Path

import numpy as np

from ..errors import FacecastError
from .access import ApiError, size_text


def scrub_paths(text: str, names: dict[Path, str]) -> str:
    """An error or warning text with server paths replaced by what they hold ("the audio file
    /tmp/x/audio.wav" -> "the audio upload"); the most specific path first."""
    for path, name in sorted(names.items(), key=lambda kv: -len(str(kv[0]))):
        text = re.sub(rf"(?:the )?(?:audio file |image )?{re.escape(str(path))}", name, text)
    return text


async def read_upload(up, what: str, limit: int) -> bytes:
    """An uploaded file's bytes: 413 over `limit`, 400 when empty."""
    data = await up.read(limit + 1)
    if len(data) > limit:
        raise ApiError(413, f"the {what} upload is too large (at most {size_text(limit)})")
    if not data:
        raise ApiError(400, f"the {what} upload is empty")
    return data


def check_image_header(data: bytes, max_pixels: int) -> None:
    """Refuse (413) an image whose header declares more than `max_pixels`, before anything decodes
    it: PIL's `Image.open` reads only the header. Data PIL cannot identify passes (the decoder then
    says what is wrong)."""
    from PIL import Image
    limit = f"upload at most {max_pixels / 1e6:g} megapixels"
    try:
        with Image.open(io.BytesIO(data)) as im:
            w, h = im.size
    except Image.DecompressionBombError:     # over twice PIL's own limit, which is above ours
        raise ApiError(413, f"the image upload declares far too many pixels; {limit}") from None
    except Exception:  # noqa: BLE001 - not an image PIL knows: load_image says so
        return
    if w * h > max_pixels:
        raise ApiError(413, f"the image upload is {w}x{h} pixels; {limit}")


def decode_image(data: bytes, filename: str | None) -> np.ndarray:
    """An uploaded portrait -> RGB array; errors name "the image upload"."""
    from ..face.image_io import load_image
    with tempfile.TemporaryDirectory(prefix="facecast-upload-") as d:
        p = Path(d) / ("upload" + safe_suffix(filename, ""))
        p.write_bytes(data)
        try:
            return load_image(p)
        except FacecastError as e:
            raise ApiError(400, scrub_paths(str(e), {p: "the image upload", Path(d): "the upload"})) from None


def safe_suffix(name: str | None, default: str) -> str:
    """The file extension of an upload's name, if it is a plain one (".wav"), else `default`."""
    suf = Path(name or "").suffix.lower()
    return suf if suf[1:].isalnum() and len(suf) <= 6 else default
