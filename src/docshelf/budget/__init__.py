"""Answers that fit an agent's context: LLM tokens counted offline, pages read in budgeted slices."""
