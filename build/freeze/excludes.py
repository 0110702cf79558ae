"""Which modules a profile's build leaves out (pure): its own `exclude`, the modules its stand-ins
replace, and those a traced run never loads."""

from __future__ import annotations

from build.config import Profile
from build.freeze.standins import NATIVE_COMPANIONS


def plan_excludes(profile: Profile, unused: tuple[str, ...] = ()) -> tuple[str, ...]:
    """Modules the freezer must leave out: the profile's, the ones stand-ins replace, the traced unused."""
    replaced = []
    for name in profile.effective_stand_ins:
        replaced += [name, *NATIVE_COMPANIONS.get(name, ())]
    return tuple(sorted(set(profile.exclude) | set(replaced) | set(unused)))
