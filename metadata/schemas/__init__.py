"""OASIS SAML 2.0, XML-DSig and XML-Enc schemas shipped with the package (see README.md)."""
