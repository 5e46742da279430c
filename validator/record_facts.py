"""A CRM record as a report's facts: the biller it names, its claims and login types."""

from __future__ import annotations

from dataclasses import dataclass

from metadata.crm import CRMRecord
from validator.json_value import Plain


@dataclass(frozen=True)
class BillerFacts:
    """Whose record a report is about."""

    record: CRMRecord

    def json(self) -> dict[str, Plain]:
        return {"biller": {"id": self.record.biller.id, "name": self.record.biller.name}}


@dataclass(frozen=True)
class RecordFacts:
    """What ``saml-validate crm`` shows of a record beside its findings."""

    record: CRMRecord

    def json(self) -> dict[str, Plain]:
        return {
            **BillerFacts(self.record).json(),
            "claims": [c.name for c in self.record.claims],
            "login_types": [f"{i} {n}" for i, n in self.record.login_type_ids.items()],
        }
