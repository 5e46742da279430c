"""A synthetic, signed federation aggregate: N IdP entities that look like real ones.

Generated once per (entity count, generator version) and cached under ``bench/.data/``
(git-ignored, because the metadata signer's private key is kept beside the file). Each
entity has an entityID, an IDPSSODescriptor (SAML 2.0) with mdui:UIInfo, a signing
KeyDescriptor holding a real RSA-2048 certificate (20 distinct ones, reused round-robin so
generation stays quick), NameIDFormats, SSO over HTTP-Redirect and HTTP-POST, SLO, an
Organization and a technical ContactPerson. Five entity styles (Shibboleth, ADFS, Okta,
Entra ID, Keycloak) vary the URLs. 10,000 entities come to about 22 MB. The root
md:EntitiesDescriptor is signed (RSA-SHA256, exclusive c14n) with a generated metadata
signer whose certificate is kept as PEM, to be given as the trusted certificate.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import uuid
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape, quoteattr

from metadata.saml import DS, EMAIL, MD, PERSISTENT, TRANSIENT

GENERATOR_VERSION = 1
"""Bump whenever the generated document changes: cached files of another version are rebuilt."""

DATA_DIR = Path(__file__).with_name(".data")
CERTIFICATES = 20
VALIDITY = dt.timedelta(days=365)
"""validUntil of the aggregate, from generation; a cached file with less than REFRESH left is rebuilt."""
REFRESH = dt.timedelta(days=30)

MDUI = "urn:oasis:names:tc:SAML:metadata:ui"
SHIBMD = "urn:mace:shibboleth:metadata:1.0"
SAML2 = "urn:oasis:names:tc:SAML:2.0:protocol"
REDIRECT = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"
POST = "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"


@dataclass(frozen=True)
class Aggregate:
    path: Path
    """The signed aggregate."""
    signer_pem: Path
    """The metadata signer's certificate (PEM), to trust when verifying."""
    entities: int
    size: int
    """Bytes of the aggregate."""


def paths(entities: int) -> tuple[Path, Path, Path, Path]:
    stem = DATA_DIR / f"aggregate-{entities}-v{GENERATOR_VERSION}"
    return (stem.with_suffix(".xml"), stem.with_name(stem.name + "-signer.pem"),
            stem.with_name(stem.name + "-signer.key"), stem.with_suffix(".json"))


def cached(entities: int, now: dt.datetime | None = None) -> Aggregate | None:
    """The cached aggregate of `entities` entities, if it exists, is of this version and is not near expiry."""
    xml, pem, _, info_path = paths(entities)
    if not (xml.exists() and pem.exists() and info_path.exists()):
        return None
    try:
        info = json.loads(info_path.read_text())
    except ValueError:
        return None
    now = now or dt.datetime.now(dt.UTC)
    if (info.get("generator") != GENERATOR_VERSION or info.get("entities") != entities
            or info.get("bytes") != xml.stat().st_size
            or dt.datetime.fromisoformat(info["valid_until"]) - now < REFRESH):
        return None
    return Aggregate(xml, pem, entities, xml.stat().st_size)


def generate(entities: int, now: dt.datetime | None = None) -> Aggregate:
    """Write a fresh signed aggregate of `entities` IdP entities (and its signer) under DATA_DIR."""
    from lxml import etree

    from metadata.keys import generate_keypair
    from metadata.signing import sign

    now = (now or dt.datetime.now(dt.UTC)).replace(microsecond=0)
    DATA_DIR.mkdir(exist_ok=True)
    (DATA_DIR / ".gitignore").write_text("*\n")  # belt and braces: keys never reach git
    xml_path, pem_path, key_path, info_path = paths(entities)
    issued = now - dt.timedelta(days=30)  # valid for 30 days already, 3 years to come
    certs = [generate_keypair(f"idp-signing-{i:02d}.bench.example", now=issued, days=3 * 365 + 30)
             for i in range(CERTIFICATES)]
    cert_texts = [base64.b64encode(pair.cert_der).decode("ascii") for pair in certs]
    signer = generate_keypair("Bench Federation metadata signer", now=issued, days=3 * 365 + 30)
    signer_pem, key_pem = signer.cert_pem, signer.key_pem
    valid_until = now + VALIDITY
    parts = [
        f'<EntitiesDescriptor xmlns="{MD}" xmlns:ds="{DS}" xmlns:mdui="{MDUI}" xmlns:shibmd="{SHIBMD}"'
        f' ID="_bench{uuid.uuid4().hex}" Name="urn:example:bench:federation:{entities}"'
        f' validUntil="{valid_until:%Y-%m-%dT%H:%M:%SZ}">\n'
    ]
    parts.extend(_entity(i, cert_texts[i % CERTIFICATES]) for i in range(entities))
    parts.append("</EntitiesDescriptor>\n")
    root = etree.fromstring("".join(parts).encode("utf-8"), etree.XMLParser(huge_tree=True))
    sign(root, key_pem, signer_pem)
    data = etree.tostring(root.getroottree(), xml_declaration=True, encoding="UTF-8")
    key_path.touch(mode=0o600)
    key_path.write_bytes(key_pem)
    pem_path.write_bytes(signer_pem)
    xml_path.write_bytes(data)
    info_path.write_text(json.dumps({
        "generator": GENERATOR_VERSION, "entities": entities, "bytes": len(data),
        "sha256": hashlib.sha256(data).hexdigest(), "generated": now.isoformat(),
        "valid_until": valid_until.isoformat(),
    }, indent=2))
    return Aggregate(xml_path, pem_path, entities, len(data))


_ORGS = ("University", "Water Authority", "County Council", "Energy Cooperative", "Health Trust",
         "Polytechnic", "Housing Association", "Transit District", "Research Institute", "Library Network")


def _style(i: int) -> tuple[str, str, str, str, str]:
    """(entityID, SSO Redirect URL, SSO POST URL, SLO URL, home domain) in one of five vendor styles."""
    tag = hashlib.sha256(f"bench-{i}".encode()).hexdigest()
    style = i % 5
    if style == 0:  # Shibboleth IdP
        host = f"idp.campus{i:05d}.example.edu"
        base = f"https://{host}/idp/profile/SAML2"
        return (f"https://{host}/idp/shibboleth", f"{base}/Redirect/SSO", f"{base}/POST/SSO",
                f"{base}/Redirect/SLO", host.removeprefix("idp."))
    if style == 1:  # ADFS
        host = f"sts.utility{i:05d}.example.com"
        ls = f"https://{host}/adfs/ls/"
        return f"http://{host}/adfs/services/trust", ls, ls, ls, host.removeprefix("sts.")
    if style == 2:  # Okta
        app = f"exk{tag[:17]}"
        base = f"https://biller{i:05d}.okta.example.com/app/biller{i:05d}_portal_1/{app}"
        return f"http://www.okta.com/{app}", f"{base}/sso/saml", f"{base}/sso/saml", f"{base}/slo/saml", \
            f"biller{i:05d}.example.com"
    if style == 3:  # Entra ID
        tenant = str(uuid.UUID(tag[:32]))
        base = f"https://login.microsoftonline.example.com/{tenant}/saml2"
        return f"https://sts.windows.example.net/{tenant}/", base, base, base, f"council{i:05d}.example.org"
    host = f"sso.coop{i:05d}.example.org"  # Keycloak
    base = f"https://{host}/realms/members/protocol/saml"
    return f"https://{host}/realms/members", base, base, base, host.removeprefix("sso.")


def _entity(i: int, cert_text: str) -> str:
    # Compact, one element a line, in the metadata default namespace (as ADFS and Entra ID
    # export it), the certificate on one line: about 2.2-2.6 kB an entity.
    entity_id, sso_redirect, sso_post, slo, domain = _style(i)
    org = escape(f"{domain.split('.')[0].rstrip('0123456789').title()} {_ORGS[i % len(_ORGS)]} {i:05d}")
    scope = f'<shibmd:Scope regexp="false">{domain}</shibmd:Scope>\n' if i % 5 == 0 else ""
    nameid = (PERSISTENT, TRANSIENT) if i % 5 in (0, 4) else (EMAIL, PERSISTENT)
    certificate = f"<ds:X509Certificate>{cert_text}</ds:X509Certificate>"
    return f"""<EntityDescriptor entityID={quoteattr(entity_id)}>
<IDPSSODescriptor protocolSupportEnumeration="{SAML2}">
<Extensions>
{scope}<mdui:UIInfo><mdui:DisplayName xml:lang="en">{org}</mdui:DisplayName></mdui:UIInfo>
</Extensions>
<KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data>{certificate}</ds:X509Data></ds:KeyInfo></KeyDescriptor>
<SingleLogoutService Binding="{REDIRECT}" Location={quoteattr(slo)}/>
<NameIDFormat>{nameid[0]}</NameIDFormat>
<NameIDFormat>{nameid[1]}</NameIDFormat>
<SingleSignOnService Binding="{REDIRECT}" Location={quoteattr(sso_redirect)}/>
<SingleSignOnService Binding="{POST}" Location={quoteattr(sso_post)}/>
</IDPSSODescriptor>
<Organization>
<OrganizationName xml:lang="en">{org}</OrganizationName>
<OrganizationDisplayName xml:lang="en">{org}</OrganizationDisplayName>
<OrganizationURL xml:lang="en">https://www.{domain}/</OrganizationURL>
</Organization>
<ContactPerson contactType="technical">
<GivenName>Identity Team</GivenName>
<EmailAddress>mailto:identity@{domain}</EmailAddress>
</ContactPerson>
</EntityDescriptor>
"""
