"""Persistence of the catalog: SQLAlchemy Core tables, Alembic migrations, the image repository."""
