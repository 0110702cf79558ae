"""UPX step (being measured; see issue 3)."""

from pathlib import Path

from build.config import Profile
from build.errors import BuildFailed


def apply(profile: Profile, stage: Path, log: Path) -> dict[str, str]:
    raise BuildFailed("upx = true is not supported yet")
