"""A program of the user's as a machine of a run (SPEC section 9)."""
