"""Does a python3-saml service provider refuse every fault of the test IdP?

Start the test IdP as the biller of a CRM record, then run this script against it:

    saml-idp serve --crm validator/demo/springfield-water.toml &
    python examples/sp_fault_suite.py http://127.0.0.1:8080 validator/demo/springfield-water.toml

For each fault of ``GET /api/v1/faults`` it arms a persona (``/api/v1/next-login``) and the fault
(``/api/v1/faults``), lets python3-saml start an SP-initiated login (HTTP-Redirect), follows the
IdP's answer to its auto-POST form, and hands the SAMLResponse to python3-saml exactly as the
SP's ACS would, with the AuthnRequest's ID. One line per fault: refused (with python3-saml's
reason) or ACCEPTED. The claim faults (a claim in the wrong case, an unknown login type …) are
the portal's business rules, which python3-saml does not know: an SP must check those itself.
"""

from __future__ import annotations

import argparse
import html
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from onelogin.saml2.authn_request import OneLogin_Saml2_Authn_Request
from onelogin.saml2.idp_metadata_parser import OneLogin_Saml2_IdPMetadataParser
from onelogin.saml2.response import OneLogin_Saml2_Response
from onelogin.saml2.settings import OneLogin_Saml2_Settings
from onelogin.saml2.utils import OneLogin_Saml2_Utils

from metadata.crm import CRMRecord, load_crm


@dataclass(frozen=True)
class Outcome:
    fault: str
    code: str
    refused: bool | None
    """None: the fault does not apply to this SP (the IdP said why)."""
    reason: str


class NotApplicable(Exception):
    """The IdP refused to arm the fault for this SP."""


def sp_settings(idp_url: str, record: CRMRecord) -> OneLogin_Saml2_Settings:
    """python3-saml as the portal: the record's SP, the IdP from its published metadata."""
    idp = OneLogin_Saml2_IdPMetadataParser.parse(requests.get(f"{idp_url}/metadata", timeout=10).text)
    return OneLogin_Saml2_Settings({
        "strict": True,
        "sp": {"entityId": record.sp.entity_id,
               "assertionConsumerService": {"url": record.sp.acs_url,
                                            "binding": "urn:oasis:names:tc:SAML:2.0:bindings:HTTP-POST"},
               "NameIDFormat": record.idp.nameid_format or "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"},
        "idp": idp["idp"],
        "security": {"wantAssertionsSigned": True, "rejectDeprecatedAlgorithm": True},
    }, sp_validation_only=True)


def login(session: requests.Session, idp_url: str, settings: OneLogin_Saml2_Settings) -> tuple[str, str | None]:
    """One SP-initiated login: the AuthnRequest's ID, and the SAMLResponse the IdP posted (None: none)."""
    authn = OneLogin_Saml2_Authn_Request(settings)
    url = OneLogin_Saml2_Utils.redirect(f"{idp_url}/sso", {"SAMLRequest": authn.get_request()})
    page = session.get(url, timeout=10)
    found = re.search(r'name="SAMLResponse" value="([^"]*)"', page.text)
    return authn.get_id(), html.unescape(found.group(1)) if found else None


def acs(settings: OneLogin_Saml2_Settings, record: CRMRecord, saml_response: str, request_id: str
        ) -> tuple[bool, str]:
    """What the SP's ACS makes of the response: (refused, python3-saml's reason or whom it signed in)."""
    parts = urlsplit(record.sp.acs_url)
    request_data = {"https": "on" if parts.scheme == "https" else "off", "http_host": parts.netloc,
                    "script_name": parts.path}
    response = OneLogin_Saml2_Response(settings, saml_response)
    try:
        if not response.is_valid(request_data, request_id, raise_exceptions=True):
            return True, response.get_error() or "refused"
        # An ACS reads the user next; python3-saml refuses some responses only then.
        claims = ", ".join(f"{k}={'|'.join(v)}" for k, v in response.get_attributes().items())
        return False, f"as {response.get_nameid()!r}; {claims}"
    except Exception as exc:  # python3-saml raises its own and lxml's errors alike
        return True, str(exc) or type(exc).__name__


def run(idp_url: str, record: CRMRecord, persona: str | None = None) -> list[Outcome]:
    """The baseline (no fault) and then every fault of the catalogue, in catalogue order."""
    settings = sp_settings(idp_url, record)
    catalogue: list[dict[str, Any]] = requests.get(f"{idp_url}/api/v1/faults", timeout=10).json()
    chosen = persona or requests.get(f"{idp_url}/api/v1/personas", timeout=10).json()[0]["id"]
    outcomes = []
    for fault in [{"id": "(none)", "code": "-"}, *catalogue]:
        session = requests.Session()  # a fresh browser: no IdP session, no earlier response
        if fault["id"] == "replay":  # the SP has consumed one response; the IdP sends it again
            _, first = arm_and_login(session, idp_url, settings, record, chosen, None)
        try:
            request_id, saml_response = arm_and_login(session, idp_url, settings, record, chosen,
                                                      None if fault["id"] == "(none)" else fault["id"])
        except NotApplicable as exc:
            outcomes.append(Outcome(fault["id"], fault["code"], None, str(exc)))
            continue
        if fault["id"] == "replay" and saml_response != first:
            raise RuntimeError("the IdP did not replay the earlier response")
        if saml_response is None:
            outcomes.append(Outcome(fault["id"], fault["code"], True, "the IdP refused to send it"))
            continue
        outcomes.append(Outcome(fault["id"], fault["code"], *acs(settings, record, saml_response, request_id)))
    return outcomes


def arm_and_login(session: requests.Session, idp_url: str, settings: OneLogin_Saml2_Settings, record: CRMRecord,
                  persona: str, fault: str | None) -> tuple[str, str | None]:
    sp = record.sp.entity_id
    session.post(f"{idp_url}/api/v1/next-login", json={"persona": persona, "sp": sp}, timeout=10).raise_for_status()
    if fault is not None:
        armed = session.post(f"{idp_url}/api/v1/faults", json={"fault": fault, "sp": sp}, timeout=10)
        if armed.status_code == 400:
            raise NotApplicable(armed.json()["detail"])
        armed.raise_for_status()
    return login(session, idp_url, settings)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("idp_url", help="the test IdP, e.g. http://127.0.0.1:8080")
    parser.add_argument("crm", help="the CRM record the IdP was started with (saml-idp serve --crm)")
    parser.add_argument("--persona", help="default: the IdP's first persona")
    args = parser.parse_args()
    outcomes = run(args.idp_url.rstrip("/"), load_crm(Path(args.crm)), args.persona)
    for o in outcomes:
        verdict = {True: "refused ", False: "ACCEPTED", None: "n/a     "}[o.refused]
        print(f"{o.fault:<36} {o.code:<7} {verdict} {o.reason[:90]}")
    baseline, faults = outcomes[0], outcomes[1:]
    accepted = [o.fault for o in faults if o.refused is False]
    applied = [o for o in faults if o.refused is not None]
    print(f"\n{len(applied) - len(accepted)} of {len(applied)} faults refused"
          + (f"; accepted: {', '.join(accepted)}" if accepted else ""))
    return 0 if baseline.refused is False else 1


if __name__ == "__main__":
    sys.exit(main())
