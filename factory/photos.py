"""Real photos bundled with scikit-image (shipped inside its wheel, so usable offline)."""

from __future__ import annotations

import functools

import numpy as np

RGB_PHOTOS: tuple[str, ...] = (
    "astronaut",
    "coffee",
    "chelsea",
    "rocket",
    "motorcycle",
    "hubble",
    "retina",
    "immunohistochemistry",
)
GRAY_PHOTOS: tuple[str, ...] = ("camera", "coins", "page", "text")
RGBA_PHOTOS: tuple[str, ...] = ("logo",)

_LOADERS = {
    "astronaut": "astronaut",
    "coffee": "coffee",
    "chelsea": "chelsea",
    "rocket": "rocket",
    "hubble": "hubble_deep_field",
    "retina": "retina",
    "immunohistochemistry": "immunohistochemistry",
    "camera": "camera",
    "coins": "coins",
    "page": "page",
    "text": "text",
    "logo": "logo",
}


@functools.cache
def _load(name: str) -> np.ndarray:
    from skimage import data

    if name == "motorcycle":
        arr = data.stereo_motorcycle()[0]
    elif name in _LOADERS:
        arr = getattr(data, _LOADERS[name])()
    else:
        raise ValueError(
            f"unknown bundled photo {name!r}; choose from {RGB_PHOTOS + GRAY_PHOTOS + RGBA_PHOTOS}."
        )
    arr = np.ascontiguousarray(arr)
    arr.setflags(write=False)
    return arr


def photo(name: str) -> np.ndarray:
    """One bundled photo as stored (RGB, grayscale or RGBA uint8; read-only)."""
    return _load(name)


def photos(names: tuple[str, ...] = RGB_PHOTOS) -> dict[str, np.ndarray]:
    """The bundled RGB photos (or the named ones) by name."""
    return {n: _load(n) for n in names}
