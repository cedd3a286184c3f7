"""Files shipped inside the package: the notebooks and the report templates.

notebooks/ and templates/ are symlinks to the top level of the repository, where people find
them; a wheel carries real copies. Code finds them with importlib.resources (core/resources.py).
"""
