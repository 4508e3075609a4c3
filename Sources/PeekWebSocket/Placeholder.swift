// PeekWebSocket: filled in by its own commit.
