"""JSON values: what the JSON report, the API and the stores write, and what they read back.

:data:`Plain` is the type of such data; the functions that turn a typed result into it (the
JSON edges, such as :meth:`validator.report.Facts.json`) build it explicitly, dates with
:func:`iso_z`.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TypeAlias

Plain: TypeAlias = "bool | int | float | str | list[Plain] | dict[str, Plain] | None"
"""JSON-compatible data."""


def iso_z(moment: datetime) -> str:
    """ISO 8601 in UTC with a ``Z``; a naive datetime is taken to be UTC already."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
