"""Field visits (上门催收): the visit channel's tasks, their teams, outcomes and incidents.

``channel.py``: the visit worker's adapter, which turns a claimed and gated intent into a field
task; ``teams.py``: who may visit (two or more eligible collectors of the territory);
``outcomes.py``: recording what happened, checked against the pack's visit rules;
``sweep.py``: expiring tasks whose window closed and assigning the ones that wait.
docs/visits.md describes the whole flow.
"""

from dunning.visits.outcomes import OUTCOMES, VisitInputError, record_outcome

__all__ = ["OUTCOMES", "VisitInputError", "record_outcome"]
