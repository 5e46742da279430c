"""A partner's metadata URL fetched for inspection: what came back, typed, and the NET findings.

The fetch itself is :func:`metadata.fetch.fetch` (SSRF-safe); here its result or its refusal
becomes a :data:`FetchOutcome` that the inspection carries and the report shows, and the body
is handed on to be parsed.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from validator.checks import fetching
from validator.findings import Finding

if TYPE_CHECKING:  # urllib3 is imported only when a URL is actually fetched
    from metadata.fetch import FetchPolicy

Diagnostic = str | int | tuple[str, ...]


@dataclass(frozen=True)
class FetchSummary:
    """A fetch that succeeded (HTTP 2xx), the body aside."""

    url: str
    """The URL asked for."""
    final_url: str
    """The URL that answered, after redirects."""
    status: int
    content_type: str | None
    redirects: tuple[str, ...]
    size: int
    """Bytes of the body."""
    seconds: float
    """Wall time of the whole fetch."""


@dataclass(frozen=True)
class FetchFailure:
    """A fetch refused or failed; `kind` is :class:`metadata.fetch.FetchError`'s."""

    kind: str
    diagnostics: tuple[tuple[str, Diagnostic], ...]
    """What the fetcher saw (``requested_url``, ``redirects``, ``resolved``, ``status`` …), in its order."""


FetchOutcome = FetchSummary | FetchFailure


@dataclass(frozen=True)
class FetchedMetadata:
    outcome: FetchOutcome
    body: bytes | None
    """None when the fetch failed."""
    findings: tuple[Finding, ...]
    """The NET finding of a failure, or what the content type says about a success."""


def fetch_metadata(url: str, policy: FetchPolicy | None, max_bytes: int) -> FetchedMetadata:
    """Fetch `url` with `policy` (None: FetchPolicy's secure defaults), at most `max_bytes`."""
    from metadata.fetch import FetchError, FetchPolicy, fetch

    try:
        result = fetch(url, replace(policy or FetchPolicy(), max_bytes=max_bytes))
    except FetchError as exc:
        diagnostics = tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in exc.diagnostics.items())
        return FetchedMetadata(FetchFailure(exc.kind, diagnostics), None, (fetching.finding_for_fetch_error(exc),))
    summary = FetchSummary(result.url, result.final_url, result.status, result.content_type, result.redirects,
                           len(result.body), result.elapsed_seconds)
    return FetchedMetadata(summary, result.body, tuple(fetching.content_type_findings(result)))
