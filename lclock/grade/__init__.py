"""``lclock grade``: a class of submissions, each run or imported, checked, and scored (SPEC 11)."""
