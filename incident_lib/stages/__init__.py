"""The four investigation stages; each notebook calls into one of these modules."""
