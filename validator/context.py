"""What the metadata checks are given: the parsed document, the entity being judged,
the signature outcome, the CRM record and the clock. Built at the edge; checks are pure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from metadata.model import EntityDescriptor, MetadataDocument
from metadata.signing import SignatureProfile

if TYPE_CHECKING:
    from metadata.crm import CRMRecord


@dataclass(frozen=True)
class SignatureOutcome:
    """How the document's own signature fared. `status` is one of:

    ``unsigned``; ``verified`` (by a trusted certificate); ``invalid`` (trusted keys given,
    none verifies); ``profile`` (the signature's shape breaks SAML Core §5.4, so it was not
    verified); ``untrusted`` (signed, but no trusted certificate was given).
    """

    status: str
    message: str = ""
    profile: SignatureProfile | None = None
    certificate: bytes | None = None
    """The trusted certificate that verified it."""
    self_consistent: bool | None = None
    """For ``untrusted``: whether it verifies with the certificate it carries (not trust, a hint)."""
    trusted_given: int = 0


@dataclass(frozen=True)
class MetadataContext:
    document: MetadataDocument
    entity: EntityDescriptor
    now: datetime
    signature: SignatureOutcome
    crm: CRMRecord | None = None
    warn_days: int = 30
    source: str = "metadata"

    def where(self, line: int | None, element: str) -> str:
        return f"{self.source}, line {line}: {element}" if line else f"{self.source}: {element}"
