"""The SAML 2.0 vocabulary every floor shares: namespaces, bindings, NameID formats, status
codes and the other fixed URIs of the OASIS specifications. One definition of each, so the
IdP that writes a value and the validator that judges it can never spell it differently.
"""

from __future__ import annotations

# Namespaces (SAML Core §1.2, SAML Metadata §1.1, XML-DSig, XML-Enc).
SAMLP = "urn:oasis:names:tc:SAML:2.0:protocol"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"
MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"
XENC = "http://www.w3.org/2001/04/xmlenc#"
XENC11 = "http://www.w3.org/2009/xmlenc11#"
XS = "http://www.w3.org/2001/XMLSchema"
XML_NS = "http://www.w3.org/XML/1998/namespace"
NS = {"md": MD, "saml": SAML, "ds": DS}
"""Prefixes for XPath over metadata."""

# Bindings (SAML Bindings §3).
BINDINGS_PREFIX = "urn:oasis:names:tc:SAML:2.0:bindings:"
BINDING_REDIRECT = BINDINGS_PREFIX + "HTTP-Redirect"
BINDING_POST = BINDINGS_PREFIX + "HTTP-POST"
BINDING_ARTIFACT = BINDINGS_PREFIX + "HTTP-Artifact"
BINDING_SOAP = BINDINGS_PREFIX + "SOAP"
BROWSER_BINDINGS = (BINDING_REDIRECT, BINDING_POST)
DEFLATE_ENCODING = BINDINGS_PREFIX + "URL-Encoding:DEFLATE"


def binding_name(binding: str) -> str:
    """The short name of a binding URI (``HTTP-POST``), or the URI itself when unknown."""
    return binding[len(BINDINGS_PREFIX):] if binding.startswith(BINDINGS_PREFIX) else binding


# NameID formats (SAML Core §8.3).
NAMEID_SAML11 = "urn:oasis:names:tc:SAML:1.1:nameid-format:"
NAMEID_SAML20 = "urn:oasis:names:tc:SAML:2.0:nameid-format:"
UNSPECIFIED = NAMEID_SAML11 + "unspecified"
EMAIL = NAMEID_SAML11 + "emailAddress"
PERSISTENT = NAMEID_SAML20 + "persistent"
TRANSIENT = NAMEID_SAML20 + "transient"
ENTITY = NAMEID_SAML20 + "entity"

# Status codes (SAML Core §3.2.2.2).
STATUS_PREFIX = "urn:oasis:names:tc:SAML:2.0:status:"
SUCCESS = STATUS_PREFIX + "Success"
REQUESTER = STATUS_PREFIX + "Requester"
RESPONDER = STATUS_PREFIX + "Responder"
AUTHN_FAILED = STATUS_PREFIX + "AuthnFailed"
NO_PASSIVE = STATUS_PREFIX + "NoPassive"

# Authentication context, subject confirmation, attribute name formats (SAML Core §2.7.2, §3; Authn Context).
PASSWORD_PROTECTED_TRANSPORT = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"  # noqa: S105
BEARER = "urn:oasis:names:tc:SAML:2.0:cm:bearer"
NAME_FORMATS = {
    "unspecified": "urn:oasis:names:tc:SAML:2.0:attrname-format:unspecified",
    "basic": "urn:oasis:names:tc:SAML:2.0:attrname-format:basic",
    "uri": "urn:oasis:names:tc:SAML:2.0:attrname-format:uri",
}
