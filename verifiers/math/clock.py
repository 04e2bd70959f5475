r"""Times of day: `09:15`, `9:15:00`, `9:15 A.M.` and `21:15` read as seconds after midnight.

A clock time has two-digit minutes (`3:2` is a ratio, not a time), optional two-digit seconds and
an optional `am`/`pm` in any spelling (`AM`, `a.m.`, `\text{ p.m.}`); `9.15 am` is a time too.
With `am`/`pm` the hour is 1 to 12 and `12 am` is midnight. Without, an hour written with a
leading zero or past 12 (`09:15`, `21:15`) is on the 24-hour clock, while `9:15` may be either
half of the day, as in everyday writing: it equals `9:15 am` and `9:15 pm`, but `09:15` does not
equal `9:15 pm`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_HALF_DAY = 12 * 3600
_CLOCK = re.compile(
    r"(\d{1,2}):([0-5]\d)(?::([0-5]\d))?\s*(?:([ap])\.?\s*m\.?)?"
    r"|(\d{1,2})\.([0-5]\d)()\s*([ap])\.?\s*m\.?",  # `9.15 am`: a dot only with am/pm, else a decimal
    re.IGNORECASE,
)
# Wrappers that carry no time: `\text{...}` around the suffix, math delimiters, spacing commands.
_NOISE = re.compile(r"\\text\s*\{|\\mathrm\s*\{|[{}$]|\\[,;: !]|~")


@dataclass(frozen=True)
class ClockTime:
    """Seconds after midnight; `half_known` is False for a 12-hour time without am/pm."""

    seconds: int
    half_known: bool = True


def parse_clock(text: str) -> ClockTime | None:
    """The time of day written alone in `text`; None for anything else."""
    match = _CLOCK.fullmatch(_NOISE.sub(" ", text).strip())
    if match is None:
        return None
    hours, minutes, seconds, half = match.groups()[:4] if match.group(1) else match.groups()[4:]
    hour = int(hours)
    if half is not None:
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if half.lower() == "p" else 0)
    elif hour > 24 or (hour == 24 and int(minutes) + int(seconds or 0) > 0):
        return None
    half_known = half is not None or hours.startswith("0") or not 1 <= hour <= 12
    return ClockTime((hour % 24) * 3600 + int(minutes) * 60 + int(seconds or 0), half_known)


def same_time(gold: ClockTime, answer: ClockTime) -> bool:
    """Equal times of day; when either side leaves the half of the day open, equal on a 12-hour clock."""
    if gold.half_known and answer.half_known:
        return gold.seconds == answer.seconds
    return gold.seconds % _HALF_DAY == answer.seconds % _HALF_DAY
