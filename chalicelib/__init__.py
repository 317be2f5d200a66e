"""Everything that runs in Lambda besides app.py."""
