"""Alembic migration scripts for run records; shipped in the package so installs can migrate."""
