"""Where the repository and the shared real samples are."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def samples_dir() -> Path | None:
    """The shared samples: ``$STARLING_SAMPLES``, else ``../shared/data`` beside the repository."""
    configured = os.environ.get("STARLING_SAMPLES")
    candidate = Path(configured) if configured else REPO.parent / "shared" / "data"
    return candidate if candidate.is_dir() else None
