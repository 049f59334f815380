"""Shared by every test directory: this file puts ``tests/`` on ``sys.path`` (pytest's prepend import
mode), so test modules can import the helpers beside it (``cli_runner``)."""
