"""Surveys: codebooks, scoring respondents' items into site E/C/F scores, reliability of those
scores, and simulated item-level surveys."""
