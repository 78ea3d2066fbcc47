"""Stage 7, the report: the paper's numbers from parsed logs, its figures, and the status table of a results tree."""
