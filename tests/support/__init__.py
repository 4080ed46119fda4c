"""Helpers shared by the test suites (servers, fixtures that are not pytest fixtures)."""
