"""Records that travel on filestream's topics."""
