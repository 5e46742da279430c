"""metadata.read: what an IdP role, its keys and its endpoints become in the model.

Pins the reader's rules where a faster reader could drift: the per-kind cap and the count of
what was left unread, the shared budget of the other endpoints, certificates that decode or do
not (whitespace, padding), a KeyInfo in a wrong namespace, and an entity's own signature.
"""

from __future__ import annotations

from metadata.read import MAX_PER_KIND, read_metadata
from metadata.xml import metadata_limits, parse_untrusted

MD = "urn:oasis:names:tc:SAML:2.0:metadata"
DS = "http://www.w3.org/2000/09/xmldsig#"
SAML = "urn:oasis:names:tc:SAML:2.0:assertion"


def _role(children: str, entity_extra: str = "") -> bytes:
    return (f'<EntityDescriptor xmlns="{MD}" xmlns:ds="{DS}" xmlns:saml="{SAML}" entityID="https://idp.example">'
            f'{entity_extra}<IDPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol">'
            f'{children}</IDPSSODescriptor><Organization/></EntityDescriptor>').encode()


def _read(data: bytes):  # type: ignore[no-untyped-def]
    return read_metadata(parse_untrusted(data, metadata_limits()))


def test_each_kind_is_read_up_to_its_cap_and_the_rest_is_counted() -> None:
    over = 7
    children = "".join(f'<SingleSignOnService Binding="b" Location="https://idp.example/{i}"/>'
                       for i in range(MAX_PER_KIND + over))
    children += "".join(f'<ArtifactResolutionService Binding="b" Location="a{i}" index="{i}"/>'
                        f'<ManageNameIDService Binding="b" Location="m{i}"/>' for i in range(MAX_PER_KIND // 2 + 3))
    children += "".join(f"<NameIDFormat> f{i} </NameIDFormat>" for i in range(MAX_PER_KIND + 1))
    children += '<saml:Attribute Name="mail" NameFormat="uri" FriendlyName="Mail"/>'
    document = _read(_role(children))
    role = document.entities[0].idp_roles[0]
    assert len(role.sso) == MAX_PER_KIND and role.sso[0].location == "https://idp.example/0"
    assert len(role.other_endpoints) == MAX_PER_KIND  # the other endpoint kinds share one budget
    assert [e.kind for e in role.other_endpoints[:2]] == ["ArtifactResolutionService", "ManageNameIDService"]
    assert role.nameid_formats[0] == "f0" and len(role.nameid_formats) == MAX_PER_KIND
    assert role.unread == (("md:SingleSignOnService", over), ("md:ArtifactResolutionService", 3),
                           ("md:ManageNameIDService", 3), ("md:NameIDFormat", 1))
    assert [(a.name, a.name_format, a.friendly_name) for a in role.attributes] == [("mail", "uri", "Mail")]


def test_endpoint_attributes() -> None:
    role = _read(_role('<SingleSignOnService Binding="b" Location="l" ResponseLocation="r" index="3" '
                       'isDefault=" true"/><SingleLogoutService Binding="b" Location="s" index="x" isDefault="0"/>'
                       )).entities[0].idp_roles[0]
    sso, slo = role.sso[0], role.slo[0]
    assert (sso.kind, sso.binding, sso.location, sso.response_location, sso.index, sso.is_default) == (
        "SingleSignOnService", "b", "l", "r", 3, True)
    assert (slo.kind, slo.index, slo.is_default, slo.response_location) == ("SingleLogoutService", None, False, None)
    assert sso.line == 1


def test_certificates_decode_only_when_they_are_base64() -> None:
    texts = ["QUJD", "QU\n JD", "QUI=", "ABC==", "AB=", "!!", ""]
    keys = "".join(f'<KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>{t}'
                   "</ds:X509Certificate></ds:X509Data><ds:KeyName> n </ds:KeyName></ds:KeyInfo></KeyDescriptor>"
                   for t in texts)
    keys += '<KeyDescriptor><x:KeyInfo xmlns:x="https://www.w3.org/2000/09/xmldsig#"/></KeyDescriptor>'
    role = _read(_role(keys)).entities[0].idp_roles[0]
    assert [c.der for k in role.keys for c in k.certificates] == [b"ABC", b"ABC", b"AB", None, None, None, None]
    assert [c.text for c in role.keys[1].certificates] == ["QUJD"]
    assert role.keys[0].key_names == ("n",) and role.keys[0].use == "signing"
    assert role.keys[-1].foreign_keyinfo_namespace == "https://www.w3.org/2000/09/xmldsig#"


def test_an_entity_is_signed_when_a_signature_is_its_own_child() -> None:
    assert _read(_role("", "<ds:Signature/>")).entities[0].signed
    assert not _read(_role("<ds:Signature/>")).entities[0].signed
