"""Test-only pieces for the replica tests: a replica launcher and a cheap worker child."""
