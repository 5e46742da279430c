"""The fault catalogue: named ways a response can be wrong, sent on demand, so that a service
provider proves it refuses each one.

Every :class:`Fault` states what it breaks, what a correct SP must do, and the validator rule
that detects it (a test sends each fault through the validator and expects that code). A fault
acts at one or more of three points:

- ``plan``: what is built (times, audience, claims, the signing key, the encryption key);
- ``edit``: the response tree before anything is signed, so the signatures cover the change;
- ``after``: the tree after signing (tampering and wrapping), so they do not.

``replay`` is the one fault that builds nothing: the IdP sends its previous response again
(:mod:`idp.flow` keeps it per IdP session and SP).

Size: the catalogue is one table that is read whole, each entry beside the few small tree edits
it makes; split in two, every fault would be read across two files. Its layer sits right above
:mod:`idp.assertion`: the settings check persona faults against it, so it imports no settings,
vendor profile or persona cast.
"""

from __future__ import annotations

import copy
import difflib
import functools
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Literal

from lxml import etree

from metadata.crm import CRMRecord
from metadata.keys import KeyPair, generate_keypair
from metadata.saml import AUTHN_FAILED, PERSISTENT, RESPONDER, SAML, SAMLP, UNSPECIFIED
from metadata.signing import ECDSA_SHA1, ECDSA_SHA256, RSA_SHA1, SHA1, sign

from .assertion import Claim, ResponseSpec, SigningKey, build_response
from .errors import FaultError

_A = f"{{{SAML}}}"
_P = f"{{{SAMLP}}}"
OTHER_ACS = "https://other-sp.example/saml/acs"
HOLDER_OF_KEY = "urn:oasis:names:tc:SAML:2.0:cm:holder-of-key"

Need = Literal["assertion", "signature", "plaintext", "encryption-key", "account-claim", "login-type-claim"]
Effect = Literal["assertion", "signature", "plaintext"]


@dataclass(frozen=True)
class ClaimRoles:
    """Which claims the claim faults change: the account number and the login type."""

    account: str | None = None
    login_type: str | None = None
    login_type_ids: tuple[str, ...] = ()
    """The login type IDs the biller holds (from the CRM record), when known."""
    unused_login_type: str = "999"
    """A login type ID the biller does not hold: the record's smallest missing one."""


_ACCOUNT = re.compile(r"account|invoice|policy|customer.?(number|no|id)", re.IGNORECASE)
_LOGIN_TYPE = re.compile(r"login.?type|role", re.IGNORECASE)


def claim_roles(claims: Iterable[str], crm: CRMRecord | None = None) -> ClaimRoles:
    """Which of a persona's claims are the account number and the login type.

    With a CRM record: its ``login_type`` claim, and the first required claim named like an
    account, invoice or policy number. Without one, the first claim named so.
    """
    names = list(claims)
    if crm is not None:
        login_type = crm.login_type_claim.name if crm.login_type_claim else None
        required = [c.name for c in crm.required_claims if c.name != login_type]
        account = next((n for n in required if _ACCOUNT.search(n) and n in names), None)
        return ClaimRoles(account=account, login_type=login_type if login_type in names else None,
                          login_type_ids=tuple(str(i) for i in crm.login_type_ids),
                          unused_login_type=str(crm.unused_login_type_id))
    return ClaimRoles(account=next((n for n in names if _ACCOUNT.search(n)), None),
                      login_type=next((n for n in names if _LOGIN_TYPE.search(n)), None))


@dataclass(frozen=True)
class Plan:
    """Everything one response is built from; the ``plan`` step of a fault returns a changed copy."""

    spec: ResponseSpec
    now: datetime
    key: SigningKey
    new_id: Callable[[], str]
    uri_form: Callable[[str], str]
    """The IdP product's URI form of a claim name (its vendor profile's)."""
    encrypt_for: bytes | None = None
    roles: ClaimRoles = ClaimRoles()


@dataclass(frozen=True)
class Situation:
    """What decides whether a fault can apply: the SP's options and the persona's claims."""

    signed: bool
    encrypted: bool
    sp_has_encryption_key: bool
    roles: ClaimRoles | None
    """None: no persona chosen yet, so the claim faults are not judged."""


@dataclass(frozen=True)
class Fault:
    id: str
    group: str
    title: str
    """One line: what is wrong with the response."""
    sp_must: str
    """What a correct service provider does with it."""
    code: str
    """The validator rule that reports it."""
    plan: Callable[[Plan], Plan] | None = None
    edit: Callable[[etree._Element, Plan], None] | None = None
    after: Callable[[etree._Element, Plan], etree._Element] | None = None
    needs: frozenset[Need] = field(default_factory=frozenset)
    removes: frozenset[Effect] = field(default_factory=frozenset)
    """What this fault takes away that other faults may need (a status fault: the assertion)."""

    def as_dict(self) -> dict[str, object]:
        """The fault as ``saml-idp faults --format json`` and ``GET /api/v1/faults`` list it."""
        return {"id": self.id, "group": self.group, "title": self.title, "sp_must": self.sp_must, "code": self.code,
                "needs": sorted(self.needs)}


# ---- small tree edits -------------------------------------------------------------------------

def _assertion(response: etree._Element) -> etree._Element:
    found = response.find(f"{_A}Assertion")
    if found is None:  # the needs of the catalogue keep this from happening
        raise FaultError("the fault needs a plaintext assertion, and this response has none")
    return found


def _path(response: etree._Element, path: str) -> etree._Element:
    found = _assertion(response).find(path.replace("saml:", _A))
    if found is None:
        raise FaultError(f"the fault needs {path}, and this response's assertion has none")
    return found


def _set(path: str, attribute: str, value: Callable[[Plan], str]) -> Callable[[etree._Element, Plan], None]:
    def edit(response: etree._Element, plan: Plan) -> None:
        (response if path == "samlp:Response" else _path(response, path)).set(attribute, value(plan))
    return edit


def _remove(path: str) -> Callable[[etree._Element, Plan], None]:
    def edit(response: etree._Element, plan: Plan) -> None:
        element = _path(response, path)
        parent = element.getparent()
        assert parent is not None
        parent.remove(element)
    return edit


def _xs(moment: datetime) -> str:
    return f"{moment.astimezone(UTC):%Y-%m-%dT%H:%M:%SZ}"


def _spec(**changes: object) -> Callable[[Plan], Plan]:
    return lambda plan: replace(plan, spec=replace(plan.spec, **changes))  # type: ignore[arg-type]


def _claims(change: Callable[[Plan, Claim], Sequence[Claim]], role: Literal["account", "login_type"]
            ) -> Callable[[Plan], Plan]:
    def step(plan: Plan) -> Plan:
        wanted = getattr(plan.roles, role)
        claims = tuple(c for claim in plan.spec.claims
                       for c in (change(plan, claim) if claim.name == wanted else (claim,)))
        return replace(plan, spec=replace(plan.spec, claims=claims))
    return step


def _trailing_slash(value: str) -> str:
    return value[:-1] if value.endswith("/") else value + "/"


def _other_format(plan: Plan) -> str:
    return PERSISTENT if plan.spec.nameid_format == UNSPECIFIED else UNSPECIFIED


def _joined(plan: Plan, claim: Claim) -> str:
    """Two login type IDs in one value: two the biller holds when it holds two, so that only the
    joining is wrong."""
    held = plan.roles.login_type_ids
    return ",".join(held[:2]) if len(held) >= 2 else ",".join((*claim.values[:1], plan.roles.unused_login_type))


def wrong_cases(name: str) -> list[str]:
    """`name` with the case of its first letter swapped, then all lower case: those that differ
    (also the names of :mod:`idp.cast`'s near-miss persona)."""
    at = next((i for i, ch in enumerate(name) if ch.isalpha()), None)
    if at is None:
        return []
    candidates = (name[:at] + name[at].swapcase() + name[at + 1:], name.lower())
    return [c for c in dict.fromkeys(candidates) if c != name]


def _wrong_case(name: str) -> str:
    return (wrong_cases(name) or [name.swapcase()])[0]


# ---- keys that are not the IdP's ---------------------------------------------------------------

@functools.cache
def stranger() -> KeyPair:
    """A key the SP has never seen (made once per process)."""
    return generate_keypair("Not the IdP's key", now=datetime.now(UTC))


@dataclass(frozen=True)
class _Key:
    key_pem: bytes
    cert_pem: bytes


# ---- wrapping and tampering, after signing ---------------------------------------------------

def _forged(signed: etree._Element, plan: Plan, *, same_id: bool) -> etree._Element:
    """An unsigned copy of the signed assertion, for an administrator, with a new ID or the same one."""
    forged = copy.deepcopy(signed)
    for signature in forged.findall("{http://www.w3.org/2000/09/xmldsig#}Signature"):
        forged.remove(signature)
    if not same_id:
        forged.set("ID", plan.new_id())
    nameid = forged.find(f"{_A}Subject/{_A}NameID")
    assert nameid is not None
    nameid.text = "admin@example.com"
    return forged


def _tamper(response: etree._Element, plan: Plan) -> etree._Element:
    _path(response, "saml:Subject/saml:NameID").text = "admin@example.com"
    return response


def _forged_first(response: etree._Element, plan: Plan) -> etree._Element:
    signed = _assertion(response)
    signed.addprevious(_forged(signed, plan, same_id=False))
    return response


def _in_extensions(response: etree._Element, plan: Plan) -> etree._Element:
    signed = _assertion(response)
    signed.addprevious(_forged(signed, plan, same_id=True))
    extensions = etree.Element(f"{_P}Extensions")
    extensions.append(signed)
    # Core §3.2.2: Extensions comes after Issuer and Signature, before Status.
    status = response.find(f"{_P}Status")
    assert status is not None
    status.addprevious(extensions)
    return response


def _in_advice(response: etree._Element, plan: Plan) -> etree._Element:
    signed = _assertion(response)
    forged = _forged(signed, plan, same_id=False)
    response.replace(signed, forged)
    advice = etree.Element(f"{_A}Advice")
    advice.append(signed)
    conditions = forged.find(f"{_A}Conditions")
    assert conditions is not None
    conditions.addnext(advice)  # Core §2.3.3: Advice follows Conditions
    return response


def _second_assertion(response: etree._Element, plan: Plan) -> None:
    # Signed by the IdP itself: only the rule "exactly one assertion" refuses it.
    first = _assertion(response)
    second = _forged(first, plan, same_id=False)
    sign(second, plan.key.key_pem, plan.key.cert_pem, signature_method=plan.spec.signature_method,
         digest_method=plan.spec.digest_method, after=f"{_A}Issuer")
    first.addnext(second)


def _comment_in_nameid(response: etree._Element, plan: Plan) -> None:
    nameid = _path(response, "saml:Subject/saml:NameID")
    comment = etree.Comment("")
    comment.tail = ".evil.test"  # the IdP signs 'alice@example.com.evil.test'; a naive SP reads 'alice@example.com'
    nameid.append(comment)


def _future_issue_instants(response: etree._Element, plan: Plan) -> None:
    for element in (response, response.find(f"{_A}Assertion")):
        if element is not None:
            element.set("IssueInstant", _xs(plan.now + timedelta(minutes=10)))


def _other_response_issuer(response: etree._Element, plan: Plan) -> None:
    issuer = response.find(f"{_A}Issuer")
    if issuer is not None:
        issuer.text = "https://idp.other.example/"


def _future_conditions(response: etree._Element, plan: Plan) -> None:
    conditions = _path(response, "saml:Conditions")
    conditions.set("NotBefore", _xs(plan.now + timedelta(minutes=10)))
    conditions.set("NotOnOrAfter", _xs(plan.now + timedelta(minutes=10, seconds=plan.spec.lifetime_seconds)))


def _sha1_method(plan: Plan) -> Plan:
    method = ECDSA_SHA1 if plan.spec.signature_method == ECDSA_SHA256 else RSA_SHA1
    return replace(plan, spec=replace(plan.spec, signature_method=method))


def _fault(id: str, group: str, title: str, sp_must: str, code: str, *, needs: set[Need] | None = None,
           plan: Callable[[Plan], Plan] | None = None, edit: Callable[[etree._Element, Plan], None] | None = None,
           after: Callable[[etree._Element, Plan], etree._Element] | None = None, response_level: bool = False,
           removes: set[Effect] | None = None) -> Fault:
    """A catalogue entry; every fault needs the assertion unless it changes only the Response."""
    wanted: set[Need] = set(needs or ())
    if not response_level:
        wanted.add("assertion")
    return Fault(id, group, title, sp_must, code, plan, edit, after, frozenset(wanted), frozenset(removes or ()))


_REFUSE = "Refuse the response"
CATALOGUE: dict[str, Fault] = {f.id: f for f in (
    # -- time ------------------------------------------------------------------------------------
    _fault("expired", "time", "The assertion expired ten minutes ago", f"{_REFUSE}: NotOnOrAfter has passed",
           "RSP009", plan=lambda p: replace(p, now=p.now - timedelta(seconds=p.spec.lifetime_seconds + 600))),
    _fault("not-yet-valid", "time", "The assertion becomes valid in ten minutes",
           f"{_REFUSE}: NotBefore lies beyond its clock skew", "RSP008",
           edit=_future_conditions),
    _fault("issue-instant-skewed", "time", "IssueInstant lies ten minutes in the future; the validity window is "
           "correct", f"{_REFUSE}: a future IssueInstant means a wrong clock or a forged message", "RSP011",
           edit=_future_issue_instants),
    _fault("lifetime-too-long", "time", "The assertion stays valid for seven days",
           f"{_REFUSE} (or cap it): a bearer token valid for days stays usable when stolen", "RSP024",
           plan=_spec(lifetime_seconds=7 * 86400)),
    _fault("confirmation-expired", "time", "The bearer confirmation expired ten minutes ago; Conditions are valid",
           f"{_REFUSE}: SubjectConfirmationData/@NotOnOrAfter has passed", "RSP010",
           edit=_set("saml:Subject/saml:SubjectConfirmation/saml:SubjectConfirmationData", "NotOnOrAfter",
                     lambda p: _xs(p.now - timedelta(minutes=10)))),
    # -- addressing --------------------------------------------------------------------------------
    _fault("wrong-audience", "addressing", "The Audience is the SP's entity ID with a trailing slash added or "
           "removed", f"{_REFUSE}: compare the Audience exactly", "RSP013",
           plan=lambda p: replace(p, spec=replace(p.spec, audience=_trailing_slash(p.spec.audience)))),
    _fault("no-audience-restriction", "addressing", "The Conditions hold no AudienceRestriction",
           f"{_REFUSE}: an assertion without an audience is valid at every SP", "RSP012",
           edit=_remove("saml:Conditions/saml:AudienceRestriction")),
    _fault("wrong-recipient", "addressing", "The bearer Recipient is another SP's ACS URL",
           f"{_REFUSE}: the Recipient must be this ACS", "RSP015",
           edit=_set("saml:Subject/saml:SubjectConfirmation/saml:SubjectConfirmationData", "Recipient",
                     lambda p: OTHER_ACS)),
    _fault("wrong-destination", "addressing", "The Response's Destination is another SP's ACS URL",
           f"{_REFUSE}: the Destination must be this ACS", "RSP016",
           response_level=True, edit=_set("samlp:Response", "Destination", lambda p: OTHER_ACS)),
    _fault("wrong-in-response-to", "addressing", "InResponseTo names a request the SP never sent",
           f"{_REFUSE}: InResponseTo must be an outstanding request of this browser session", "RSP017",
           response_level=True, plan=lambda p: replace(p, spec=replace(p.spec, in_response_to=p.new_id()))),
    _fault("missing-in-response-to", "addressing", "No InResponseTo: the response looks IdP-initiated",
           f"{_REFUSE}: the portal supports the SP-initiated flow only", "RSP018", response_level=True,
           plan=_spec(in_response_to=None)),
    # -- issuer and status -------------------------------------------------------------------------
    _fault("wrong-issuer", "issuer", "The Issuer is the IdP's entity ID with a trailing slash added or removed",
           f"{_REFUSE}: compare the Issuer exactly with the IdP's entity ID", "RSP003",
           response_level=True, plan=lambda p: replace(p, spec=replace(p.spec, issuer=_trailing_slash(p.spec.issuer)))),
    _fault("issuers-differ", "issuer", "The Response's Issuer names another IdP; the assertion's is right",
           f"{_REFUSE}: both name the IdP", "RSP004",
           edit=_other_response_issuer),
    _fault("status-responder", "status", "Status Responder, no assertion",
           "Show an error, sign nobody in", "RSP001", response_level=True, removes={"assertion"},
           plan=_spec(status=(RESPONDER, None),
                                                                status_message="The IdP could not sign you in")),
    _fault("status-authn-failed", "status", "Status Responder / AuthnFailed, no assertion",
           "Show an error, sign nobody in", "RSP001", response_level=True, removes={"assertion"},
           plan=_spec(status=(RESPONDER, AUTHN_FAILED),
                                                                status_message="Wrong password")),
    # -- signature ---------------------------------------------------------------------------------
    _fault("unsigned", "signature", "Neither the Response nor the assertion is signed",
           f"{_REFUSE}: anyone can write an unsigned response", "SIG021", response_level=True,
           removes={"signature"}, plan=_spec(sign="none")),
    _fault("signed-by-unknown-key", "signature", "Signed by a key that is not in the IdP's metadata; KeyInfo "
           "carries the metadata's certificate", f"{_REFUSE}: verify with the metadata's key, never trust KeyInfo",
           "SIG022", needs={"signature"}, response_level=True,
           plan=lambda p: replace(p, key=_Key(stranger().key_pem, p.key.cert_pem))),
    _fault("keyinfo-foreign-certificate", "signature", "Signed by an unknown key whose own certificate is in "
           "KeyInfo", f"{_REFUSE}: a certificate in KeyInfo is no reason to trust a key", "SIG022",
           needs={"signature"}, response_level=True, plan=lambda p: replace(p, key=stranger())),
    _fault("tampered-after-signing", "signature", "The NameID was changed to admin@example.com after signing",
           f"{_REFUSE}: the signature no longer verifies", "SIG022", needs={"signature", "plaintext"},
           after=_tamper),
    _fault("rsa-sha1", "signature", "Signed with RSA-SHA1 (ECDSA-SHA1 with an EC key)",
           "Refuse SHA-1 signatures, or at least warn", "SIG024", needs={"signature"}, response_level=True,
           plan=_sha1_method),
    _fault("sha1-digest", "signature", "The signature's digest is SHA-1", "Refuse SHA-1 digests, or at least warn",
           "SIG024", needs={"signature"}, response_level=True, plan=_spec(digest_method=SHA1)),
    # -- wrapping --------------------------------------------------------------------------------
    _fault("xsw-forged-assertion-first", "wrapping", "An unsigned forged assertion for admin comes before the "
           "signed one", f"{_REFUSE}: exactly one assertion, and read claims only from what was signed", "SIG020",
           needs={"signature", "plaintext"}, after=_forged_first),
    _fault("xsw-signed-assertion-in-extensions", "wrapping", "The signed assertion is moved into "
           "samlp:Extensions; a forged one with the same ID takes its place", f"{_REFUSE}: IDs must be unique",
           "SIG020", needs={"signature", "plaintext"}, after=_in_extensions),
    _fault("xsw-signed-assertion-in-advice", "wrapping", "A forged assertion wraps the signed one in its "
           "saml:Advice", f"{_REFUSE}: one assertion in the whole document", "SIG020",
           needs={"signature", "plaintext"}, after=_in_advice),
    _fault("two-assertions", "wrapping", "Two assertions, both signed by the IdP, for different users",
           f"{_REFUSE}: the Web SSO profile allows one assertion per response here", "SIG020",
           needs={"signature", "plaintext"}, edit=_second_assertion),
    _fault("comment-in-nameid", "wrapping", "A comment splits the signed NameID: 'alice@example.com<!---->"
           ".evil.test'", "Read the whole text (the user is '…evil.test'), or refuse", "RSP025",
           edit=_comment_in_nameid),
    _fault("replay", "wrapping", "The previous response to this SP for this persona, sent again unchanged (its "
           "InResponseTo names the earlier request)", f"{_REFUSE}: the assertion ID was already used", "RSP023",
           response_level=True),
    # -- subject -----------------------------------------------------------------------------------
    _fault("nameid-format-mismatch", "subject", "The NameID format is not the one requested (unspecified, or "
           "persistent when unspecified was asked)", f"{_REFUSE}: the NameID format must be the one configured",
           "RSP022", plan=lambda p: replace(p, spec=replace(p.spec, nameid_format=_other_format(p)))),
    _fault("empty-nameid", "subject", "The NameID is empty", f"{_REFUSE}: there is nobody to sign in", "RSP020",
           plan=_spec(nameid="")),
    _fault("no-bearer-confirmation", "subject", "The SubjectConfirmation is holder-of-key, not bearer",
           f"{_REFUSE}: browser SSO needs bearer confirmation", "RSP014",
           edit=_set("saml:Subject/saml:SubjectConfirmation", "Method", lambda p: HOLDER_OF_KEY)),
    _fault("no-authn-statement", "subject", "The assertion has no AuthnStatement",
           f"{_REFUSE}: the Web SSO profile requires one", "RSP019", edit=_remove("saml:AuthnStatement")),
    # -- claims ------------------------------------------------------------------------------------
    _fault("missing-required-claim", "claims", "The account number claim is left out",
           "Refuse the sign-in with a clear message", "CLM001", needs={"account-claim"},
           plan=_claims(lambda p, c: (), "account")),
    _fault("claim-wrong-case", "claims", "The account number claim's name is sent in the wrong case",
           "Match claim names exactly; refuse", "CLM001", needs={"account-claim"},
           plan=_claims(lambda p, c: (replace(c, name=_wrong_case(c.name)),), "account")),
    _fault("claim-vendor-uri", "claims", "The account number claim's name is sent in the IdP product's URI form",
           "Match claim names exactly; refuse", "CLM001", needs={"account-claim"},
           plan=_claims(lambda p, c: (replace(c, name=p.uri_form(c.name)),), "account")),
    _fault("empty-account-number", "claims", "The account number claim is sent with an empty value",
           "Refuse the sign-in", "CLM005", needs={"account-claim"},
           plan=_claims(lambda p, c: (replace(c, values=("",)),), "account")),
    _fault("claim-sent-twice", "claims", "The account number claim is sent twice",
           "Refuse, or read one value deliberately", "CLM008", needs={"account-claim"},
           plan=_claims(lambda p, c: (c, c), "account")),
    _fault("unknown-login-type", "claims", "The login type is an ID the biller does not hold (the smallest "
           "missing one; 999 without a CRM record)", "Refuse the sign-in", "CLM006", needs={"login-type-claim"},
           plan=_claims(lambda p, c: (replace(c, values=(p.roles.unused_login_type,)),), "login_type")),
    _fault("login-types-joined", "claims", "Two login type IDs joined with a comma in one value",
           "Refuse: one login type per value", "CLM007", needs={"login-type-claim"},
           plan=_claims(lambda p, c: (replace(c, values=(_joined(p, c),)),), "login_type")),
    # -- encryption --------------------------------------------------------------------------------
    _fault("encrypted-for-other-key", "encryption", "The assertion is encrypted for a key that is not the SP's",
           f"{_REFUSE}: it cannot be decrypted", "SIG027", needs={"encryption-key"}, removes={"plaintext"},
           plan=lambda p: replace(p, encrypt_for=stranger().cert_der)),
)}


def fault(fault_id: str) -> Fault:
    """The fault named `fault_id`; FaultError naming the valid ones (and a near miss) otherwise."""
    found = CATALOGUE.get(fault_id)
    if found is None:
        close = difflib.get_close_matches(fault_id, CATALOGUE, n=1)
        hint = close[0] if close else None
        raise FaultError(f"unknown fault {fault_id!r}{f' (did you mean {hint!r}?)' if hint else ''}; "
                         f"the faults are: {', '.join(CATALOGUE)} (saml-idp faults explains each)")
    return found


def why_not(chosen: Fault, situation: Situation) -> str | None:
    """Why `chosen` cannot apply in `situation`, or None when it can."""
    roles = situation.roles
    reasons = {
        "signature": "the SP's settings sign nothing (sign = \"none\")" if not situation.signed else None,
        "plaintext": "this SP receives encrypted assertions, which the fault cannot rewrite; set encrypt = false "
                     "for this SP to test it" if situation.encrypted else None,
        "encryption-key": "the SP publishes no encryption certificate in its metadata"
                          if not situation.sp_has_encryption_key else None,
        "account-claim": "the persona has no account number claim (a claim named like account, invoice, policy "
                         "or customer number)" if roles is not None and roles.account is None else None,
        "login-type-claim": "the persona has no login type claim (the CRM record's login_type claim, or one "
                            "named like LoginType or Role)" if roles is not None and roles.login_type is None else None,
    }
    for need in sorted(chosen.needs):
        if reasons.get(need):
            return f"fault {chosen.id!r} does not apply: {reasons[need]}"
    return None


def conflict(faults: Sequence[Fault]) -> str | None:
    """Why `faults` cannot be sent together, whatever the SP; None when they can."""
    if len(faults) > 1 and any(f.id == "replay" for f in faults):
        return "fault 'replay' sends an earlier response unchanged, so it cannot be combined with other faults"
    for chosen in faults:
        for other in faults:
            if other is chosen:
                continue
            taken = other.removes & (chosen.needs | chosen.removes)
            if taken:
                what = {"assertion": "the assertion", "signature": "the signatures",
                        "plaintext": "the plaintext assertion"}[sorted(taken)[0]]
                return f"faults {chosen.id!r} and {other.id!r} cannot be combined: {other.id!r} removes {what}"
    return None


def build(plan: Plan, faults: Sequence[Fault]) -> etree._Element:
    """The response of `plan` with every fault of `faults` applied, in order."""
    for chosen in faults:
        if chosen.plan is not None:
            plan = chosen.plan(plan)
    edits = [chosen.edit for chosen in faults if chosen.edit is not None]
    final = plan

    def edit(response: etree._Element) -> None:
        for step in edits:
            step(response, final)

    element = build_response(plan.spec, now=plan.now, new_id=plan.new_id, key=plan.key,
                             encrypt_for=plan.encrypt_for, edit=edit if edits else None)
    for chosen in faults:
        if chosen.after is not None:
            element = chosen.after(element, plan)
    return element


def catalogue_markdown() -> str:
    """The catalogue as a Markdown table (the README's fault table is this, verbatim)."""
    rows = ["| Fault | What is wrong | A correct SP | Validator |", "|---|---|---|---|"]
    for chosen in CATALOGUE.values():
        cells = (f"`{chosen.id}`", chosen.title, chosen.sp_must, f"`{chosen.code}`")
        rows.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")
    return "\n".join(rows) + "\n"
