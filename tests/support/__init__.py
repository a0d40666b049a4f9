"""What the tests share: real servers, a browser, the command line, records and factories.

Test modules import from here, never from one another; the fixture modules among these are
registered once, through `pytest_plugins` in tests/conftest.py.
"""
