"""Syndicate's tests; what they share is in tests/support."""

import pytest

# Before any of tests.support is imported: its asserts then say what failed, as the tests' do.
pytest.register_assert_rewrite("tests.support")
