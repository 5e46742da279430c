"""SIG rules of a SAML response (SIG020–): its structure against signature wrapping, and
which element is signed, how, and by which trusted certificate (SECURITY.md §2)."""

from __future__ import annotations

import functools
from collections.abc import Iterator

from metadata.certs import CertificateError, certificate_facts
from metadata.encryption import DecryptionError
from metadata.response import ResponseError, ResponseSignatureError, StructureProblem, VerifiedResponse
from metadata.signing import SignatureError, algorithm_name
from validator.findings import Finding, Severity, rule

WRAPPING = rule(
    "SIG020", "The response's structure allows signature wrapping", Severity.ERROR, "response-signature",
    what="A response must be a samlp:Response with exactly one Assertion (or EncryptedAssertion) as its "
         "direct child, every ID unique, signatures only on the Response or the Assertion, at most two, "
         "and no ds:Object.",
    why="Signature-wrapping attacks (XSW) hide a second assertion or move the signed one so that the "
        "signature verifies while the SP reads claims from an unsigned node; every SAML library broken in "
        "2024–2026 failed this way. Such a response is refused before any signature is checked.",
    fix="A real IdP never produces this shape: treat the response as an attack, or as the output of a "
        "broken proxy in front of the IdP.",
)
UNSIGNED = rule(
    "SIG021", "Neither the response nor the assertion is signed", Severity.ERROR, "response-signature",
    what="The Response, the Assertion, or both must carry an enveloped XML signature.",
    why="An unsigned response can be forged by anyone who can reach the portal's ACS.",
    fix="Turn on assertion signing in the IdP (Okta: 'Assertion Signature: Signed'; Entra ID: 'Signing "
        "Option: Sign SAML assertion'; AD FS: on by default).",
)
INVALID = rule(
    "SIG022", "A signature of the response does not verify", Severity.ERROR, "response-signature",
    what="Each signature present (the Response's, the Assertion's) is verified with the IdP's signing "
         "certificates from its trust source (never "
         "with a certificate the response carries itself).",
    why="The response was changed after signing, or signed with a key the portal does not trust: a key "
        "rollover not yet in the metadata, or another IdP.",
    fix="Give the IdP's current metadata or signing certificates (the CRM record's trust source, or the "
        "metadata given to the check); if the IdP rolled its key, publish the new certificate to the portal "
        "before switching.",
)
PROFILE = rule(
    "SIG023", "A response signature departs from the SAML signature profile", Severity.ERROR,
    "response-signature",
    what="SAML Core §5.4: one Reference whose URI is '#' plus the signed element's ID, the transforms "
         "enveloped-signature then exclusive c14n (once each; the enveloped transform alone would digest "
         "inclusive c14n, which is not accepted), an RSA or ECDSA signature method, an InclusiveNamespaces "
         "PrefixList of at most 16 distinct prefixes.",
    why="Signatures outside the profile are how wrapping and transform attacks slip a different document "
        "past the check; they are refused without being verified. A long PrefixList or repeated transforms "
        "make canonicalisation cost what the sender chooses (4,000 prefixes: 50 s) before any key is tried.",
    fix="Use the IdP's standard signing settings (RSA-SHA256, exclusive c14n).",
)
SHA1 = rule(
    "SIG024", "The response is signed with SHA-1", Severity.WARNING, "response-signature",
    what="The signature method or digest of a verified signature uses SHA-1.",
    why="SHA-1 collisions are practical; the portal may refuse SHA-1 signatures in the future.",
    fix="Set the IdP's signature algorithm to RSA-SHA256 (Okta: 'Signature Algorithm'; Entra ID: 'Signing "
        "Algorithm'; AD FS: the relying party's 'Secure hash algorithm').",
)
VERIFIED = rule(
    "SIG025", "A signature of the response verifies", Severity.INFO, "response-signature",
    what="Reports which element is signed, with which algorithm, by which trusted certificate.",
    why="Knowing what is signed tells which fields can be trusted.",
    fix="Nothing to fix.",
)
NO_TRUST = rule(
    "SIG026", "No trusted certificate to verify the response", Severity.ERROR, "response-signature",
    what="The IdP's signing certificates come from a trust source: metadata given to the check, else "
         "metadata uploaded for the biller in the web app (its partner page), else the CRM record's [idp] "
         "metadata_file, signing_certificates or metadata_url (in that order); without one nothing is "
         "verified and no claim is read.",
    why="A claim read from an unverified response proves nothing: anyone can write one.",
    fix="Give the IdP's trust: set [idp] metadata_url, metadata_file or signing_certificates in the CRM "
        "record, upload the IdP's metadata on the partner's page of the web app, or give it with the check.",
)
DECRYPTION = rule(
    "SIG027", "The encrypted assertion cannot be decrypted", Severity.ERROR, "response-signature",
    what="An EncryptedAssertion is decrypted with the SP's private key (--sp-key), allowing RSA-OAEP and "
         "AES-GCM/CBC only.",
    why="Without decryption nothing in the assertion can be checked; a refused algorithm (RSA 1.5, 3DES) "
        "is weak enough to be attacked.",
    fix="Give the SP's private key with --sp-key; configure the IdP to encrypt with AES-256-GCM and "
        "RSA-OAEP.",
)


def structure_findings(problems: list[StructureProblem], source: str) -> Iterator[Finding]:
    for problem in problems:
        where = f"{source}, line {problem.line}" if problem.line else source
        yield WRAPPING.finding(problem.message, actual=problem.kind, where=where)


def refusal_finding(error: Exception, source: str) -> Finding:
    """The finding for a response the verifier refused."""
    if isinstance(error, DecryptionError):
        return DECRYPTION.finding(str(error), actual=getattr(error, "kind", None), where=source)
    if isinstance(error, ResponseError):
        return WRAPPING.finding(error.message, actual=error.kind, where=source)
    assert isinstance(error, SignatureError)
    if error.kind == "missing":
        return UNSIGNED.finding(error.message, expected="a signed Assertion or Response", actual="no signature",
                                where=source)
    if error.kind in ("profile", "weak", "several"):
        return PROFILE.finding(error.message, where=source)
    if isinstance(error, ResponseSignatureError):
        # Which signature: with both signed, the Response's may verify and the Assertion's not.
        return INVALID.finding(f"the {error.element}'s signature does not verify: {error.message}",
                               where=f"{source}: {error.element}/ds:Signature")
    return INVALID.finding(error.message, where=source)


def verified_findings(verified: VerifiedResponse, source: str) -> Iterator[Finding]:
    for facts in verified.signatures:
        method = f"{algorithm_name(facts.signature_method)} / {algorithm_name(facts.digest_method)}"
        signer = _signer(facts.certificate)
        yield VERIFIED.finding(f"the {facts.element} is signed ({method}) and verifies with {signer}",
                               actual=method, where=f"{source}: {facts.element}/ds:Signature")
        if facts.uses_sha1:
            yield SHA1.finding(f"the {facts.element} signature uses SHA-1", expected="rsa-sha256 / sha256",
                               actual=method, where=f"{source}: {facts.element}/ds:Signature")


CLI_METADATA = "--metadata FILE|URL"
"""How the command line takes the IdP's metadata; each surface names its own (a form field, a JSON key)."""


def no_trust_reason(given: str = CLI_METADATA) -> str:
    """SIG026's message where a check runs with a CRM record that gives no trust; `given` is how this
    surface takes the IdP's metadata."""
    return (f"there is no trust source: no IdP metadata was given ({given}) and the CRM record's [idp] table sets "
            "none of metadata_url, metadata_file, signing_certificates; the signatures cannot be checked and no "
            "claim is read")


def no_record_reason(given: str = CLI_METADATA) -> str:
    """SIG026's message where a check runs without a CRM record."""
    return (f"there is no trust source: no IdP metadata was given ({given}) and no CRM record, whose [idp] "
            "metadata_url, metadata_file or signing_certificates would give one; the signatures cannot be checked "
            "and no claim is read")


NO_TRUST_REASON = no_trust_reason()
"""SIG026's message where the command line judges with a CRM record (another surface passes its own words)."""


def no_trust_finding(source: str, reason: str = NO_TRUST_REASON, fix: str | None = None) -> Finding:
    return NO_TRUST.finding(reason, expected="the IdP's signing certificate(s)", where=source, fix=fix)


@functools.lru_cache(maxsize=64)
def _signer(der: bytes) -> str:
    # The same few trusted certificates sign every response: parse and format each once.
    try:
        facts = certificate_facts(der)
    except CertificateError:
        return "a trusted certificate"
    return f"the trusted certificate {facts.subject} (SHA-256 {facts.sha256[:23]}…)"
