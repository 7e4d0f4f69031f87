"""Placeholder until this command group lands (being written now)."""
