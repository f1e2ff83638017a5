"""``lclock shrink``: the smallest simulated run that still shows a run's finding (SPEC 10)."""
