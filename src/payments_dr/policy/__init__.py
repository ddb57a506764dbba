"""Policy as code: rules written once, run by the CrossGuard pack and by `payments-dr synth`.

`evaluate(resources, budget)` checks what `payments_dr.synth.synthesize` returns and
`format_verdicts(violations)` prints one verdict per rule; `payments_dr.policy.pack` adapts the
same rules to pulumi-policy for policy/__main__.py.
"""

from payments_dr.policy.model import DrTargets, ResourceView, Violation
from payments_dr.policy.rules import RULES
from payments_dr.policy.runner import evaluate, format_verdicts, run_rules

__all__ = [
    "RULES",
    "DrTargets",
    "ResourceView",
    "Violation",
    "evaluate",
    "format_verdicts",
    "run_rules",
]
