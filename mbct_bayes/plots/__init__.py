"""Figures, one module per area.

Every function returns a ``matplotlib.figure.Figure`` built without pyplot, so plotting works
headless and never touches global state.
"""
