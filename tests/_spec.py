"""The names and aliases of ../shared/SPEC.md, written out once for the tests."""

SPEC_NAMES = [
    "lens blur", "lens flare", "motion blur", "dirty lens", "hsv saturation", "jpeg compression",
    "block exchange", "mean shift", "scan lines", "dark illumination", "atmospheric turbulence",
    "gaussian noise", "color diffusion", "sharpness change", "graffiti", "watermark damage",
]  # fmt: skip
PAPER_ALIASES = {
    "Saturation": "hsv saturation",
    "Compression": "jpeg compression",
    "Block Change": "block exchange",
    "Shifting": "mean shift",
    "Darkness": "dark illumination",
    "Turbulence": "atmospheric turbulence",
    "Noise": "gaussian noise",
    "Sharpness": "sharpness change",
}
PAPER_STAGES = {
    "acquisition": {"lens blur", "lens flare", "motion blur", "dirty lens", "hsv saturation"},
    "transmission": {"jpeg compression", "block exchange", "mean shift", "scan lines"},
    "environment": {"dark illumination", "atmospheric turbulence", "gaussian noise", "color diffusion"},
    "post-processing": {"sharpness change", "graffiti", "watermark damage"},
}
