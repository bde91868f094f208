"""Other vendors' dialects over framegate's services (see docs/compat.md).

Each dialect is a package (``schemas.py``, ``errors.py``, ``endpoints.py``) whose
``__init__`` exports ``DIALECT`` (its prefixes, error renderer and envelope) and ``router``;
``framegate.api`` includes the routers and installs the dialects into
``framegate.kit.dialects``. Dialects translate and call services: they import nothing from
SQLAlchemy, ``framegate.db``, storage or the task lifecycle (tests/compat/test_layering.py).
"""
