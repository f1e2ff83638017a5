"""The classic bug each machine's logs show, named (SPEC section 10).

The fitting is ``lclock.analysis.diagnosis``; here a named fit becomes one finding (rule
``bug``, with its ``bug`` name) at its first example, and a fit with too little evidence a
note. A bug that fits no event is never mentioned.
"""

from __future__ import annotations

from lclock.analysis.bugs import BUGS
from lclock.analysis.diagnosis import MIN_EVIDENCE, Fit
from lclock.analysis.rules import Context, run_rule


def finding_text(fit: Fit) -> str:
    what = f"bug {fit.bug}: {BUGS[fit.bug].what}"
    if fit.bug in ("die-short", "tick-drift", "several-per-tick"):
        return f"{what}; {fit.detail} ({fit.explained} event(s) show it)"
    alike = (f"; {' and '.join(fit.alike)} would fit as well (no event here tells them apart)"
             if fit.alike else "")
    return (f"{what}: of the {fit.telling} events that tell it from the correct rule it fits "
            f"{fit.fit_bug}, the correct rule {fit.fit_correct}; the first: {fit.detail}{alike}")


def note_text(fit: Fit) -> str:
    if fit.bug == "die-short":
        return f"machine {fit.machine}: die-short? {fit.detail}: not enough evidence to name it"
    alike = (f" (or {' or '.join(fit.alike)}: no event here tells them apart)"
             if fit.alike else "")
    return (f"machine {fit.machine}: {fit.bug}{alike} fits {fit.explained} event(s) that the correct "
            f"rule does not (first at {fit.file}:{fit.line}): not enough evidence to name it "
            f"({MIN_EVIDENCE} needed)")


@run_rule
def classic_bugs(ctx: Context) -> None:
    for fit in ctx.diagnosis.fits:
        if fit.named:
            # a short die is a matter of chance, however small: a warning, as the dice rule's
            severity = "warning" if fit.bug == "die-short" else "error"
            ctx.add(fit.file, fit.line, finding_text(fit), "bug", severity, machine=fit.machine,
                    count=fit.explained, bug=fit.bug)
        else:
            ctx.notes.append(note_text(fit))
