"""Statistics the field publishes: joint false-alarm rates, likelihood tests."""
