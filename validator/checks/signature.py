"""SIG rules: the metadata document's own XML signature."""

from __future__ import annotations

from collections.abc import Iterator

from metadata.certs import CertificateError, certificate_facts
from metadata.model import MetadataDocument
from metadata.signing import algorithm_name
from validator.context import SignatureOutcome
from validator.findings import Finding, Severity, rule

VERIFIED = rule(
    "SIG001", "The metadata signature is verified", Severity.INFO, "metadata",
    what="The document's signature follows the SAML signature profile and verifies with a trusted "
         "certificate (--trust).",
    why="Signed metadata proves that it came from the partner unchanged.",
    fix="Nothing to fix.",
)
NOT_VERIFIED = rule(
    "SIG002", "Signed, not verified: no trusted key given", Severity.WARNING, "metadata",
    what="The document carries a signature, but no trusted certificate was given with --trust, so the "
         "signature proves nothing yet.",
    why="A certificate inside the document cannot vouch for the document itself: anyone who changes the "
        "file can re-sign it with their own key.",
    fix="Ask the partner (or the federation) for the metadata-signing certificate over a separate channel "
        "and run again with --trust CERT.",
)
INVALID = rule(
    "SIG003", "The metadata signature is invalid", Severity.ERROR, "metadata",
    what="A trusted certificate was given, and the signature does not verify with it.",
    why="The document was changed after it was signed (even reformatting breaks a signature), or it was "
        "signed with another key.",
    fix="Download the metadata again without opening and saving it in an editor; check that --trust names "
        "the partner's current metadata-signing certificate.",
)
PROFILE = rule(
    "SIG004", "The signature does not follow the SAML signature profile", Severity.ERROR, "metadata",
    what="SAML Core §5.4: one Reference whose URI is '#' plus the signed element's ID, the transforms "
         "enveloped-signature then exclusive c14n (once each), exclusive c14n for SignedInfo, no ds:Object, "
         "an RSA or ECDSA signature method; an InclusiveNamespaces PrefixList of at most 16 distinct prefixes.",
    why="Signatures outside this profile are how signature-wrapping attacks slip a different document "
        "past the check; they are refused without verifying them. A long PrefixList or repeated transforms "
        "make canonicalisation cost what the sender chooses (4,000 prefixes: 50 s) before any key is tried.",
    fix="Sign the metadata with a SAML-aware tool (xmlsectool, pyFF, the IdP itself) using exclusive c14n "
        "and an ID reference.",
)
SHA1 = rule(
    "SIG005", "The signature uses SHA-1", Severity.WARNING, "metadata",
    what="The signature method (rsa-sha1) or the digest method (sha1) uses SHA-1.",
    why="SHA-1 collisions are practical; SAML deployments moved to SHA-256 years ago.",
    fix="Configure the IdP or metadata signer to use RSA-SHA256 with a SHA-256 digest.",
)
UNSIGNED_BUT_TRUSTED = rule(
    "SIG006", "A trusted key was given but the metadata is unsigned", Severity.ERROR, "metadata",
    what="--trust was given, so the metadata is expected to be signed, and it carries no signature on its "
         "root element.",
    why="Unsigned metadata where signed metadata is expected may have been replaced on the way.",
    fix="Get the signed metadata from the partner's metadata URL, or drop --trust if it is never signed.",
)
UNSIGNED = rule(
    "SIG007", "The metadata is not signed", Severity.INFO, "metadata",
    what="The document has no signature on its root element.",
    why="Most vendor app metadata (Okta, Google, OneLogin) is unsigned; it must then be fetched over https "
        "from the vendor or received over a trusted channel.",
    fix="Nothing required; prefer the https metadata URL over an emailed file.",
)
BROKEN_SELF = rule(
    "SIG008", "The signature does not verify even with the certificate it carries", Severity.WARNING,
    "metadata",
    what="With no trusted certificate given, the signature was tried against the certificate in its own "
         "KeyInfo — which proves nothing about trust, but a failure proves the file was changed after "
         "signing.",
    why="A file edited or reformatted after signing will fail at any SP that verifies it.",
    fix="Download the metadata again without editing it.",
)


def check_signature(document: MetadataDocument, outcome: SignatureOutcome, source: str) -> Iterator[Finding]:
    """The document's own signature: judged once per document, whatever entity is chosen."""
    root = "md:EntitiesDescriptor" if document.root == "EntitiesDescriptor" else "md:EntityDescriptor"
    line = outcome.profile.line if outcome.profile else None
    where = f"{source}, line {line}: {root}/ds:Signature" if line else f"{source}: {root}/ds:Signature"
    if outcome.status == "unsigned":
        if outcome.trusted_given:
            yield UNSIGNED_BUT_TRUSTED.finding("the document is not signed", expected="a signed document",
                                               actual="no ds:Signature on the root element", where=where)
        else:
            yield UNSIGNED.finding("the document is not signed", where=where)
        return
    profile = outcome.profile
    if profile is not None and profile.uses_sha1:
        yield SHA1.finding(
            "the metadata signature uses SHA-1",
            expected="rsa-sha256 / sha256",
            actual=f"{algorithm_name(profile.signature_method)} / {algorithm_name(profile.digest_method)}",
            where=where,
        )
    yield from _verdict(outcome, where)


def _verdict(outcome: SignatureOutcome, where: str) -> Iterator[Finding]:
    """What verifying the signature came to: verified, refused for its shape, invalid, or not verifiable."""
    if outcome.status == "verified":
        signer = _signer(outcome.certificate)
        yield VERIFIED.finding(f"the signature verifies with the trusted certificate {signer}", where=where)
    elif outcome.status == "profile":
        # Without a trusted key nothing was going to be verified: the shape is a warning then.
        severity = Severity.ERROR if outcome.trusted_given else Severity.WARNING
        yield PROFILE.finding(outcome.message, where=where, severity=severity)
    elif outcome.status == "invalid":
        yield INVALID.finding(outcome.message, where=where)
    elif outcome.status == "untrusted":
        yield from _untrusted(outcome, where)


def _untrusted(outcome: SignatureOutcome, where: str) -> Iterator[Finding]:
    profile = outcome.profile
    signer = _signer(profile.embedded_certificates[0]) if profile and profile.embedded_certificates else (
        "an unnamed key (no certificate in KeyInfo)"
    )
    yield NOT_VERIFIED.finding(f"the document is signed by {signer}; no trusted certificate was given",
                               where=where)
    if outcome.self_consistent is False:
        yield BROKEN_SELF.finding(
            "the signature fails even with its own KeyInfo certificate: the file was changed after "
            "it was signed", where=where,
        )


def _signer(der: bytes | None) -> str:
    if der is None:
        return "an unknown certificate"
    try:
        facts = certificate_facts(der)
    except CertificateError:
        return "an unreadable certificate"
    return f"{facts.subject} (SHA-256 {facts.sha256[:23]}…, until {facts.not_after:%Y-%m-%d})"

