"""Who may see and do what: partners, their credentials and rights, dataset diffusion.

- ``store``: the ``access`` schema in PostGIS (partners, API keys, grants) and its queries;
- ``tokens``: API keys (issued, hashed) and OpenID Connect bearer JWTs (verified);
- ``policy``: the caller (a :class:`~geomayotte.access.policy.Principal`) and what it may see;
- ``cli``: ``geomayotte-partners``, to manage partners, keys and grants.
"""
