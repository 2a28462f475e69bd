"""The streaming side: event store, offset tracking, topics, publishing, and the service loop."""
