"""The validator: checks a partner's SAML metadata (and, later, responses) against the
OASIS schemas, XML-signature rules and the partner's CRM record, and reports every finding
with a stable code, expected vs actual, and the fix.

Its one root exception is :class:`validator.errors.ValidatorError`.
"""
