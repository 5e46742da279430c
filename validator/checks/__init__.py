"""Rule modules, one per subject. Importing this package registers every rule."""

from . import crm_match, crm_record, fetching, input, keys, metadata, request, signature

METADATA_CHECKS = (*metadata.CHECKS, *keys.CHECKS)
CRM_MATCH_CHECKS = crm_match.CHECKS

__all__ = ["CRM_MATCH_CHECKS", "METADATA_CHECKS", "crm_record", "fetching", "input", "request", "signature"]
