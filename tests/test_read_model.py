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


def test_the_model_keeps_the_lines_of_lined_tags_only() -> None:
    # validator.inspection carries the partner's line numbers over to the re-parsed signed bytes
    # for LINED_TAGS only: a line of any other element must never reach the model.
    from lxml import etree

    from metadata.read import LINED_TAGS

    children = ('<KeyDescriptor use="signing"><ds:KeyInfo><ds:X509Data><ds:X509Certificate>QUJD'
                '</ds:X509Certificate></ds:X509Data></ds:KeyInfo></KeyDescriptor>'
                '<NameIDFormat>f</NameIDFormat><SingleSignOnService Binding="b" Location="l"/>'
                '<ArtifactResolutionService Binding="b" Location="a" index="1"/><saml:Attribute Name="n"/>')
    sp = ('<SPSSODescriptor protocolSupportEnumeration="p"><AssertionConsumerService Binding="b" Location="x" '
          'index="0"/><SingleLogoutService Binding="b" Location="s"/></SPSSODescriptor>')
    data = _role(children, "<ds:Signature/>").replace(b"<Organization/>", sp.encode() + b"<Organization/>")
    data = data.replace(b"><", b">\n<")
    tree = parse_untrusted(data, metadata_limits())
    before = read_metadata(tree)
    for element in tree.getroot().iter(etree.Element):
        if element.tag not in LINED_TAGS:
            setattr(element, "sourceline", 9999)  # noqa: B010 - lxml-stubs type it read-only; it is not
    assert read_metadata(tree) == before
    for element in tree.getroot().iter(*LINED_TAGS):
        setattr(element, "sourceline", 9999)  # noqa: B010
    after = read_metadata(tree)
    assert after != before and after.entities[0].line == 9999
