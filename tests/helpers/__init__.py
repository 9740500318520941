"""Plain helpers shared by test modules in more than one file: problems, harnesses, comparisons.

Not tests and not fixtures (those are in the conftest.py files): constants a test needs when it is collected
(``CELLS`` in ``parametrize``) and functions called with a test's own arguments. The test modules import
them as ``helpers.<module>``: ``tests/`` is on ``sys.path`` through the ``pythonpath`` option of
``[tool.pytest.ini_options]`` in pyproject.toml, so this works from the repository root however rnnfast
itself is found (installed, or PYTHONPATH=python).
"""
