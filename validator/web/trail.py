"""Writing to the audit trail from a request: who (the request's principal, unless named), when
(the app's clock), from which address, on which biller (:mod:`validator.auth.audit`)."""

from __future__ import annotations

from flask import request

from validator.auth import audit
from validator.auth.principal import Principal

from .access import current
from .state import web


def note(action: audit.Action, *, who: Principal | str | None = None, biller_id: str | None = None,
         detail: str = "") -> None:
    state = web()
    audit.record(state.store, audit.event(action, who if who is not None else current(), biller_id=biller_id,
                                          address=request.remote_addr, detail=detail, now=state.clock()))
