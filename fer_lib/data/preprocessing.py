"""Turning any image into the model's input: 48x48 grayscale uint8.

Training data and inference both go through `to_face_array`, so the same crop always
yields the same pixels.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from fer_lib.errors import DataError
from fer_lib.labels import IMAGE_SIZE

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm"}
)
# The files `fer predict` reads as videos (fer_lib.inference.video opens them); here, so that its inputs are
# sorted without importing OpenCV or Keras.
VIDEO_EXTENSIONS = frozenset({".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv"})
# Pillow's own limit (~179M pixels) raises DecompressionBombError; we keep it but turn
# its warning band (89M-179M) into an error too, since no face photo needs that many.
MAX_IMAGE_PIXELS = 89_478_485
# Dataset images smaller than this a side carry no face; they are skipped and counted.
MIN_FACE_SIDE = 16


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
    if image.mode == "LAB":
        return np.asarray(image.getchannel("L"), dtype=np.uint8)  # lightness is the grayscale
    if image.mode in ("HSV", "La"):
        image = image.convert("RGB" if image.mode == "HSV" else "LA")
    return np.asarray(image.convert("L"), dtype=np.uint8)


def to_face_array(image: Image.Image | np.ndarray, size: int = IMAGE_SIZE) -> np.ndarray:
    """The model input for a face crop: `size` x `size` grayscale uint8."""
    if isinstance(image, np.ndarray):
        gray = array_to_grayscale(image)
    else:
        gray = to_grayscale(image)
    if gray.size == 0:
        raise ValueError(f"empty image of shape {gray.shape}")
    if gray.shape == (size, size):
        return gray
    resized = Image.fromarray(gray).resize((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return np.asarray(resized, dtype=np.uint8)


def as_model_input(images: np.ndarray) -> np.ndarray:
    """(N, 48, 48) uint8 to the (N, 48, 48, 1) float32 batch every model takes."""
    return images[..., None].astype(np.float32)


def array_to_grayscale(array: np.ndarray) -> np.ndarray:
    """Grayscale uint8 from an HxW, HxWx1, HxWx3 (RGB) or HxWx4 (RGBA) array of any numeric dtype.

    uint8 is taken as is; 16-bit integers are scaled from 0-65535 like 16-bit image files;
    floats in 0-1 are scaled to 0-255; anything else is clipped to 0-255 (NaN becomes 0).
    """
    array = np.asarray(array)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim not in (2, 3) or (array.ndim == 3 and array.shape[2] not in (3, 4)):
        raise ValueError(f"expected an HxW, HxWx3 or HxWx4 image array, got shape {array.shape}")
    if array.size == 0:
        raise ValueError(f"empty image array of shape {array.shape}")
    if array.dtype == np.bool_:
        array = array.astype(np.uint8) * 255
    elif array.dtype in (np.uint16, np.int32, np.uint32, np.int64, np.uint64) and array.max() > 255:
        array = np.clip(array.astype(np.float64) / 257.0 + 0.5, 0, 255)
    elif np.issubdtype(array.dtype, np.floating):
        array = np.nan_to_num(array.astype(np.float64), nan=0.0, posinf=255.0, neginf=0.0)
        if float(array.max()) <= 1.0:
            array = array * 255.0 + 0.5
    elif not np.issubdtype(array.dtype, np.number):
        raise ValueError(f"expected a numeric image array, got dtype {array.dtype}")
    if array.dtype != np.uint8:
        array = np.clip(array, 0, 255).astype(np.uint8)
    if array.ndim == 2:
        return array
    return to_grayscale(Image.fromarray(np.ascontiguousarray(array), "RGB" if array.shape[2] == 3 else "RGBA"))


def open_image(path: str | Path) -> Image.Image:
    """Open an image file fully decoded and upright (EXIF orientation applied).

    Raises DataError naming the file, with a short `reason`, for anything unreadable.
    Truncated files are refused (Pillow's LOAD_TRUNCATED_IMAGES stays False), never padded.
    """
    path = Path(path)

    def unreadable(reason: str, detail: str = "") -> DataError:
        return DataError(f"{path}: cannot read image ({detail or reason}); replace or remove the file", reason)

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                if image.width * image.height > MAX_IMAGE_PIXELS:
                    raise _too_large(path, f"{image.width}x{image.height} pixels")
                image.load()
                return ImageOps.exif_transpose(image)
    except DataError:
        raise
    except FileNotFoundError:
        raise DataError(f"{path}: file not found; check the path", "file not found") from None
    except PermissionError:
        raise DataError(f"{path}: cannot read image (permission denied); check the file's permissions", "permission denied") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise _too_large(path, "more pixels than Pillow allows") from None
    except UnidentifiedImageError:
        if path.is_file() and path.stat().st_size == 0:
            raise unreadable("empty file") from None
        raise unreadable("not an image", f"not an image format Pillow knows, despite the {path.suffix} name") from None
    except MemoryError:
        raise _too_large(path, "not enough memory to decode it") from None
    except Exception as exc:  # Pillow raises many types for bad files; all mean "cannot read"
        if "truncated" in str(exc):
            raise unreadable("truncated", f"truncated: {exc}") from None
        raise unreadable("corrupt", f"corrupt: {type(exc).__name__}: {exc}") from None


def _too_large(path: Path, detail: str) -> DataError:
    return DataError(f"{path}: image is too large to be a face photo ({detail}; decompression-bomb guard); "
                     "downscale it first", "too large")


def load_face_file(path: str | Path, size: int = IMAGE_SIZE, min_side: int | None = None) -> np.ndarray:
    """Read a face image file as a `size` x `size` grayscale uint8 array.

    With `min_side`, an image narrower or shorter than that is refused as too small.
    """
    path = Path(path)
    image = open_image(path)
    if min_side is not None and min(image.width, image.height) < min_side:
        raise DataError(f"{path}: image is {image.width}x{image.height} pixels, too small for a face "
                        f"(needs {min_side}+ px a side); remove it", "too small")
    try:
        return to_face_array(image, size)
    except Exception as exc:
        raise DataError(f"{path}: cannot convert image ({exc}); replace or remove the file", "cannot convert") from None
