"""Classic crontab expressions for APScheduler 3, whose weekday numbers start at Monday.

crontab counts weekdays from Sunday (0 or 7 = Sunday); APScheduler's `from_crontab` reads 0 as
Monday and refuses 7, so `1-5` would run Tuesday to Saturday. The weekday field is translated
to day names here, for the config's validation and the scheduler alike.
"""

from __future__ import annotations

import re

__all__ = ["crontab_fields", "crontab_weekdays"]

_WEEKDAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")
_WEEKDAY_ITEM = re.compile(r"^(\*|\w+)(?:-(\w+))?(?:/(\d+))?$")


def _weekday_number(token: str) -> int:
    name = token.lower()[:3]
    if name in _WEEKDAYS:
        return _WEEKDAYS.index(name)
    if token.isdigit() and int(token) <= 7:
        return int(token) % 7  # cron: 0 and 7 are Sunday
    raise ValueError(f"invalid weekday {token!r}")


def crontab_weekdays(field: str) -> str:
    """A crontab weekday field (0 or 7 = Sunday) as APScheduler day names."""
    if field in ("*", "?"):
        return "*"
    days: set[int] = set()
    for item in field.split(","):
        match = _WEEKDAY_ITEM.match(item)
        if not match:
            raise ValueError(f"invalid weekday field {field!r}")
        first, last, step = match.groups()
        if first == "*":
            low, high = 0, 6
        else:
            low = _weekday_number(first)
            high = _weekday_number(last) if last else (6 if step else low)
            if last and last.isdigit() and int(last) == 7:
                high = 7  # `5-7`: Friday to Sunday
        days.update(d % 7 for d in range(low, high + 1, int(step or 1)))
    return ",".join(_WEEKDAYS[d] for d in sorted(days))


def crontab_fields(expression: str) -> dict[str, str]:
    """The five crontab fields as APScheduler `CronTrigger` keyword arguments."""
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"Wrong number of fields; got {len(fields)}, expected 5")
    minute, hour, day, month, weekday = fields
    return {
        "minute": minute,
        "hour": hour,
        "day": day,
        "month": month,
        "day_of_week": crontab_weekdays(weekday),
    }
