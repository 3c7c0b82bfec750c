"""Plumbing every layer may use: errors, console logging, atomic writes, private library calls
(compat), metrics, seeding, the code fingerprint, DVC bookkeeping, offline assets, credentials.
Imports nothing itself.
"""
