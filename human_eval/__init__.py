"""Pairwise human evaluation (JUICE protocol): AMT batch export, result ingestion, local judging page."""
