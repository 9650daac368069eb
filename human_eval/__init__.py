"""What people look at: the run viewer (`mils view`) and pairwise human evaluation (JUICE protocol:
AMT batch export, result ingestion, the local judging page), with the web safety both pages share."""
