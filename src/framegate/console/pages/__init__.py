"""One module per console page: its routes (the page, and what only it needs)."""
