"""NET rules: fetching a partner's metadata URL.

:func:`metadata.fetch.fetch` refuses or fails with a :class:`FetchError` whose ``kind`` names
what went wrong; each kind has one rule here, and :func:`finding_for_fetch_error` turns the
error into that rule's finding. A fetch that succeeded can still have served the wrong kind
of document: :func:`content_type_findings` looks at what the server said it sent.
"""

from __future__ import annotations

from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from metadata.xml import looks_like_html, visible
from validator.findings import Finding, Severity, rule

if TYPE_CHECKING:  # urllib3 is imported only when a URL is actually fetched
    from metadata.fetch import FetchError, FetchResult

SCHEME = rule(
    "NET001", "Metadata URL is not https", Severity.ERROR, "fetch",
    what="The metadata URL, and every URL it redirects to, must start with https://.",
    why="""Metadata carries the certificates that decide whose signatures we accept. Fetched over
    plain http, file:, ftp: or any other scheme, anyone on the path could swap in their own key and
    sign in as any user.""",
    fix="""Give the https:// address of the metadata. Identity providers publish metadata over https;
    if a redirect leads to http://, fix the server's redirect. Only for a test IdP: on the command
    line, --allow-http (saml-validate metadata, response, discover and sweep) accepts its plain
    http:// URL. An IdP on this machine (localhost, 127.0.0.1) is still refused as a loopback
    address (NET004): save its metadata to a file (saml-idp metadata > idp-metadata.xml) and check
    that file, or use the web app in local development mode (saml-validate serve --dev).""",
    example="http://idp.example.com/metadata",
)
USERINFO = rule(
    "NET002", "Metadata URL contains a user name or password", Severity.ERROR, "fetch",
    what="The metadata URL must not carry credentials before the host (https://user:secret@host/...).",
    why="""Metadata is public by design, so credentials in its URL are either a mistake that leaks a
    password into tickets and reports, or a trick to disguise the real host
    (https://idp.example.com@evil.example/).""",
    fix="Remove the user name and password; use the identity provider's public metadata URL.",
    example="https://admin:secret@idp.example.com/metadata",
)
DNS = rule(
    "NET003", "Metadata host name does not resolve", Severity.ERROR, "fetch",
    what="The host name in the metadata URL must resolve to an IP address.",
    why="""If the name does not resolve, nothing can fetch the metadata: usually a typo, a domain
    that is only visible inside the partner's network, or a tenant that was renamed or removed.""",
    fix="""Check the spelling of the host name with the partner, and that the name is published in
    public DNS, not only on their internal network.""",
)
FORBIDDEN_ADDRESS = rule(
    "NET004", "Metadata URL points at a private or internal address", Severity.ERROR, "fetch",
    what="""The metadata host must resolve only to publicly routable addresses: not loopback, private
    (10/8, 172.16/12, 192.168/16), link-local (169.254/16), carrier-grade NAT (100.64/10), unique
    local IPv6 (fc00::/7), multicast or reserved ranges. Redirect targets are checked the same way.""",
    why="""A URL that leads inside a network would make this tool read internal services (a cloud
    metadata service on 169.254.169.254, an admin page on localhost) and show what it found: a
    server-side request forgery. Such a URL also cannot be reached by the service provider in
    production.""",
    fix="""Use the identity provider's public metadata URL. If the metadata is only reachable inside
    the partner's network, ask them to export the metadata XML file and upload that instead.""",
    example="https://169.254.169.254/latest/meta-data/",
)
CONNECT = rule(
    "NET005", "Could not connect to the metadata server", Severity.ERROR, "fetch",
    what="A connection to the metadata server must open and stay open until the response is complete.",
    why="""A refused, unreachable or broken connection means the metadata cannot be read now, and
    the service provider's automatic metadata refresh will fail the same way.""",
    fix="""Check that the URL's host and port are right and that the server accepts connections from
    the internet (no firewall or IP allow-list in front of it), then try again.""",
)
TIMEOUT = rule(
    "NET006", "Metadata server too slow", Severity.ERROR, "fetch",
    what="""The metadata server must accept a connection within 5 seconds and deliver the whole
    document, redirects included, within 15 seconds (the default limits).""",
    why="""A server this slow makes every metadata refresh hang, and a server that trickles data can
    tie up the fetcher indefinitely; the fetch is stopped at the limit.""",
    fix="""Try again later; if it persists, ask the partner to check the server or to serve the
    metadata from a faster location (their identity provider's standard metadata URL).""",
)
TLS = rule(
    "NET007", "TLS connection to the metadata server failed", Severity.ERROR, "fetch",
    what="""The metadata server must present a certificate that is valid now, chains to a publicly
    trusted certificate authority and names the URL's host, over TLS 1.2 or later.""",
    why="""Without a verified TLS connection, anyone between us and the server could replace the
    metadata, and with it the signing certificate we would trust.""",
    fix="""Ask the partner to install a certificate from a public certificate authority that covers
    the host name in the URL, with its full chain, and to enable TLS 1.2 or later.""",
)
STATUS = rule(
    "NET008", "Metadata URL answered with an error status", Severity.ERROR, "fetch",
    what="The metadata URL must answer HTTP 200 with the metadata document.",
    why="""Any other status (404 Not Found, 401/403 when the URL needs a login, 500 for a server
    fault, a redirect without a target) means there is no metadata to check. An HTML page in its
    place is usually a login or error page.""",
    fix="""Open the URL in a private browser window: it must show the metadata XML without a login.
    Copy the metadata URL again from the identity provider's admin console (for Okta, the
    "Identity Provider metadata" link of the app; for Entra ID, the "App Federation Metadata Url").""",
)
REDIRECTS = rule(
    "NET009", "Too many redirects", Severity.ERROR, "fetch",
    what="The metadata URL may redirect at most 3 times (the default limit) before the metadata is served.",
    why="""Long redirect chains are slow, fragile and often a loop (a login page that redirects
    back); every extra hop is another server trusted to hand us the right document.""",
    fix="""Use the final URL of the chain directly, or ask the partner to fix the redirect loop. The
    finding lists the chain that was followed.""",
)
TOO_LARGE = rule(
    "NET010", "Metadata document too large", Severity.ERROR, "fetch",
    what="The metadata document must not exceed the fetch's size limit, 5 MiB by default.",
    why="""A single identity provider's metadata is a few kilobytes. A much larger answer is a
    federation aggregate, a wrong file, or an attempt to exhaust memory; reading stops at the
    limit.""",
    fix="""Use the metadata URL of this one identity provider, not a federation aggregate. If the
    aggregate is intended, raise the limit deliberately for this fetch.""",
)
BAD_URL = rule(
    "NET011", "Metadata URL is not a valid URL", Severity.ERROR, "fetch",
    what="The metadata URL must be a well-formed absolute URL with a host name and no spaces.",
    why="A malformed URL cannot be fetched, and the service provider's own configuration would fail too.",
    fix="""Copy the URL again from the identity provider's admin console; look for spaces, line
    breaks, a missing host or a mistyped port.""",
    example="https://idp.example.com:port/metadata",
)
NOT_XML = rule(
    "NET012", "Metadata served with a content type that is not XML", Severity.WARNING, "fetch",
    what="""The metadata should be served as XML: application/samlmetadata+xml, application/xml or
    text/xml (text/plain and application/octet-stream are tolerated).""",
    why="""Another type, text/html above all, usually means the URL returned a web page (a login,
    a portal, an error) rather than metadata; some service providers refuse metadata with a wrong
    type even when the XML is fine.""",
    fix="""Check that the URL is the metadata URL and not the portal's address; ask the partner to
    serve it as application/samlmetadata+xml.""",
)

_RULES = {
    "scheme": SCHEME,
    "userinfo": USERINFO,
    "dns": DNS,
    "forbidden-address": FORBIDDEN_ADDRESS,
    "connect": CONNECT,
    "timeout": TIMEOUT,
    "tls": TLS,
    "status": STATUS,
    "redirects": REDIRECTS,
    "too-large": TOO_LARGE,
    "bad-url": BAD_URL,
}

_TOLERATED_TYPES = {"text/plain", "application/octet-stream"}


def finding_for_fetch_error(err: FetchError) -> Finding:
    """The NET finding for a refused or failed fetch; `where` is the URL that failed."""
    found = err.diagnostics
    expected: str | None = None
    actual: str | None = None
    if err.kind == "scheme":
        expected, actual = "https", urlsplit(err.url).scheme or "(no scheme)"
    elif err.kind == "forbidden-address":
        expected, actual = "a publicly routable address", str(found.get("address", ""))
    elif err.kind == "status":
        expected = "HTTP 200"
        actual = f"HTTP {found.get('status', '?')}"
        if "content_type" in found:
            actual += f", {found['content_type']}"
    elif err.kind == "redirects":
        chain = found.get("redirects", [])
        if isinstance(chain, list):
            actual = " → ".join([str(found.get("requested_url", "")), *chain])
    return _RULES[err.kind].finding(err.message, expected=expected, actual=actual, where=err.url)


def content_type_findings(result: FetchResult) -> list[Finding]:
    """NET012 when a successful response says it is neither XML nor a tolerated generic type."""
    if result.content_type is None or not 200 <= result.status < 300:
        return []
    media_type = result.content_type.partition(";")[0].strip().lower()
    if media_type.endswith(("/xml", "+xml")) or media_type in _TOLERATED_TYPES:
        return []
    message = f"{result.final_url} was served as {visible(result.content_type)!r}, not as XML"
    if looks_like_html(result.body):
        head = " ".join(result.body[:120].decode("utf-8", "replace").split())
        message += f"; the body is an HTML page: \"{visible(head)}…\""
    expected = "application/samlmetadata+xml"
    return [NOT_XML.finding(message, expected=expected, actual=result.content_type, where=result.final_url)]
