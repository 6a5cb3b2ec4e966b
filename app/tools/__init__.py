"""Tooling: the benchmark, the demo, the self-test, the evasion sets and the writer of test
clips. The product (core, storage, ui, compose) imports nothing from here; the CLI does.
"""
