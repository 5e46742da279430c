"""The RSP rules, registered once: each code with its title, what it checks, why it matters and the fix.

:mod:`validator.checks.response` and :mod:`validator.checks.response_times` judge a response
against them; ``saml-validate explain RSP0nn`` and the HTML report read the same text.
"""

from __future__ import annotations

from validator.checks.wording import rules_for
from validator.findings import Severity

_rule = rules_for("response")


STATUS = _rule(
    "RSP001", "The IdP answered with an error status",
    "The top-level StatusCode must be urn:oasis:names:tc:SAML:2.0:status:Success; otherwise the second-level "
    "code and the StatusMessage are shown.",
    "An error status means the IdP did not sign the user in; the portal shows an error page.",
    "Read the second-level code and the message: they usually name the cause (user not assigned to the app, "
    "NameID format not available, the portal's request refused). Correct it at the IdP and sign in again.",
)
NO_ASSERTION = _rule(
    "RSP002", "A successful response carries no assertion",
    "A response with status Success must contain an assertion (SAML Profiles §4.1.4.2).",
    "Without an assertion there is no user to sign in.",
    "Configure the portal's application at the IdP to issue a SAML 2.0 assertion.",
)
ISSUER = _rule(
    "RSP003", "The Issuer is not the IdP's entity ID",
    "The assertion's Issuer (required) and the Response's Issuer (when present) must equal the IdP entity ID "
    "from --metadata or the CRM record's idp.entity_id, character for character.",
    "The portal trusts a response only from the issuer configured for the biller; a trailing slash or http "
    "for https is enough to reject every login.",
    "Make the IdP's issuer (entity ID) and the CRM record's idp.entity_id identical.",
)
ISSUERS_DIFFER = _rule(
    "RSP004", "The assertion's Issuer differs from the Response's",
    "When the Response names an Issuer, it must be the assertion's Issuer too.",
    "Two issuers in one response mean the assertion was made by another IdP than the one answering: a proxy "
    "misconfiguration, or an assertion copied into someone else's response.",
    "Configure the IdP to use one entity ID for the response and the assertion.",
)
NO_ENTITY_ID = _rule(
    "RSP005", "The Issuer was not compared: no IdP entity ID is known",
    "Neither --metadata nor the CRM record's idp.entity_id gives the entity ID the Issuer must equal.",
    "Unchecked, a response from any IdP would pass this check.",
    "Run with --metadata, or set idp.entity_id in the CRM record.",
    Severity.INFO,
)
UNSIGNED_FIELDS = _rule(
    "RSP006", "Only the assertion is signed: Response-level fields are unsigned",
    "When the assertion is signed and the Response is not, the Response's Destination, InResponseTo and "
    "Status are covered by no signature.",
    "Those values could be changed in transit without breaking a signature; the portal relies on the signed "
    "copies inside the assertion (Recipient, InResponseTo of the bearer confirmation).",
    "Nothing is required. To have every field signed, sign the response too (Okta: 'Response' signature; "
    "Entra ID: Signing option 'Sign SAML response and assertion'; AD FS: Set-AdfsRelyingPartyTrust "
    "-SamlResponseSignature MessageAndAssertion).",
    Severity.INFO,
)
BAD_TIME = _rule(
    "RSP007", "A time is missing or not a valid xs:dateTime",
    "IssueInstant, NotBefore, NotOnOrAfter, AuthnInstant and SessionNotOnOrAfter must be xs:dateTime values "
    "in UTC, e.g. 2026-06-01T12:00:00Z (SAML Core §1.3.3); IssueInstant and AuthnInstant are required.",
    "A time the portal cannot read makes the assertion's validity unknown, and it is rejected.",
    "Correct the IdP's clock and time format; times must end with Z (or an offset).",
)
NOT_YET_VALID = _rule(
    "RSP008", "The assertion is not yet valid",
    "Conditions/@NotBefore must not be later than now plus the allowed clock skew.",
    "The portal rejects an assertion before its validity starts; this usually means the IdP's clock runs "
    "ahead.",
    "Synchronise the IdP server's clock with NTP.",
)
EXPIRED = _rule(
    "RSP009", "The assertion has expired",
    "Conditions/@NotOnOrAfter must be later than now minus the allowed clock skew.",
    "An expired assertion is refused; a response replayed later, or a clock running behind, ends up here.",
    "Synchronise the IdP server's clock with NTP, and sign in again rather than re-posting an old response.",
)
CONFIRMATION_EXPIRY = _rule(
    "RSP010", "The bearer confirmation has no NotOnOrAfter, or it has passed",
    "The bearer SubjectConfirmationData must have a NotOnOrAfter that is later than now minus the allowed "
    "clock skew (SAML Profiles §4.1.4.2).",
    "It limits how long the response may be delivered; without it a stolen response stays usable.",
    "Have the IdP set NotOnOrAfter on the bearer SubjectConfirmationData (all mainstream IdPs do by default), "
    "and synchronise its clock.",
)
ISSUE_INSTANT = _rule(
    "RSP011", "IssueInstant is implausible",
    "The IssueInstant of the Response and of the assertion must not lie in the future beyond the clock skew, "
    "nor be older than the longest assertion lifetime allowed (24 hours by default).",
    "A future instant means a wrong clock; a very old one means the response was stored and replayed.",
    "Synchronise the IdP server's clock with NTP, and test with a fresh login.",
)
NO_AUDIENCE = _rule(
    "RSP012", "The assertion has no AudienceRestriction",
    "The assertion's Conditions must contain an AudienceRestriction naming the portal (SAML Profiles "
    "§4.1.4.2).",
    "Without an audience, the assertion could be sent to any other service provider that trusts the same IdP.",
    "Set the audience (the portal's entity ID) in the IdP's application settings.",
)
AUDIENCE = _rule(
    "RSP013", "The audience is not the portal's entity ID",
    "Every AudienceRestriction must contain an Audience equal to the CRM record's sp.entity_id.",
    "An assertion for another audience was made for another application; the portal refuses it.",
    "Set the audience of the portal's application at the IdP to exactly the portal's entity ID.",
)
NO_BEARER = _rule(
    "RSP014", "No bearer SubjectConfirmation",
    "The Subject must have a SubjectConfirmation with Method urn:oasis:names:tc:SAML:2.0:cm:bearer (SAML "
    "Profiles §4.1.4.2).",
    "Browser SSO works only with bearer confirmation; other methods (holder-of-key, sender-vouches) need "
    "proof the browser cannot give.",
    "Configure the application at the IdP for SAML 2.0 Web Browser SSO (the default bearer confirmation).",
)
RECIPIENT = _rule(
    "RSP015", "The Recipient is not the portal's ACS URL",
    "The bearer SubjectConfirmationData must have a Recipient equal to the CRM record's sp.acs_url.",
    "The signed Recipient binds the assertion to the portal's endpoint; a response addressed elsewhere is "
    "refused.",
    "Set the ACS (reply) URL of the portal's application at the IdP to exactly the portal's ACS URL.",
)
DESTINATION = _rule(
    "RSP016", "The Destination is missing or not the portal's ACS URL",
    "The Response's Destination must equal the CRM record's sp.acs_url when present, and is required on a "
    "signed Response (SAML Bindings §3.5.5.2).",
    "The portal refuses a response addressed to another endpoint; it may have been meant for another "
    "application.",
    "Set the ACS (reply) URL of the portal's application at the IdP to exactly the portal's ACS URL.",
)
IN_RESPONSE_TO = _rule(
    "RSP017", "InResponseTo does not match the portal's request",
    "InResponseTo on the Response and on the bearer SubjectConfirmationData must both equal the ID of the "
    "portal's AuthnRequest (--request-id).",
    "The portal accepts a response only for a request it sent in the same browser session, once; this stops "
    "a response from being injected into another user's login.",
    "Start the login from the portal (not from the IdP's dashboard) and post the response it produces; an "
    "IdP must copy the request's ID unchanged.",
)
UNSOLICITED = _rule(
    "RSP018", "Unsolicited response (IdP-initiated)",
    "The Response and its bearer confirmation carry no InResponseTo: the login was started at the IdP.",
    "The portal accepts SP-initiated logins only: it must know the account before the user signs in.",
    "Start the login from the portal's sign-in link, and hide the portal's tile in the IdP's app dashboard "
    "(or point it to the portal's sign-in URL).",
)
NO_AUTHN_STATEMENT = _rule(
    "RSP019", "The assertion has no AuthnStatement",
    "The assertion must contain an AuthnStatement saying how and when the user signed in (SAML Profiles "
    "§4.1.4.2).",
    "Without it the assertion does not log anyone in.",
    "Configure the application at the IdP for SAML 2.0 Web Browser SSO.",
)
NO_NAMEID = _rule(
    "RSP020", "The NameID is missing or empty",
    "The assertion's Subject must carry a NameID with a value.",
    "The portal identifies the user by the NameID.",
    "Set the NameID (Okta: 'Application username'; Entra ID: 'Unique User Identifier'; AD FS: a rule issuing "
    "Name ID) to an attribute every user has.",
)
NAMEID_SPACES = _rule(
    "RSP021", "The NameID has surrounding whitespace",
    "The NameID value starts or ends with spaces, tabs or line breaks.",
    "The portal compares the NameID exactly: ' jo@example.com' is another user than 'jo@example.com'.",
    "Remove the whitespace from the source attribute at the IdP, or apply a Trim transformation.",
    Severity.WARNING,
)
NAMEID_FORMAT = _rule(
    "RSP022", "The NameID format differs from the CRM record's",
    "The NameID's Format (unspecified when absent) must equal the CRM record's idp.nameid_format.",
    "The portal reads the NameID as that format; an opaque persistent ID where an email address is "
    "expected matches no user.",
    "Set the NameID format at the IdP (Okta: 'Name ID format'; Entra ID: 'Unique User Identifier' claim's "
    "name identifier format; AD FS: the Name ID rule's format), or correct the CRM record.",
)
REPLAY = _rule(
    "RSP023", "The assertion was seen before (replay)",
    "The assertion's ID is already in the replay cache.",
    "An assertion must be used once; a second use is a replayed (possibly stolen) response.",
    "Sign in again to get a fresh response; never re-post a saved one.",
)
LIFETIME = _rule(
    "RSP024", "The assertion is valid for far too long",
    "The validity window of the Conditions and of the bearer confirmation (NotOnOrAfter minus NotBefore, or "
    "minus the IssueInstant) must not exceed the longest assertion lifetime allowed (24 hours by default).",
    "An assertion is a bearer token: whoever holds it signs in until it expires. IdPs issue assertions valid "
    "for minutes (Okta 5, Entra ID 70, AD FS 60); one valid for days keeps a stolen response usable for days.",
    "Set the IdP's assertion lifetime to minutes (AD FS: the relying party's NotBeforeSkew and token lifetime; "
    "Shibboleth: assertionLifetime), and keep long sessions in the portal, not in the assertion.",
)
SPLIT_VALUE = _rule(
    "RSP025", "A comment or processing instruction splits a value",
    "NameID, Issuer, Audience and AttributeValue text must not contain an XML comment or processing "
    "instruction in the response as received.",
    "Canonicalisation drops comments, so the signature still verifies; an SP that reads only the first text "
    "node sees 'admin@example.com' in 'admin@example.com<!---->.evil.test' (the 2018 comment-injection "
    "attacks on OneLogin, Duo and Shibboleth). No IdP product writes comments into values.",
    "Treat the response as an attack or a broken proxy in front of the IdP. The validator reads the whole "
    "value, as the SP must.",
)
