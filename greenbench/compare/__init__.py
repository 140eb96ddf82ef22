"""The CI gate: compare two profiles, and its exports."""
