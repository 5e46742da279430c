"""Running the metadata inspection in tests, without the CLI."""

from __future__ import annotations

import multiprocessing
import resource
import signal
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, Generic, TypeVar

from metadata.crm import CRMRecord, parse_crm
from tests.factory import NOW
from validator.findings import Finding
from validator.inspection import MetadataOptions, inspect_metadata_bytes
from validator.metadata_facts import metadata_report
from validator.report import Report

T = TypeVar("T")

CLAIMS_TOML = """
[[claims]]
name = "AccountNumber"
required = true
[[claims]]
name = "Email"
required = true
[[claims]]
name = "LoginTypeId"
required = true
login_type = true
"""


def crm_toml(
    *,
    sp_entity_id: str = "https://sso.portal.example/saml",
    acs_url: str = "https://sso.portal.example/saml/acs",
    idp: dict[str, str | None] | None = None,
    extra: str = "",
    login_types: tuple[tuple[int, str], ...] = ((1, "Customer"),),
    biller: tuple[str, str] = ("B-1", "Test Biller"),
) -> str:
    """The one CRM record of the tests, as TOML: the three claims of DESIGN.md, the given SP
    and IdP values (None drops a key), `extra` TOML after the claims, and the login types."""
    idp_lines = "".join(f'{k} = "{v}"\n' for k, v in (idp or {}).items() if v is not None)
    types = "".join(f'[[login_types]]\nid = {i}\nname = "{n}"\n' for i, n in login_types)
    return (f'[biller]\nid = "{biller[0]}"\nname = "{biller[1]}"\n[sp]\nentity_id = "{sp_entity_id}"\n'
            f'acs_url = "{acs_url}"\n[idp]\n{idp_lines}{CLAIMS_TOML}{extra}\n{types}')


IDP_DEFAULTS = {
    "entity_id": "https://idp.example.com/saml",
    "sso_url": "https://idp.example.com/sso/redirect",
    "nameid_format": "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress",
}


def crm(**idp: str | None) -> CRMRecord:
    """The test CRM record, with `idp` values replaced (None drops the key)."""
    return parse_crm(crm_toml(idp={**IDP_DEFAULTS, **idp}), "test.toml", "toml")


def inspect(data: bytes, *, record: CRMRecord | None = None, **options: object) -> Report:
    opts = MetadataOptions(now=options.pop("now", NOW), **options)  # type: ignore[arg-type]
    return metadata_report(inspect_metadata_bytes(data, "test.xml", opts, record))


def codes(report: Report) -> set[str]:
    return {f.code for f in report.findings}


def only(report: Report, code: str) -> Finding:
    found = [f for f in report.findings if f.code == code]
    assert len(found) == 1, f"expected one {code}, got {found}"
    return found[0]


@dataclass(frozen=True)
class Limited(Generic[T]):
    """What `run_with_cpu_limit` brings back: the work's result and the CPU it cost the child."""

    value: T
    cpu_seconds: float


class CPULimitExceeded(AssertionError):
    """The child was killed by SIGXCPU: the work cost more CPU than allowed."""


def run_with_cpu_limit(work: Callable[[], T], *, cpu_seconds: int = 1, wall_seconds: float = 120.0) -> Limited[T]:
    """Run `work` in a child forked from this process, under RLIMIT_CPU of `cpu_seconds` (soft).

    Forked, so that nothing the parent has imported or built is paid for again in the child; the
    kernel counts the child's CPU from zero and sends SIGXCPU at the soft limit, which kills it.
    A time limit for a thread would not do: a regular expression holds the GIL until it ends.
    `wall_seconds` only stops a child that waits for something (a socket) instead of computing.
    Raises CPULimitExceeded, or AssertionError with the child's traceback when `work` raised.
    """
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_limited_child, args=(work, cpu_seconds, sender), daemon=True)
    child.start()
    sender.close()
    try:
        if not receiver.poll(wall_seconds):
            raise AssertionError(f"the child gave no answer within {wall_seconds:g} s of wall time")
        outcome: tuple[str, Any, float] = receiver.recv()
    except EOFError:
        child.join(wall_seconds)
        if child.exitcode == -signal.SIGXCPU:
            raise CPULimitExceeded(f"killed by SIGXCPU: more than {cpu_seconds} s of CPU") from None
        raise AssertionError(f"the child died without an answer (exit code {child.exitcode})") from None
    finally:
        receiver.close()
        if child.is_alive():
            child.kill()
        child.join()
    kind, value, used = outcome
    if kind == "raised":
        raise AssertionError(f"the work raised after {used:.2f} s of CPU:\n{value}")
    return Limited(value, used)


def _limited_child(work: Callable[[], Any], cpu_seconds: int, sender: Connection) -> None:
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds + 1))
    try:
        value = work()
    except BaseException:  # SystemExit too: the work decides what a normal end is
        sender.send(("raised", traceback.format_exc(), time.process_time()))
    else:
        sender.send(("value", value, time.process_time()))
    sender.close()
