"""The explorer: a run as one self-contained, interactive HTML page (``lclock view``).

``extract`` turns a run folder into compact columns, ``page`` puts them with the script,
the style and the vendored d3 into one file, ``view_cmd`` is the command line. The script is
the ES modules of ``js/`` (the pure ones tested under node: tests/js), which ``bundle`` turns
into one inline script.
"""
