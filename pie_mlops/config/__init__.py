"""What a study is told: the params schema (the one source of defaults), params files and
their overlays, the paper-fidelity options, the vocabulary of names, and the DVC declaration
of a profile's outputs. Imports nothing itself.
"""
