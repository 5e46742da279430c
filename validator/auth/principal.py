"""Who is asking: the one value every route's access rule is decided on."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Access = Literal["read", "write"]
Kind = Literal["anonymous", "local", "staff", "partner", "token"]


@dataclass(frozen=True)
class Principal:
    """Anonymous; the operator of an app with no sign-in configured (``local``, loopback only);
    a signed-in staff member; a partner through an invite (one biller); or an API token (its
    billers, read or write)."""

    kind: Kind
    name: str = ""
    """The staff email, the invite's ID, the token's name ("" when anonymous or local)."""
    billers: frozenset[str] | None = frozenset()
    """The billers it may act on; None: every biller."""
    access: Access = "read"

    @property
    def is_staff(self) -> bool:
        return self.kind in ("staff", "local")

    def may_read(self, biller_id: str) -> bool:
        return self.billers is None or biller_id in self.billers

    def may_write(self, biller_id: str) -> bool:
        return self.access == "write" and self.may_read(biller_id)

    @property
    def who(self) -> str:
        """How the audit trail names it: ``staff:ana@example.com``, ``invite:inv_…``, ``token:ci``."""
        label = {"staff": "staff", "partner": "invite", "token": "token"}.get(self.kind)
        return f"{label}:{self.name}" if label else self.kind


ANONYMOUS = Principal("anonymous")
LOCAL = Principal("local", billers=None, access="write")
"""An app without any sign-in configured: bound to loopback only, its one user is its operator."""
