"""flipbot benchmarks: ``python -m bench`` (or ``make bench``) runs every module here.

Each ``bench/<name>.py`` has a ``main()`` that measures something, prints a table and
writes ``bench/results/<name>.json`` through :func:`bench.common.write_result`, which
records the figures, their ratios to a baseline measured in the same run, and the
machine they were measured on. Run one: ``python -m bench <name>`` or
``python -m bench.<name>``.
"""
