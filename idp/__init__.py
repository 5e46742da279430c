"""The Flask test IdP (issue 3). Its one root exception is :class:`IdPError`."""


class IdPError(Exception):
    """Root of the test IdP's exceptions."""
