"""The common ground of SAML Preflight: hardened XML, the metadata model, certificates,
XML-signature verification and safe fetching of metadata URLs.

This package imports neither `idp` nor `validator`. Its one root exception is
:class:`metadata.errors.MetadataError`.
"""
