"""Who may use each route: the one place the web app decides it (issue 13, docs/security.md).

Every view declares its rule with :func:`allow`; :func:`check_declared` refuses to build an app
with a route that declares none, and :func:`guard` decides every request before its view runs.

The principal (:class:`~validator.auth.principal.Principal`) of a request is, in order:

- ``local`` for every request of an app without any sign-in configured (no staff account, no
  company IdP). Such an app serves loopback clients only, and says so on every page.
- an API token, from ``Authorization: Bearer`` on ``/api/`` routes only;
- the session of the ``saml_preflight_session`` cookie: a staff member signed in, or a partner
  who opened an invite link (checked again on every request: a revoked invite ends its sessions);
- else anonymous.

Refusals say nothing about what exists: a biller the principal may not see is the same 404 as a
biller that does not exist; a staff-only route is a 403 to anyone signed in, and to an anonymous
browser a sign-in page.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal, TypeVar

from flask import Flask, Response, g, redirect, request
from werkzeug.routing import Rule as UrlRule

from validator.auth.principal import ANONYMOUS, LOCAL, Principal

from .state import error_page, sign_in_required, web

Kind = Literal["public", "signed-in", "staff", "biller-read", "biller-write"]
F = TypeVar("F", bound=Callable[..., object])


@dataclass(frozen=True)
class Rule:
    """What a route needs. ``biller-read``/``biller-write`` name where the biller ID is: a URL
    variable (`arg`), or a resolver of the request (`resolve`: e.g. a test login's biller, read
    from the store; None when it has none, which only staff may then see)."""

    kind: Kind
    arg: str | None = None
    resolve: Callable[[Mapping[str, object]], str | None] | None = None
    tokens: bool = False
    """Whether an API token may use it (API routes only)."""
    unknown: Literal["biller", "login"] = "biller"
    """What a hidden refusal answers exactly as: an unknown biller, or an unknown test login."""
    optional: bool = False
    """The biller is optional (a query argument): without one, any signed-in principal may."""

    def biller(self, view_args: Mapping[str, object]) -> tuple[bool, str | None]:
        """(whether a biller is named, which)."""
        if self.resolve is not None:
            return True, self.resolve(view_args)
        value = view_args.get(self.arg or "") if self.arg in view_args else request.args.get(self.arg or "")
        if value in (None, "") and self.optional:
            return False, None
        return True, str(value) if value is not None else None


PUBLIC = Rule("public")
SIGNED_IN = Rule("signed-in")
STAFF = Rule("staff")


def biller_read(arg: str = "biller_id", *, tokens: bool = False, optional: bool = False,
                resolve: Callable[[Mapping[str, object]], str | None] | None = None) -> Rule:
    return Rule("biller-read", arg, resolve, tokens=tokens, optional=optional, unknown="login" if resolve else "biller")


def biller_write(arg: str = "biller_id", *, tokens: bool = False) -> Rule:
    return Rule("biller-write", arg, None, tokens=tokens)


def signed_in(*, tokens: bool = False) -> Rule:
    return Rule("signed-in", tokens=tokens)


def allow(rule: Rule) -> Callable[[F], F]:
    """Declare what a view needs (checked by :func:`guard` before it runs)."""
    def mark(view: F) -> F:
        view.access_rule = rule  # type: ignore[attr-defined]
        return view
    return mark


def rule_of(app: Flask, endpoint: str | None) -> Rule | None:
    view = app.view_functions.get(endpoint or "")
    found: Rule | None = getattr(view, "access_rule", None)
    return found


class UndeclaredRoute(RuntimeError):
    """A route declares no access rule: the app does not start."""


def check_declared(app: Flask) -> None:
    missing = sorted(f"{rule.rule} ({rule.endpoint})" for rule in app.url_map.iter_rules()
                     if rule_of(app, rule.endpoint) is None)
    if missing:
        raise UndeclaredRoute("every route must declare who may use it (validator.web.access.allow); "
                              f"these declare nothing: {', '.join(missing)}")


def routes(app: Flask) -> list[tuple[UrlRule, Rule]]:
    """Every route with its rule (for the route × role test and docs/security.md)."""
    found = []
    for url_rule in app.url_map.iter_rules():
        declared = rule_of(app, url_rule.endpoint)
        assert declared is not None
        found.append((url_rule, declared))
    return found


# --- deciding ------------------------------------------------------------------------------------


def current() -> Principal:
    """The principal of the request being served (anonymous outside one)."""
    found: Principal = g.get("principal", ANONYMOUS)
    return found


Decision = Literal["allow", "sign-in", "forbidden", "hidden"]


def decide(rule: Rule, principal: Principal, view_args: Mapping[str, object]) -> Decision:
    """The rule applied: ``hidden`` is a 404 that says nothing about what exists."""
    if rule.kind == "public" or (rule.optional and not rule.biller(view_args)[0]):
        return "allow"
    if principal.kind == "anonymous":
        return "sign-in"
    if principal.kind == "token" and not rule.tokens:
        return "forbidden"
    if rule.kind == "signed-in":
        return "allow"
    if rule.kind == "staff":
        return "allow" if principal.is_staff else "forbidden"
    named, biller = rule.biller(view_args)
    if not named:
        return "allow"
    if biller is None:
        return "allow" if principal.is_staff else "hidden"
    allowed = principal.may_write(biller) if rule.kind == "biller-write" else principal.may_read(biller)
    return "allow" if allowed else "hidden"


def refusal(decision: Decision, api: bool, rule: Rule | None = None,
            view_args: Mapping[str, object] | None = None) -> Response:
    """The answer to a refused request. A hidden one is, byte for byte, what the route answers for
    a biller (or test login) that does not exist: nothing tells the two apart."""
    from .api import problem

    if decision == "hidden" and rule is not None:
        return _unknown(rule, api, view_args or {})
    if decision == "sign-in":
        if api:
            return problem("sign in, or send an API token as 'Authorization: Bearer <token>'", 401,
                           headers={"WWW-Authenticate": 'Bearer realm="saml-preflight"'})
        if request.method == "GET":
            return redirect(f"/sign-in?next={_local_path()}", code=303)  # type: ignore[return-value]
        return error_page(401, "Sign in first", "This page is for signed-in users: sign in, then try again.")
    if decision == "forbidden":
        return problem("this call is not open to you", 403) if api else error_page(
            403, "Not for you", "This page is not open to you.")
    return problem(f"there is no API call {request.method} {request.path}", 404) if api else error_page(
        404, "Not found", "There is no page at this address.")


def _unknown(rule: Rule, api: bool, view_args: Mapping[str, object]) -> Response:
    from .api import problem
    from .login_result import UNKNOWN_LOGIN, UNKNOWN_LOGIN_API

    if rule.unknown == "login":
        return problem(UNKNOWN_LOGIN_API, 404) if api else error_page(404, "Unknown test login", UNKNOWN_LOGIN)
    _, biller = rule.biller(view_args)
    message = f"There is no CRM record for biller {biller!r}."
    return problem(message, 404) if api else error_page(404, "Unknown biller", message)


def _local_path() -> str:
    """The request's own path and query, for the sign-in page to come back to (never another site)."""
    from urllib.parse import quote

    path = request.full_path.rstrip("?")
    return quote(path if path.startswith("/") and not path.startswith("//") else "/", safe="")


def resolve_principal(api: bool) -> Principal:
    """Who is asking (see the module's docstring); a refusal is decided later, by the rule."""
    if not sign_in_required():
        return LOCAL
    if api:
        header = request.headers.get("Authorization", "")
        if header:
            return _token_principal(header)
    from .sessions import read_session

    return read_session() or ANONYMOUS


def _token_principal(header: str) -> Principal:
    from validator.auth import tokens

    scheme, _, secret = header.partition(" ")
    if scheme.lower() != "bearer" or not secret.strip():
        return ANONYMOUS
    token = tokens.bearer(web().store, secret.strip(), now=web().clock())
    return tokens.principal_for(token) if token is not None else ANONYMOUS
