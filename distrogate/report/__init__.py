"""Reports from results and verdicts: the run's HTML summary and the history of runs.

Everything here reads data only (results.json, the verdict, the history database); no VM needed.
"""
