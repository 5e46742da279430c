"""XML rules: is the input XML at all, and safe to read? (SECURITY.md §1)"""

from __future__ import annotations

from metadata.errors import UnsafeXML
from metadata.read import NotMetadata
from validator.findings import Finding, Severity, rule

EMPTY = rule(
    "XML001", "The input is empty", Severity.ERROR, "input",
    what="The document has no content at all (zero bytes or only whitespace).",
    why="An empty download usually means the metadata URL answered with an empty body, or the file was "
        "saved before the export finished.",
    fix="Download the metadata again from the IdP's admin console or metadata URL and check that the file "
        "starts with <md:EntityDescriptor or <EntityDescriptor.",
)
MALFORMED = rule(
    "XML002", "The input is not well-formed XML", Severity.ERROR, "input",
    what="The document does not parse as XML 1.0: a tag is not closed, a character is illegal, text was "
         "cut off, or something that is not XML was given.",
    why="No SAML software can read a document that is not XML; the portal would reject it at upload.",
    fix="Export the metadata again from the IdP instead of copying it by hand; if it was edited, fix the "
        "line and column named in the message.",
)
DOCTYPE = rule(
    "XML003", "A DOCTYPE or entity declaration is present", Severity.ERROR, "input",
    what="The document carries a DOCTYPE, with or without an internal subset of entity declarations.",
    why="SAML forbids DTDs (SAML Core §1.3, Bindings §3.4.4.1): they enable XML external entity (XXE) "
        "and entity-expansion ('billion laughs') attacks. Real IdPs never emit one.",
    fix="Remove the <!DOCTYPE …> declaration. If the IdP itself produced it, treat the file as suspect.",
)
TOO_LARGE = rule(
    "XML004", "The input exceeds the size limit", Severity.ERROR, "input",
    what="The document is larger than the byte limit for its kind (metadata: 5 MiB unless raised with "
         "--max-size; a SAML message: 192 KiB), or declares a namespace URI longer than 1,024 characters.",
    why="Limits stop memory-exhaustion attacks; partner IdP metadata is a few kilobytes. SAML's namespace URIs "
        "are under 100 characters: a long one used by many elements makes schema validation and exclusive "
        "canonicalisation (which repeats it on every element) run for minutes.",
    fix="Give the metadata of the one IdP entity rather than a whole federation feed, or raise the limit "
        "with --max-size when checking an aggregate on purpose. A namespace URI that long is never what an "
        "IdP product writes: find what produced the document.",
)
TOO_COMPLEX = rule(
    "XML005", "The document is nested too deep or has too many elements or namespaces", Severity.ERROR, "input",
    what="More than 64 levels of nesting; more elements, or more comments and processing instructions, than the "
         "limit for the document's size; more than 32 attributes or 40 namespace declarations on one element; more "
         "than 64 namespace declarations in scope at one element, or more in the whole document than one per 32 "
         "bytes.",
    why="Deep or huge trees are a denial-of-service vector and never occur in real SAML documents. Exclusive "
        "canonicalisation, which every signature check runs, pays for each namespace in scope at each element: "
        "800 declarations over 4,000 elements took 50 s. Real IdPs declare at most about 20.",
    fix="Give the document as the IdP produced it (metadata as exported, a response as received); do not wrap "
        "or generate it.",
)
ENCODING = rule(
    "XML006", "The document is not UTF-8 or UTF-16", Severity.ERROR, "input",
    what="The XML declaration or byte-order mark names an encoding other than UTF-8 or UTF-16.",
    why="Every SAML product emits UTF-8; other encodings are where parsers disagree, and disagreement "
        "between parsers is how signature checks are fooled.",
    fix="Re-export the metadata in UTF-8.",
)
HTML = rule(
    "XML007", "An HTML page was given where XML was expected", Severity.ERROR, "input",
    what="The content starts like an HTML page (<!DOCTYPE html>, <html>).",
    why="A metadata URL that needs a login, or a wrong URL, returns a web page: typically a sign-in "
        "page or an error page of the IdP's admin console.",
    fix="Use the IdP's public metadata URL (Okta: 'Identity Provider metadata' link; Entra ID: 'App "
        "Federation Metadata Url'; ADFS: /FederationMetadata/2007-06/FederationMetadata.xml) and open it "
        "in a private browser window to check that it shows XML without a login.",
)
NOT_METADATA = rule(
    "XML008", "The document is XML but not SAML metadata", Severity.ERROR, "input",
    what="The root element is not md:EntityDescriptor or md:EntitiesDescriptor in the SAML 2.0 metadata "
         "namespace (urn:oasis:names:tc:SAML:2.0:metadata).",
    why="Another XML file was given: a SAML response, WS-Federation-only metadata, an eIDAS service list, "
        "or metadata whose namespace was mistyped.",
    fix="Give the IdP's SAML 2.0 metadata document.",
)

_BY_KIND = {
    "empty": EMPTY,
    "malformed": MALFORMED,
    "doctype": DOCTYPE,
    "too-large": TOO_LARGE,
    "too-deep": TOO_COMPLEX,
    "too-many-elements": TOO_COMPLEX,
    "too-many-namespaces": TOO_COMPLEX,
    "too-many-attributes": TOO_COMPLEX,
    "encoding": ENCODING,
    "html": HTML,
}


NOT_XML_FIX = ("Give the XML document itself (for metadata: the .xml file the IdP's admin console exports, or what "
               "its metadata URL returns), not a PDF, image or Office document that shows it; from an archive, "
               "extract the .xml file first.")


def finding_for_unsafe_xml(error: UnsafeXML, source: str, *, content: str | None = None) -> Finding:
    """The finding for `error`. `content` is what the raw bytes say the input is when that is a kind
    of file that is never XML (:func:`metadata.sniff.not_xml_kind`): XML002 then names it, rather
    than the parser's first complaint ("'<' not found"). Size stays the first word: a file over
    the limit was never read."""
    if content is not None and error.kind != "too-large":
        return MALFORMED.finding(f"the input is {content}, not XML", expected="an XML document", where=source,
                                 fix=NOT_XML_FIX)
    where = f"{source}, line {error.line}" if error.line else source
    return _BY_KIND.get(error.kind, MALFORMED).finding(error.message, where=where)


def finding_for_not_metadata(error: NotMetadata, source: str) -> Finding:
    where = f"{source}, line {error.line}" if error.line else source
    return NOT_METADATA.finding(
        str(error), expected="md:EntityDescriptor or md:EntitiesDescriptor", where=where
    )

NOT_A_RESPONSE_INPUT = rule(
    "XML009", "The input holds no SAML response in a form the validator reads", Severity.ERROR, "input",
    what="A response is read as raw XML, as base64 (the SAMLResponse value), as a URL-encoded form body "
         "(SAMLResponse=…&RelayState=…) or as a SAML-tracer JSON export; the input is none of these, or the "
         "export holds no SAML response.",
    why="Nothing can be checked until the response itself is found.",
    fix="Paste the SAMLResponse value posted to the portal's ACS (SAML-tracer: the POST to the ACS URL, "
        "the SAML tab), or export the whole SAML-tracer session as JSON.",
)
BAD_BASE64 = rule(
    "XML010", "The SAMLResponse is not valid base64", Severity.ERROR, "input",
    what="The SAMLResponse value must be standard base64 of the response XML (Bindings §3.5.4).",
    why="Truncated or altered base64 — a copy cut short, a '+' turned into a space by URL decoding — "
        "cannot be decoded, so nothing can be checked.",
    fix="Copy the whole value again; when copying from a URL-encoded form, decode %2B, %2F and %3D first.",
)
