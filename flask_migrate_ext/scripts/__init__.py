"""Migration scripts: the Alembic config, the revision graph and its cache, the
fast path that answers without Alembic, env.py files and the rules applied to
them. The only place that touches Alembic internals."""
