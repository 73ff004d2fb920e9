"""Turning any image into the model's input: 48x48 grayscale uint8.

Training data and inference both go through `to_face_array`, so the same crop always
yields the same pixels.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from fer_lib.errors import DataError
from fer_lib.labels import IMAGE_SIZE

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm"}
)
# Pillow's own limit (~179M pixels) raises DecompressionBombError; we keep it but turn
# its warning band (89M-179M) into an error too, since no face photo needs that many.
MAX_IMAGE_PIXELS = 89_478_485


def to_grayscale(image: Image.Image) -> np.ndarray:
    """Grayscale uint8 array of a PIL image in any mode (16-bit, alpha, palette, CMYK...)."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        # Pillow clips 16/32-bit values to 0-255 when converting to "L"; scale instead.
        values = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") or values.max() > 255 else 255.0
        return np.clip(values / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if image.mode == "F":
        values = np.asarray(image, dtype=np.float64)
        top = 1.0 if values.max() <= 1.0 else 255.0
        return np.clip(values / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Transparent pixels carry arbitrary colour; flatten them onto white like a viewer does.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return np.asarray(image.convert("L"), dtype=np.uint8)


def to_face_array(image: Image.Image | np.ndarray, size: int = IMAGE_SIZE) -> np.ndarray:
    """The model input for a face crop: `size` x `size` grayscale uint8."""
    if isinstance(image, np.ndarray):
        gray = array_to_grayscale(image)
    else:
        gray = to_grayscale(image)
    if gray.shape == (size, size):
        return gray
    resized = Image.fromarray(gray).resize((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return np.asarray(resized, dtype=np.uint8)


def array_to_grayscale(array: np.ndarray) -> np.ndarray:
    """Grayscale uint8 from an HxW, HxWx1, HxWx3 (RGB) or HxWx4 (RGBA) array."""
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.dtype != np.uint8:
        if np.issubdtype(array.dtype, np.floating) and array.size and float(np.nanmax(array)) <= 1.0:
            array = array * 255.0
        array = np.clip(np.nan_to_num(array), 0, 255).astype(np.uint8)
    if array.ndim == 2:
        return array
    if array.ndim == 3 and array.shape[2] in (3, 4):
        return to_grayscale(Image.fromarray(array, "RGB" if array.shape[2] == 3 else "RGBA"))
    raise ValueError(f"expected an HxW, HxWx3 or HxWx4 image array, got shape {array.shape}")


def open_image(path: str | Path) -> Image.Image:
    """Open an image file fully decoded and upright (EXIF orientation applied).

    Raises DataError naming the file for anything unreadable.
    """
    path = Path(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                if image.width * image.height > MAX_IMAGE_PIXELS:
                    raise DataError(
                        f"{path}: image is {image.width}x{image.height} pixels, too large to be a "
                        "face photo (decompression-bomb guard); downscale it first"
                    )
                image.load()
                return ImageOps.exif_transpose(image)
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"{path}: file not found; check the path") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise DataError(f"{path}: image too large to be a face photo (decompression-bomb guard); downscale it first") from None
    except Exception as exc:  # Pillow raises many types for bad files; all mean "cannot read"
        reason = "empty file" if path.is_file() and path.stat().st_size == 0 else f"{type(exc).__name__}: {exc}"
        raise DataError(f"{path}: cannot read image ({reason}); replace or remove the file") from None


def load_face_file(path: str | Path, size: int = IMAGE_SIZE) -> np.ndarray:
    """Read a face image file as a `size` x `size` grayscale uint8 array."""
    path = Path(path)
    image = open_image(path)
    try:
        return to_face_array(image, size)
    except Exception as exc:
        raise DataError(f"{path}: cannot convert image ({exc}); replace or remove the file") from None
