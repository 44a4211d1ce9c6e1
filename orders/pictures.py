"""Pictures people upload (a screenshot of a QR, a bank receipt, a dispute's evidence).

A picture's kind and size are read from its header; one with too many pixels is refused
before a single pixel is decoded. Compression makes the file size say nothing about that:
a 10 kB PNG can claim 20,000 x 20,000 pixels, 1.2 GB once decoded.
"""

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from typing import IO

from PIL import Image, UnidentifiedImageError


class NotAPicture(Exception):
    """Not a picture of an accepted kind, or a damaged one."""


class TooManyPixels(Exception):
    """More pixels than the caller lets one request decode."""


@contextmanager
def opened_picture(
    source: IO[bytes], *, formats: Collection[str], max_pixels: int
) -> Iterator[Image.Image]:
    """The picture, opened (header read, nothing decoded) once its kind is one of `formats`
    (Pillow's names: "PNG", "JPEG", "WEBP") and its pixels at most `max_pixels`. Decoding
    it inside the block may still find it damaged: that too is NotAPicture."""
    try:
        with Image.open(source) as image:
            if image.format not in formats:
                raise NotAPicture()
            width, height = image.size
            if width * height > max_pixels:
                raise TooManyPixels()
            yield image
    except Image.DecompressionBombError:  # Pillow's own, far higher, limit
        raise TooManyPixels() from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise NotAPicture() from None
