"""Rule modules, one per subject. Importing this package registers every rule."""

from . import (
    claims,
    crm_match,
    crm_record,
    fetching,
    input,
    keys,
    metadata,
    request,
    response,
    response_signature,
    signature,
    sp_metadata,
    sweep,
)

METADATA_CHECKS = (*metadata.CHECKS, *keys.CHECKS)
CRM_MATCH_CHECKS = crm_match.CHECKS

__all__ = [
    "CRM_MATCH_CHECKS", "METADATA_CHECKS", "claims", "crm_record", "fetching", "input", "request", "response",
    "response_signature", "signature", "sp_metadata", "sweep",
]
