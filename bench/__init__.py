"""Benchmarks that print figures against their targets; they never assert on time.

``make bench`` runs :mod:`bench.__main__`: the local backends (moto, SecantusDB
with TLS and SCRAM) start on free ports in a temporary home, and every figure
is measured side by side with its baseline in the same run.
"""
