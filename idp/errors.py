"""The test IdP's exceptions: one root, :class:`IdPError`, each kind also subclassing the natural
built-in (STYLE.md), so that ``saml-idp`` prints any of them once as ``Name: message``.

This module imports nothing of the IdP: every other module may raise these.
"""

from __future__ import annotations

from collections.abc import Mapping

from metadata.errors import ConfigError


class IdPError(Exception):
    """Root of the test IdP's exceptions."""


class SettingsError(ConfigError, IdPError):
    """The IdP's settings (``idp.toml`` or ``IDP_*``) are not valid; each problem names its key's path."""

    what = "the IdP configuration"


class UnknownVendor(IdPError, ValueError):
    """A vendor profile key that is not one of :data:`idp.vendors.PROFILES`."""


class FaultError(IdPError, ValueError):
    """An unknown fault, or one that cannot apply to this SP, persona or session."""


class IdPResponseError(IdPError, ValueError):
    """A response that cannot be built, or an encrypted assertion that is refused."""


class RegistryError(IdPError, ValueError):
    """An SP could not be registered: its metadata is unreadable or it has no usable ACS."""


class Problem(IdPError):
    """An API call that cannot be answered: becomes an RFC 9457 problem document with `status`
    (:func:`idp.problem.answer`); `members` are its extension members."""

    def __init__(self, status: int, detail: str, members: Mapping[str, object] | None = None, *,
                 headers: Mapping[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail = status, detail
        self.members, self.headers = dict(members or {}), dict(headers or {})
