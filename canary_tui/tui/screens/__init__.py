"""Screens: the dashboard, its dialogs and the key help."""
