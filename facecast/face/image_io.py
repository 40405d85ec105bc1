"""Reading portrait images of any common kind into 8-bit RGB, with clear errors.

Handles EXIF orientation, grayscale, palette, RGBA/LA (composited on white), 16-bit and float
images, and huge pictures (kept at full resolution; the rig crops what it needs).
"""
from __future__ import annotations

import os
import warnings

import numpy as np

from ..errors import FacecastError
from ..inputs import check_input_file

# The largest picture read, by its declared size, before decoding. Reading and cropping take
# about 14 bytes a pixel at the peak, so 120 MP (a 100-MP medium-format photo fits) stays under
# about 1.7 GB; larger ones would be a decompression bomb or need downscaling first.
MAX_PIXELS = 120_000_000
MIN_SIDE = 32


def load_image(source: str | os.PathLike | np.ndarray) -> np.ndarray:
    """Load an image file (or pass through an array) as (H, W, 3) uint8 RGB."""
    if isinstance(source, np.ndarray):
        return to_rgb8(source)
    from PIL import Image, ImageOps, UnidentifiedImageError
    path = check_input_file(source, "image")
    try:
        with warnings.catch_warnings():
            # the declared size is checked below against our own limit; PIL's own warning (at
            # 89 MP) does not apply here
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as im:
                if im.width * im.height > MAX_PIXELS:
                    raise Image.DecompressionBombError(f"{im.width}x{im.height}")
                im = ImageOps.exif_transpose(im)
                arr = _pil_to_array(im)
    except UnidentifiedImageError:
        raise FacecastError(f"{path} is not an image this tool can read (use JPEG, PNG, WebP, TIFF or BMP)") from None
    except Image.DecompressionBombError:  # ours above, or PIL's own at twice its 89 MP
        raise FacecastError(f"{path} is too large (over {MAX_PIXELS // 1_000_000} megapixels); downscale it first") from None
    except (OSError, ValueError, SyntaxError) as e:
        raise FacecastError(f"cannot read image {path}: {e}") from None
    return to_rgb8(arr)


def _pil_to_array(im) -> np.ndarray:
    if im.mode in ("RGBA", "LA", "PA") or (im.mode == "P" and "transparency" in im.info):
        im = im.convert("RGBA")
    elif im.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        a = np.asarray(im, dtype=np.float64)
        hi = 65535.0 if im.mode.startswith("I;16") or a.max() > 255 else 255.0
        if im.mode == "F" and a.max() <= 1.0:
            hi = 1.0
        return np.clip(a / hi * 255.0 + 0.5, 0, 255).astype(np.uint8)
    elif im.mode not in ("RGB", "L"):
        im = im.convert("RGB")
    return np.asarray(im)


def to_rgb8(arr: np.ndarray) -> np.ndarray:
    """Convert gray (H, W), (H, W, 1), RGB or RGBA of any numeric dtype to (H, W, 3) uint8."""
    a = np.asarray(arr)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise FacecastError(f"unsupported image shape {a.shape}; expected gray, RGB or RGBA")
    if a.dtype != np.uint8:
        f = a.astype(np.float64)
        if a.dtype == np.uint16:
            f = f / 65535.0
        elif np.issubdtype(a.dtype, np.floating):
            f = f if f.max(initial=0) <= 1.0 else f / 255.0
        else:
            f = f / max(255.0, float(f.max(initial=1)))
        a = np.clip(f * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    if a.shape[2] == 4:  # composite on white, like a viewer would show it
        alpha = a[:, :, 3:4].astype(np.float32) / 255.0
        a = (a[:, :, :3].astype(np.float32) * alpha + 255.0 * (1 - alpha) + 0.5).astype(np.uint8)
    if min(a.shape[:2]) < MIN_SIDE:
        raise FacecastError(f"image is only {a.shape[1]}x{a.shape[0]} pixels; use a portrait at least 256 pixels across")
    return np.ascontiguousarray(a)
