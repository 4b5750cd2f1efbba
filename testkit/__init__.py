"""Test-support helpers shared by the test suite and the bench/ scripts.

Kept free of pytest imports so benchmark scripts can use the same
throw-away broker and database servers as the tests.
"""
