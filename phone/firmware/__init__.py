"""The phone's decisions, sans I/O: events and effects, the state machine, acceptance rules, models, verdicts."""
