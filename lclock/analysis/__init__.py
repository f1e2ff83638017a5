"""Analysis of run folders: check, analyze, report, export, and the log schema.

One module per job: ``load`` reads a run folder into numpy columns (``fastparse`` is its
byte-level fast path), ``check`` verifies the rules, ``analyze`` computes the metrics and
summary.json, ``report`` draws the figures and report.html, ``export`` writes ShiViz logs
and CSV, ``schema`` holds the JSON Schema. The ``*_cmd`` modules are the command line.
"""
