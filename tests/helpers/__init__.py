"""What several test modules share: import from here (or use a fixture), never from another
test module."""
