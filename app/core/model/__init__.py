"""The vocabulary: items, statuses, verdicts, roles, decisions and the chain, taxonomy,
deadlines, exposure as a quantity, what leads read. Plain data and pure rules.
"""
