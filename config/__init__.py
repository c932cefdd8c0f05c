"""Settings of crisis-radar and its shipped configuration files."""
