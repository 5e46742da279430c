"""KEY rules: the IdP's signing keys and their certificates."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from datetime import datetime

from metadata.certs import CertificateError, CertificateFacts, certificate_facts
from metadata.model import Certificate, KeyDescriptor
from metadata.saml import DS
from validator.context import MetadataContext
from validator.findings import Finding, Severity, rule

NO_SIGNING_KEY = rule(
    "KEY001", "No usable signing certificate", Severity.ERROR, "metadata",
    what="The IDPSSODescriptor must have a KeyDescriptor with use=\"signing\" (or no use) holding a "
         "ds:X509Certificate in the XML-DSig namespace that can be read.",
    why="The portal verifies every SAML response with this certificate; without it no login can be "
        "accepted.",
    fix="Export the metadata again from the IdP; it must include the IdP's token-signing certificate.",
)
NO_USE = rule(
    "KEY002", "A KeyDescriptor has no use attribute", Severity.INFO, "metadata",
    what="A KeyDescriptor without use serves both signing and encryption (SAML Metadata §2.4.1.1); it is "
         "counted as a signing key.",
    why="This is valid and common (Shibboleth), but worth knowing when an encryption key is expected.",
    fix="Nothing to fix.",
)
FOREIGN_KEYINFO = rule(
    "KEY003", "KeyInfo is not in the XML-DSig namespace", Severity.ERROR, "metadata",
    what="A KeyDescriptor holds a KeyInfo element whose namespace is not "
         "http://www.w3.org/2000/09/xmldsig# (often a typo such as https://www.w3.org/2000/09/xmldsig#).",
    why="SP libraries look for ds:KeyInfo in the exact namespace; this key is invisible to them and the "
        "IdP appears to have no signing key.",
    fix="Correct the xmlns:ds declaration to http://www.w3.org/2000/09/xmldsig# (http, not https), or "
        "export the metadata again from the IdP.",
)
UNPARSEABLE = rule(
    "KEY004", "A certificate cannot be read", Severity.ERROR, "metadata",
    what="A ds:X509Certificate is not valid base64 or not a DER X.509 certificate.",
    why="A certificate that cannot be read cannot verify anything.",
    fix="Copy the certificate again from the IdP (base64 body only, no BEGIN/END lines inside the element).",
)
EXPIRED = rule(
    "KEY005", "A signing certificate has expired", Severity.ERROR, "metadata",
    what="The certificate's notAfter date is earlier than now.",
    why="Many SPs (and the portal) refuse responses signed with an expired certificate; even where the "
        "date is ignored, an expired certificate means the IdP's key rollover was missed.",
    fix="Generate a new signing certificate on the IdP, make it active, and send the new metadata.",
)
EXPIRING = rule(
    "KEY006", "A signing certificate expires soon", Severity.WARNING, "metadata",
    what="The certificate expires within the warning window (30 days unless --warn-days says otherwise).",
    why="When it expires, logins stop until the portal has the new certificate.",
    fix="Add the next certificate on the IdP now, send the metadata with both certificates, and switch "
        "after the portal has loaded it.",
)
WEAK_KEY = rule(
    "KEY007", "A certificate's key is too weak", Severity.ERROR, "metadata",
    what="RSA keys must have at least 2048 bits and EC keys at least 256 bits; DSA keys are refused.",
    why="Shorter keys can be factored or broken with affordable computing power, letting an attacker "
        "forge responses.",
    fix="Generate a new signing key of RSA 2048 bits or more (or EC P-256) on the IdP.",
)
WEAK_CERT_HASH = rule(
    "KEY008", "A certificate is signed with MD5 or SHA-1", Severity.INFO, "metadata",
    what="The certificate's own signature uses MD5 or SHA-1.",
    why="In SAML the certificate is only a container for the key: trust comes from the metadata, not "
        "from the certificate's signature, so this is not a weakness of the login; some scanners flag it.",
    fix="Nothing required; a new certificate signed with SHA-256 silences scanners.",
)
DUPLICATE = rule(
    "KEY009", "The same certificate is listed more than once", Severity.INFO, "metadata",
    what="Two KeyDescriptors of the IdP role carry the identical certificate.",
    why="Harmless, but it can hide that the intended second (rollover) certificate is missing.",
    fix="Nothing required.",
)
ROLLOVER = rule(
    "KEY010", "Several signing certificates (rollover)", Severity.INFO, "metadata",
    what="The IdP role lists more than one distinct signing certificate.",
    why="This is how a key rollover is announced: the SP must accept responses signed with any of them.",
    fix="Nothing to fix; make sure the portal loads every signing certificate.",
)
NOT_YET_VALID = rule(
    "KEY011", "A signing certificate is not yet valid", Severity.WARNING, "metadata",
    what="The certificate's notBefore date is later than now.",
    why="SPs that check dates refuse the certificate until then.",
    fix="Wait for the validity to start before activating the certificate, or check the IdP's clock.",
)


def _key_where(ctx: MetadataContext, key: KeyDescriptor) -> str:
    return ctx.where(key.line, f"md:KeyDescriptor{f' use={key.use}' if key.use else ''}")


def signing_keys(keys: tuple[KeyDescriptor, ...]) -> list[KeyDescriptor]:
    return [k for k in keys if k.use in (None, "signing")]


def certificate_label(facts: CertificateFacts) -> str:
    return f"{facts.subject} (SHA-256 {facts.sha256[:23]}…)"


def check_keys(ctx: MetadataContext) -> Iterator[Finding]:
    idp = ctx.entity.idp
    if idp is None:
        return
    usable: list[tuple[Certificate, CertificateFacts]] = []
    for key in idp.keys:
        where = _key_where(ctx, key)
        if key.foreign_keyinfo_namespace:
            yield FOREIGN_KEYINFO.finding(
                "the KeyDescriptor's KeyInfo is in the wrong namespace, so SP libraries cannot see the key",
                expected=DS, actual=key.foreign_keyinfo_namespace,
                where=where,
            )
        if key.use is None:
            yield NO_USE.finding("this KeyDescriptor has no use attribute and counts as a signing key",
                                 where=where)
        if key.use not in (None, "signing"):
            continue
        for cert in key.certificates:
            try:
                if cert.der is None:
                    raise CertificateError("the base64 text could not be decoded")
                usable.append((cert, certificate_facts(cert.der)))
            except CertificateError as exc:
                yield UNPARSEABLE.finding(str(exc), actual=cert.text[:60] + ("…" if len(cert.text) > 60 else ""),
                                          where=ctx.where(cert.line, "ds:X509Certificate"))
    if not usable:
        yield NO_SIGNING_KEY.finding(
            "the IdP role has no signing certificate that can be used to verify its responses",
            expected="md:KeyDescriptor use=\"signing\" with a ds:X509Certificate",
            actual=f"{len(idp.keys)} KeyDescriptor(s), none usable for signing",
            where=ctx.where(idp.line, "md:IDPSSODescriptor"),
        )
        return
    yield from _certificate_findings(ctx, usable)


def _certificate_findings(
    ctx: MetadataContext, usable: list[tuple[Certificate, CertificateFacts]]
) -> Iterator[Finding]:
    counts = Counter(facts.sha256 for _, facts in usable)
    reported: set[str] = set()
    for cert, facts in usable:
        where = ctx.where(cert.line, "ds:X509Certificate")
        if facts.sha256 in reported:
            continue
        reported.add(facts.sha256)
        if counts[facts.sha256] > 1:
            yield DUPLICATE.finding(f"{certificate_label(facts)} is listed {counts[facts.sha256]} times", where=where)
        yield from _validity_findings(ctx, facts, where)
        yield from _strength_findings(facts, where)
    if len(counts) > 1:
        listed = "; ".join(sorted(f"{facts.subject} until {facts.not_after:%Y-%m-%d}"
                                  for _, facts in {f.sha256: (c, f) for c, f in usable}.values()))
        yield ROLLOVER.finding(
            f"{len(counts)} distinct signing certificates are listed ({listed}); responses signed by any "
            "of them must be accepted",
            where=ctx.where(ctx.entity.idp.line if ctx.entity.idp else None, "md:IDPSSODescriptor"),
        )


def _validity_findings(ctx: MetadataContext, facts: CertificateFacts, where: str) -> Iterator[Finding]:
    return certificate_validity(facts, ctx.now, ctx.warn_days, where)


def certificate_findings(facts: CertificateFacts, now: datetime, warn_days: int, where: str) -> Iterator[Finding]:
    """A certificate given without metadata (the record's signing_certificates), judged as the
    metadata's are: its dates, its key and its signature's hash."""
    yield from certificate_validity(facts, now, warn_days, where)
    yield from _strength_findings(facts, where)


def certificate_validity(facts: CertificateFacts, now: datetime, warn_days: int, where: str) -> Iterator[Finding]:
    """A certificate's dates: KEY005 expired, KEY006 within `warn_days`, KEY011 not yet valid. For a
    certificate in metadata and for one given without (the record's signing_certificates)."""
    days = facts.days_left(now)
    not_after = f"{facts.not_after:%Y-%m-%d}"
    if facts.not_after < now:
        yield EXPIRED.finding(f"{certificate_label(facts)} expired on {not_after} ({-days} days ago)",
                              expected=f"valid on {now:%Y-%m-%d}", actual=f"notAfter {not_after}", where=where)
    elif days < warn_days:
        yield EXPIRING.finding(f"{certificate_label(facts)} expires on {not_after}, in {days} days",
                               expected=f"valid for more than {warn_days} days", actual=f"notAfter {not_after}",
                               where=where)
    if facts.not_before > now:
        yield NOT_YET_VALID.finding(f"{certificate_label(facts)} becomes valid on {facts.not_before:%Y-%m-%d}",
                                    actual=f"notBefore {facts.not_before:%Y-%m-%d}", where=where)


def _strength_findings(facts: CertificateFacts, where: str) -> Iterator[Finding]:
    weak = (
        (facts.key_type == "RSA" and facts.key_bits < 2048)
        or (facts.key_type == "EC" and facts.key_bits < 256)
        or facts.key_type == "DSA"
    )
    if weak:
        yield WEAK_KEY.finding(f"{certificate_label(facts)} has a {facts.key_type} {facts.key_bits}-bit key",
                               expected="RSA ≥ 2048 bits or EC ≥ 256 bits",
                               actual=f"{facts.key_type} {facts.key_bits} bits", where=where)
    if facts.signature_hash in ("md5", "sha1"):
        yield WEAK_CERT_HASH.finding(f"{certificate_label(facts)} is signed with {facts.signature_hash.upper()}",
                                     actual=facts.signature_hash, where=where)


CHECKS = (check_keys,)
