"""Go's ``time.Parse`` for the two layouts the test server checks: metav1.MicroTime and metav1.Time.

kube-apiserver decodes ``MicroTime`` fields (an Event's ``eventTime``,
``series.lastObservedTime``) with ``time.Parse("2006-01-02T15:04:05.000000Z07:00", s)``:
exactly six fractional digits, then ``Z`` or ``+hh:mm``/``-hh:mm``; ``Time`` fields (those
the test server checks: ``metadata.managedFields[].time``) with ``time.RFC3339``
(``2006-01-02T15:04:05Z07:00``, where Go also takes an optional fraction after the seconds).
A value it cannot parse fails the whole request with Go's error text, which
:func:`parse_micro_time` and :func:`parse_time` reproduce (``parsing time "..." as "...":
cannot parse "..." as "..."`` or ``...: month out of range``), following the steps of Go's
parser for these layouts. A value it can parse is stored in UTC, as the type marshals it
(``Time`` to the second).
"""

from __future__ import annotations

from datetime import datetime, timedelta

MICRO_LAYOUT = "2006-01-02T15:04:05.000000Z07:00"
RFC3339 = "2006-01-02T15:04:05Z07:00"
_DAYS_IN_MONTH = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


class GoTimeError(ValueError):
    """A Go ``time.ParseError``; ``str()`` is Go's ``Error()``."""


def _quote(s: str) -> str:
    # Go's time.quote: a double-quoted string, backslash-escaping quotes and backslashes.
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _cannot(value: str, elem: str, layout_elem: str, layout: str = MICRO_LAYOUT) -> GoTimeError:
    return GoTimeError(f"parsing time {_quote(value)} as {_quote(layout)}: "
                       f"cannot parse {_quote(elem)} as {_quote(layout_elem)}")


def _out_of_range(value: str, what: str) -> GoTimeError:
    return GoTimeError(f"parsing time {_quote(value)}: {what} out of range")


def _getnum(s: str, fixed: bool) -> tuple[int, str] | None:
    if not s[:1].isdigit() or not s[:1].isascii():
        return None
    if not (len(s) > 1 and s[1].isdigit() and s[1].isascii()):
        if fixed:
            return None
        return int(s[0]), s[1:]
    return int(s[:2]), s[2:]


def _atoi(s: str) -> int | None:
    neg = s[:1] == "-"
    if s[:1] in ("-", "+"):
        s = s[1:]
    if s and not (s.isascii() and s.isdigit()):
        return None
    x = int(s) if s else 0
    return -x if neg else x


def parse_micro_time(value: str) -> str:
    """``value`` as kube-apiserver stores it (UTC, six digits), or :class:`GoTimeError`."""
    return _parse(value, MICRO_LAYOUT)


def parse_time(value: str) -> str:
    """A metav1.Time ``value`` as kube-apiserver stores it (UTC, seconds), or :class:`GoTimeError`."""
    return _parse(value, RFC3339)


def _parse(value: str, layout: str) -> str:
    micro_layout = layout == MICRO_LAYOUT
    v = value
    # 2006
    if len(v) < 4 or not (v[0].isascii() and v[0].isdigit()):
        raise _cannot(value, v, "2006", layout)
    year = _atoi(v[:4])
    if year is None:
        raise _cannot(value, v, "2006", layout)
    v = v[4:]
    fields: list[int] = []
    for prefix, std, fixed, what, limit in (("-", "01", True, "month", 13), ("-", "02", True, "", 0),
                                            ("T", "15", False, "hour", 24), (":", "04", True, "minute", 60),
                                            (":", "05", True, "second", 60)):
        if not v.startswith(prefix):
            raise _cannot(value, v, prefix, layout)
        v = v[len(prefix):]
        got = _getnum(v, fixed)
        if got is None:
            raise _cannot(value, v, std, layout)
        n, v = got
        if what == "month" and not 1 <= n <= 12:
            raise _out_of_range(value, "month")
        if what and what != "month" and n >= limit:
            raise _out_of_range(value, what)
        fields.append(n)
    month, day, hour, minute, second = fields
    micro = 0
    if micro_layout:
        # .000000: exactly six digits after a '.' or ','.
        if len(v) < 7 or v[0] not in ".,":
            raise _cannot(value, v, ".000000", layout)
        parsed = _atoi(v[1:7])
        if parsed is None:
            raise _cannot(value, v, ".000000", layout)
        if parsed < 0:
            raise _out_of_range(value, "fractional second")
        micro = parsed
        v = v[7:]
    elif len(v) >= 2 and v[0] in ".," and v[1].isascii() and v[1].isdigit():
        # A fraction the layout does not name: Go takes the digits anyway (and Time drops them).
        n = 2
        while n < len(v) and v[n].isascii() and v[n].isdigit():
            n += 1
        v = v[n:]
    # Z07:00
    if v[:1] == "Z":
        offset = 0
        v = v[1:]
    else:
        hold = v
        if len(v) < 6 or v[3] != ":":
            raise _cannot(value, hold, "Z07:00", layout)
        sign, hh, mm, v = v[0], v[1:3], v[4:6], v[6:]
        h, m = _getnum(hh, True), _getnum(mm, True)
        if h is None or m is None:
            raise _cannot(value, hold, "Z07:00", layout)
        if h[0] > 24:
            raise _out_of_range(value, "time zone offset hour")
        if m[0] > 60:
            raise _out_of_range(value, "time zone offset minute")
        if sign not in ("+", "-"):
            raise _cannot(value, hold, "Z07:00", layout)
        offset = (h[0] * 60 + m[0]) * 60 * (-1 if sign == "-" else 1)
    if v:
        raise GoTimeError(f"parsing time {_quote(value)}: extra text: {_quote(v)}")
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0)
    days = 29 if month == 2 and leap else _DAYS_IN_MONTH[month - 1]
    if not 1 <= day <= days:
        raise _out_of_range(value, "day")
    frac = f".{micro:06d}" if micro_layout else ""
    if 1 <= year <= 9999:
        local = datetime(year, month, day, hour, minute, second)
        try:
            utc = local - timedelta(seconds=offset)
        except OverflowError:
            return value
        if 1 <= utc.year <= 9999:
            return (f"{utc.year:04d}-{utc.month:02d}-{utc.day:02d}T{utc.hour:02d}:{utc.minute:02d}:"
                    f"{utc.second:02d}{frac}Z")
    return value  # year 0 or a shift out of Python's range: kept as written
