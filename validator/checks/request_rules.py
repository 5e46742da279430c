"""The REQ rules, registered once: each code with its title, what it checks, why it matters and the fix.

:mod:`validator.checks.request` judges an AuthnRequest against them; ``saml-validate explain REQ0nn``
and the HTML report read the same text from the registry.
"""

from __future__ import annotations

from validator.checks.wording import rules_for
from validator.findings import Severity

_rule = rules_for("request")


# Binding and parsing: the request could not be read at all.
MISSING = _rule(
    "REQ001", "No SAMLRequest parameter",
    "The HTTP-Redirect query string or HTTP-POST form has no SAMLRequest parameter, or it is empty.",
    "Without it there is no request to answer; usually the SP sent the browser to the SSO URL without "
    "starting a login, or named the parameter differently.",
    "Send the AuthnRequest as the SAMLRequest parameter (Bindings §3.4.4 for Redirect, §3.5.4 for POST).",
)
BASE64 = _rule(
    "REQ002", "SAMLRequest is not valid base64",
    "The SAMLRequest (or Signature) value must be standard base64 (RFC 2045 alphabet, + and /), URL-encoded "
    "in a query string.",
    "A value that is not base64 cannot be decoded; the usual cause is a '+' that was not percent-encoded "
    "and arrives as a space, or URL-safe base64.",
    "Base64-encode with the standard alphabet, then percent-encode the value (+ → %2B, / → %2F, = → %3D).",
)
DEFLATE = _rule(
    "REQ003", "SAMLRequest is not a raw DEFLATE stream",
    "With HTTP-Redirect the request must be compressed with raw DEFLATE (RFC 1951): no zlib or gzip header, "
    "one complete stream, nothing after it.",
    "Bindings §3.4.4.1 fixes the encoding; a zlib-wrapped, truncated or padded stream cannot be read.",
    "Compress with raw DEFLATE (zlib with wbits=-15, or zlib.compress(xml)[2:-4]) before base64; do not "
    "deflate for HTTP-POST.",
)
TOO_LARGE = _rule(
    "REQ004", "The request is too large",
    "The decoded (or inflated) AuthnRequest is larger than 64 KiB, or the POST body larger than 256 KiB.",
    "Real AuthnRequests are a few kilobytes; the cap stops compressed-bomb and memory-exhaustion attacks.",
    "Send only the AuthnRequest: no embedded documents, no huge extensions.",
)
DUPLICATE = _rule(
    "REQ005", "A parameter appears twice",
    "A parameter name (SAMLRequest, RelayState, SigAlg, Signature, …) appears more than once.",
    "Different software picks a different copy, so the signed value and the value used could differ.",
    "Send each parameter once.",
)
ENCODED_NAME = _rule(
    "REQ006", "A parameter name is percent-encoded",
    "A parameter name contains '%' or '+' (for example SAML%52equest).",
    "Frameworks decode the name and see a second SAMLRequest that the signature check does not; names must "
    "appear literally (SECURITY.md §5).",
    "Percent-encode only parameter values, never names.",
)
MALFORMED_QUERY = _rule(
    "REQ007", "The query string or form is malformed",
    "The query string or form body has a broken percent-escape, characters outside ASCII, a parameter "
    "without a name, a value that is not UTF-8, or a SAMLResponse where a SAMLRequest was expected.",
    "The request cannot be decoded unambiguously.",
    "Build the URL with a URL-encoding library rather than by string concatenation.",
)
RELAY_STATE = _rule(
    "REQ008", "RelayState is longer than 80 bytes",
    "The RelayState value exceeds 80 bytes once decoded (Bindings §3.4.3, §3.5.3).",
    "The IdP must echo RelayState back unchanged; the bindings limit it so that it cannot carry a payload.",
    "Keep RelayState a short opaque key and store the return URL on the SP side.",
)
UNSAFE_XML = _rule(
    "REQ009", "The request XML is malformed or unsafe",
    "The decoded SAMLRequest is not well-formed UTF-8/UTF-16 XML, carries a DOCTYPE, or is too deep or "
    "too big.",
    "SAML forbids DTDs (Core §1.3); they enable entity-expansion and XXE attacks. Malformed XML cannot be read.",
    "Serialise the AuthnRequest with an XML library, without a DOCTYPE.",
)
NOT_AUTHN_REQUEST = _rule(
    "REQ010", "The message is not an AuthnRequest",
    "The root element of the SAMLRequest is not samlp:AuthnRequest in the SAML 2.0 protocol namespace.",
    "The SSO endpoint answers AuthnRequests only; logout requests go to the SingleLogoutService.",
    "Send a samlp:AuthnRequest (namespace urn:oasis:names:tc:SAML:2.0:protocol) to the SSO URL.",
)
# The request's content.
UNKNOWN_SP = _rule(
    "REQ011", "The service provider is not registered",
    "The request's Issuer names no service provider registered at this IdP.",
    "The IdP sends responses only to ACS URLs from the metadata of a known SP; without it there is nowhere "
    "safe to send one.",
    "Register the SP's metadata at the IdP, or make the SP send exactly its registered entity ID as Issuer.",
)
NO_ISSUER = _rule(
    "REQ012", "The request has no Issuer",
    "The AuthnRequest has no saml:Issuer child, or it is empty (Profiles §4.1.4.1: it MUST be present).",
    "The Issuer says which SP is asking; without it the IdP cannot find the SP's ACS URLs or keys.",
    "Add <saml:Issuer> with the SP's entity ID as the first child of the AuthnRequest.",
)
ISSUER_FORMAT = _rule(
    "REQ013", "The Issuer has a Format other than entity",
    "Profiles §4.1.4.1: the Issuer's Format must be omitted or be "
    "urn:oasis:names:tc:SAML:2.0:nameid-format:entity.",
    "An Issuer in another format is not an entity ID, so no metadata can be found for it.",
    "Drop the Format attribute from saml:Issuer (or set it to …:nameid-format:entity).",
)
VERSION = _rule(
    "REQ014", "The request is not SAML 2.0",
    "The Version attribute of the AuthnRequest must be exactly 2.0.",
    "This IdP speaks SAML 2.0 only; another version means another protocol.",
    "Set Version=\"2.0\".",
)
BAD_ID = _rule(
    "REQ015", "The request ID is missing or not a valid xs:ID",
    "ID must be present, an XML NCName (starts with a letter or '_', no ':' or spaces) and at most 256 "
    "characters.",
    "The IdP copies the ID into InResponseTo; SP libraries reject responses whose InResponseTo does not match, "
    "and an ID starting with a digit breaks schema validation.",
    "Generate IDs as '_' followed by random hex (at least 128 bits, Core §1.3.4).",
)
BAD_INSTANT = _rule(
    "REQ016", "IssueInstant is missing or not a UTC date-time",
    "IssueInstant must be an xs:dateTime in UTC, such as 2026-06-01T12:00:00Z (Core §1.3.3).",
    "Without a readable time the IdP cannot tell a fresh request from a replayed one.",
    "Set IssueInstant to the current UTC time in the form YYYY-MM-DDThh:mm:ssZ.",
)
STALE_INSTANT = _rule(
    "REQ017", "IssueInstant is too old or in the future",
    "IssueInstant must be at most 5 minutes old and not in the future, both within the allowed clock skew.",
    "An old request is a replay or a cached login link; a future one means the SP's clock is wrong.",
    "Create a fresh AuthnRequest for every login (never cache the login URL) and keep the SP's clock in sync "
    "with NTP.",
)
WRONG_DESTINATION = _rule(
    "REQ018", "Destination is not this IdP's SSO URL",
    "When present, Destination must equal one of this IdP's SingleSignOnService URLs exactly.",
    "Destination binds the request to its recipient, so that a request meant for another IdP cannot be "
    "replayed here (Bindings §3.4.5.2, §3.5.5.2).",
    "Set Destination to the SSO URL from this IdP's metadata (not its entity ID).",
)
NO_DESTINATION = _rule(
    "REQ019", "A signed request has no Destination",
    "Bindings §3.4.5.2 and §3.5.5.2: a signed request MUST carry Destination.",
    "Without it the signature does not say for which IdP the request was made.",
    "Add Destination with this IdP's SSO URL to the AuthnRequest before signing it.",
)
ACS_URL = _rule(
    "REQ020", "AssertionConsumerServiceURL is not registered",
    "AssertionConsumerServiceURL must equal, character for character, the Location of an HTTP-POST "
    "AssertionConsumerService in the SP's registered metadata.",
    "The IdP posts the user's identity to this URL; an unregistered URL could belong to an attacker.",
    "Send an ACS URL from the SP metadata (mind http/https, host case, port and trailing slash) or add the "
    "URL to the SP metadata and register it again.",
)
ACS_INDEX = _rule(
    "REQ021", "AssertionConsumerServiceIndex names no HTTP-POST ACS",
    "AssertionConsumerServiceIndex must be the index of an HTTP-POST AssertionConsumerService in the SP's "
    "metadata.",
    "The IdP has nowhere registered to send the response.",
    "Use an index from the SP metadata, or leave it out to use the default ACS.",
)
ACS_CONFLICT = _rule(
    "REQ022", "ACS index given together with ACS URL or ProtocolBinding",
    "Core §3.4.1: AssertionConsumerServiceIndex is mutually exclusive with AssertionConsumerServiceURL and "
    "ProtocolBinding.",
    "With both, it is undefined which ACS the SP wants; the IdP refuses to guess.",
    "Send either AssertionConsumerServiceIndex, or AssertionConsumerServiceURL (with ProtocolBinding), "
    "not both.",
)
PROTOCOL_BINDING = _rule(
    "REQ023", "ProtocolBinding is not HTTP-POST",
    "ProtocolBinding, when present, must be urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST.",
    "This IdP returns responses with HTTP-POST only; it cannot answer with Artifact, Redirect or PAOS.",
    "Set ProtocolBinding to HTTP-POST or leave it out.",
)
NO_POST_ACS = _rule(
    "REQ024", "The SP has no HTTP-POST AssertionConsumerService",
    "The request names no ACS, and the SP's metadata registers no AssertionConsumerService with the "
    "HTTP-POST binding to use as the default (Metadata §2.2.3).",
    "The IdP has nowhere to post the response.",
    "Add an HTTP-POST AssertionConsumerService to the SP metadata and register it again.",
)
ACS_NOT_HTTPS = _rule(
    "REQ025", "The ACS URL is not https",
    "The AssertionConsumerService chosen for the response must be an https URL (http only for localhost when "
    "the IdP runs in development mode).",
    "The response carries the user's identity; over http it can be read and replayed (SECURITY.md §5).",
    "Serve the SP's ACS over https and register the https URL.",
)
NAMEID_FORMAT = _rule(
    "REQ026", "The requested NameID format is not supported",
    "NameIDPolicy/@Format must be one of the formats this IdP offers (unspecified is always accepted).",
    "Core §3.4.1.1: an IdP that cannot issue the format must fail the request (InvalidNameIDPolicy).",
    "Request a format listed in this IdP's metadata, or leave Format out (or use unspecified).",
)
UNSIGNED = _rule(
    "REQ027", "The request must be signed but is not",
    "The SP's metadata sets AuthnRequestsSigned=\"true\", or this IdP requires signed requests, and the "
    "request carries no signature.",
    "An unsigned request can be forged by anyone; the promise in the metadata must be kept.",
    "Sign the request: HTTP-Redirect signs the query string (SigAlg, Signature); HTTP-POST embeds an "
    "enveloped ds:Signature after saml:Issuer.",
)
BAD_SIGNATURE = _rule(
    "REQ028", "The request signature is invalid",
    "The request is signed, and the signature does not verify with any signing certificate in the SP's "
    "metadata, or its shape breaks the SAML signature profile.",
    "A request whose signature fails was changed on the way, signed with another key, or signed over "
    "different bytes (for Redirect: the exact query octets SAMLRequest=…&RelayState=…&SigAlg=…).",
    "Sign with the key whose certificate is in the registered SP metadata; for Redirect sign the URL-encoded "
    "parameters exactly as sent, in that order.",
)
SHA1 = _rule(
    "REQ029", "The request is signed with SHA-1",
    "The signature (or its digest) uses SHA-1. A warning when this IdP accepts it, an error when it refuses it.",
    "SHA-1 collisions are practical; SAML deployments moved to SHA-256 years ago.",
    "Sign with RSA-SHA256 (SigAlg http://www.w3.org/2001/04/xmldsig-more#rsa-sha256).",
    Severity.WARNING,
)
UNVERIFIABLE = _rule(
    "REQ030", "The request signature cannot be checked",
    "A signature is required, but it could not be checked: typically the SP's registered metadata has no "
    "signing certificate to check it with.",
    "Without the SP's certificate the IdP cannot tell the SP from anyone else.",
    "Add a KeyDescriptor use=\"signing\" with the SP's certificate to its metadata and register it again.",
)
