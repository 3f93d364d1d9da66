"""Shared pytest configuration. Fixture modules are registered here; keep this file minimal."""

pytest_plugins = ["tests.conftest_storage"]
