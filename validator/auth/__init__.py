"""Who may use the web app and its API: staff accounts, partner invites, API tokens, the audit trail.

Storage and rules only (each over the :class:`~metadata.store.Store`); the web app decides per
route with :mod:`validator.web.access`, and ``saml-validate staff|invite|token`` manage them.
"""
