"""What the studio's tabs share: its settings (:class:`StudioConfig`) and :class:`Studio` (the work
folder, the opened datasets and the model)."""

from __future__ import annotations

import os
from dataclasses import dataclass

from factory.errors import ConfigError

from .common import DEFAULT_MAX_IMAGE_PIXELS, Workdir

ENV_PREFIX = "ROBUST_R1_STUDIO_"


@dataclass
class StudioConfig:
    """How the studio starts. Every field has a documented default."""

    dataset: str | None = None
    """A dataset folder written by ``robust-r1 build`` or a Hub id, opened in the Dataset tab at start."""
    model: str | None = None
    """A model folder, a Hub id, a LoRA adapter folder or ``tiny`` (loaded in the background at
    start); with ``endpoint``, the name the server serves (default: the first it lists)."""
    endpoint: str | None = None
    """Base URL of an OpenAI-compatible server (``http://host:8000/v1``); key from OPENAI_API_KEY."""
    workdir: str = "studio-output"
    """The only folder the studio writes to (created if missing)."""
    host: str = "127.0.0.1"
    """Interface to bind; ``0.0.0.0`` exposes the studio to the network (think before you do)."""
    port: int | None = None
    """Port; None = the first free one from 7860."""
    share: bool = False
    """Also open a public gradio.live link (opt-in: anyone with the link can use the studio)."""
    max_image_mp: float = DEFAULT_MAX_IMAGE_PIXELS / 1e6
    """Uploads above this many megapixels are refused with a message."""
    max_file_mb: int = 200
    """Uploads above this many megabytes are refused by the server."""

    def validate(self) -> None:
        if self.port is not None and not (isinstance(self.port, int) and 0 < self.port < 65536):
            raise ConfigError(
                "port", "must be a TCP port number", value=self.port, fix="use 1-65535, or leave it unset"
            )
        if not str(self.host or "").strip():
            raise ConfigError("host", "is empty", value=self.host, fix="use 127.0.0.1 (default) or 0.0.0.0")
        if not self.max_image_mp > 0:
            raise ConfigError("max_image_mp", "must be > 0", value=self.max_image_mp, fix="e.g. 25")
        if not int(self.max_file_mb) > 0:
            raise ConfigError("max_file_mb", "must be > 0", value=self.max_file_mb, fix="e.g. 200")
        if not str(self.workdir or "").strip():
            raise ConfigError(
                "workdir", "is empty", value=self.workdir, fix="choose the folder the studio may write to"
            )

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> StudioConfig:
        """Settings from ``ROBUST_R1_STUDIO_{DATASET,MODEL,ENDPOINT,WORKDIR,MAX_IMAGE_MP}`` and gradio's
        own ``GRADIO_SERVER_NAME`` / ``GRADIO_SERVER_PORT`` (what a Hugging Face Space sets)."""
        env = os.environ if environ is None else environ

        def get(key: str) -> str | None:
            v = env.get(ENV_PREFIX + key)
            return v.strip() if v and v.strip() else None

        port = env.get("GRADIO_SERVER_PORT")
        try:
            port_i = int(port) if port else None
        except ValueError:
            raise ConfigError("port", "GRADIO_SERVER_PORT is not a number", value=port) from None
        mp = get("MAX_IMAGE_MP")
        return cls(
            dataset=get("DATASET"),
            model=get("MODEL"),
            endpoint=get("ENDPOINT"),
            workdir=get("WORKDIR") or "studio-output",
            host=env.get("GRADIO_SERVER_NAME") or "127.0.0.1",
            port=port_i,
            max_image_mp=float(mp) if mp else DEFAULT_MAX_IMAGE_PIXELS / 1e6,
        )


class Studio:
    """What the tabs share: the settings, the work folder, opened datasets and the model."""

    def __init__(self, cfg: StudioConfig):
        from .datasets import DatasetCache
        from .models import ModelHolder

        cfg.validate()
        self.cfg = cfg
        self.workdir = Workdir(cfg.workdir).ensure()
        self.max_pixels = int(cfg.max_image_mp * 1e6)
        self.datasets = DatasetCache(self.workdir)
        self.model = ModelHolder(self.workdir)
