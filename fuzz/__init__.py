"""Fuzzing the parts that read untrusted input (issue 7): targets, mutations and a runner.

Targets (:mod:`fuzz.targets`): ``xml`` (the one parser), ``metadata`` (metadata reader and
checks), ``response`` (response verifier and checks), ``request`` (AuthnRequest decoder, both
bindings) and ``crm`` (CRM record loader). ``python -m fuzz TARGET|all --seconds N`` runs them
with atheris, or hypothesis where atheris is not installed; see fuzz/README.md.
"""
