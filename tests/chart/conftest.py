"""Chart tests use the session `helm_bin` fixture of tests/conftest.py (skips locally, fails in CI)."""
