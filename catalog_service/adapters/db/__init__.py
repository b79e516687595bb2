"""Persistence of the catalog: SQLAlchemy Core tables, Alembic migrations, the image repository,\nthe unit of work that owns transactions."""
