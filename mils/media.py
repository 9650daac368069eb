"""Reading media with errors that name the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError


class MediaError(ValueError):
    """A sample's media could not be read; the message names the input."""


def load_image(media: Any) -> Image.Image:
    """An RGB PIL image from a path or a PIL image."""
    if isinstance(media, Image.Image):
        return media.convert("RGB")
    path = Path(media)
    if not path.is_file():
        raise MediaError(f"image not found: {path}")
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (UnidentifiedImageError, OSError, SyntaxError) as err:
        raise MediaError(f"cannot read image {path}: {err}") from err
